"""Tool-catalog drift across a restart, on real traffic: a real SDK server restarted with one tool
fewer, a real SDK client that re-initializes and lists its tools, then keeps calling the tool
that is gone (it kept its old catalogue), captured live on lo; and `check --require-same-tools`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff.api import analyze_files
from mcpsniff.capture.live import LiveCapture
from mcpsniff.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import LabServer, call_text, lab_session, raw_sockets_refused  # noqa: E402


async def _session(url: str, calls: list[tuple[str, dict]]) -> list[str]:
    """One SDK session: initialize, tools/list, then the calls (errors kept as text)."""
    out = []
    async with lab_session(url, timeout=5) as session:
        listed = await session.list_tools()
        out.append(",".join(sorted(t.name for t in listed.tools)))
        for tool, args in calls:
            try:
                out.append(await call_text(session, tool, timeout=5, **args))
            except Exception as exc:  # noqa: BLE001 - an unknown tool is an error result
                out.append(f"error: {exc}")
    return out


@pytest.mark.skipif(raw_sockets_refused(), reason="the live capture needs raw sockets (root or CAP_NET_RAW)")
def test_a_tool_missing_after_the_restart_is_a_finding_and_a_gate(tmp_path: Path) -> None:
    pcap = tmp_path / "drift.pcapng"
    with LabServer(("tasks",)) as lab:
        cap = LiveCapture([lab.port], pcap, "lo").start()
        try:
            before = asyncio.run(_session(lab.url("tasks"), [("echo", {"text": "a"}), ("tick", {"count": 1, "every": 0.0})]))
            lab.restart(down=0.5, without=["tick"])
            after = asyncio.run(_session(lab.url("tasks"), [("echo", {"text": "b"}), ("tick", {"count": 1, "every": 0.0})]))
        finally:
            cap.stop()
    assert "tick" in before[0] and "tick" not in after[0]  # the real server really lost the tool
    assert after[2].startswith("error")

    ns = next(ns for ns in analyze_files([pcap]).namespaces if ns.name == "tasks")
    findings = ns.diagnosis.findings
    assert any(f.startswith("catalog-drift:") and "1 missing (tick)" in f for f in findings), findings
    assert any(f.startswith("called-unlisted-tool:") and "called tick 1 time(s)" in f for f in findings), findings
    assert [len(g.catalog) for g in ns.generations] == [3, 2]

    plain = CliRunner().invoke(main, ["check", str(pcap)])
    strict = CliRunner().invoke(main, ["check", str(pcap), "--require-same-tools"])
    assert plain.exit_code == 0, plain.output
    assert strict.exit_code == 1 and "catalog-drift" in strict.output and "with the same tools as before" in strict.output, strict.output
