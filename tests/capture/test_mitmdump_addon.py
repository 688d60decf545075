"""The addon inside a real mitmdump: ``-w`` flow files keep event streams, mitmproxy's
connection_strategy default (and only the default) is changed, ``mcpsniff_filter``.

Real SDK clients -> mitmdump (reverse proxy, the addon script) -> real SDK servers
(tests/mcp_lab.py). Every wait is bounded; nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mitmproxy import io as mio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import LabServer, call_text, free_port, lab_session, wait_port  # noqa: E402

from mcpsniff import records as R  # noqa: E402
from mcpsniff.api import analyze_files  # noqa: E402
from mcpsniff.capture.mitm import read_flows  # noqa: E402
from mcpsniff.capture.proxy import find_mitmdump  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "addons" / "mcpsniff_addon.py"
WAIT = 60.0  # s: bound of every wait (never an assertion on time)


@contextmanager
def mitmdump(upstream: str, tmp: Path, *args: str) -> Iterator[int]:
    """mitmdump with the addon script in front of ``upstream``; its log is tmp/mitmdump.log.
    Stopped with SIGTERM, so ``-w`` files and the records are complete."""
    port = free_port()
    cmd = [find_mitmdump(), "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(SCRIPT), "--set", "flow_detail=0", *args]
    with (tmp / "mitmdump.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, timeout=WAIT)  # mitmdump starts slowly on a loaded machine
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT)


def read(path: Path) -> list[R.Record]:
    return list(R.read_records(path.read_text(encoding="utf-8").splitlines()))


def summary(analysis) -> dict:
    """What both views of one run must agree on: per namespace the verdict, its basis and
    signature, the sessions, and every exchange with the JSON-RPC it carried and the SSE
    events it got."""
    return {
        ns.name: {
            "diagnosis": (ns.diagnosis.verdict, ns.diagnosis.basis, ns.diagnosis.signature),
            "sessions": [g.session_id for g in ns.generations],
            "exchanges": sorted((e.method, tuple(e.rpc_methods), e.status, e.outcome, e.stream, tuple(ev.data for ev in e.events)) for e in ns.exchanges),
        }
        for ns in analysis.namespaces
    }


def test_flow_file_keeps_event_streams_and_agrees_with_the_records(tmp_path):
    """``mitmdump -w flows`` with the addon: every SSE response keeps its events in the flow,
    so ``mcpsniff analyze flows`` and ``analyze run.jsonl`` of one run agree, and the
    events still reach the client as they pass (the tool only returns after the client
    saw its notification)."""
    flows, out = tmp_path / "flows", tmp_path / "run.jsonl"
    with LabServer(("tasks", "sprint")) as lab, mitmdump(lab.base_url, tmp_path, "-w", str(flows), "--set", f"mcpsniff_output={out}") as port:
        base = f"http://127.0.0.1:{port}"
        seen: list[str] = []

        async def on_log(params) -> None:
            seen.append(str(params.data))
            lab.gate.set()  # releases the tool, which waits for exactly this

        async def run() -> None:
            async with lab_session(lab.url("tasks", base), on_log=on_log) as s:
                assert await call_text(s, "hold", timeout=WAIT, message="halfway") == "released"
                assert await call_text(s, "echo", text="one") == "tasks:one"
            async with lab_session(lab.url("sprint", base), on_log=on_log) as s:
                await s.list_tools()
                assert await call_text(s, "tick", count=3, every=0.01) == "done"

        asyncio.run(run())
        assert seen[0] == "halfway" and len(seen) == 4, seen

    with flows.open("rb") as fh:
        stored = [f for f in mio.FlowReader(fh).stream() if f.response and f.response.headers.get("content-type", "").startswith("text/event-stream")]
    posts = [f for f in stored if f.request.method == "POST"]
    assert len(posts) >= 6 and all(b"data: " in f.response.raw_content for f in posts), "every SSE response's events are in the flow"
    assert any(f.request.method == "GET" for f in stored), "the SDK's GET stream is a flow too"
    assert not any(f.metadata or f.comment for f in stored), "nothing was cut"

    from_flows, from_records = analyze_files([flows]), analyze_files([out])
    assert {ns.name for ns in from_records.namespaces} == {"tasks", "sprint"}
    assert summary(from_flows) == summary(from_records)
    assert not [w for w in from_flows.warnings if "no body" in w]
    tick = [r for r in read_flows(flows) if r.kind == "sse" and "notifications/message" in r.data]
    assert len(tick) == 4, "the hold notification and the three ticks, read back from the flow file"


def test_mitmweb_shows_the_event_stream_bodies(tmp_path):
    """mitmweb with the addon: its API (what its UI shows) has the events of every SSE response."""
    port, web = free_port(), free_port()
    with LabServer(("tasks",)) as lab:
        cmd = [str(Path(find_mitmdump()).with_name("mitmweb")), "--mode", f"reverse:{lab.base_url}", "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(SCRIPT),
               "--set", f"mcpsniff_output={tmp_path / 'run.jsonl'}", "--set", "web_open_browser=false", "--set", "web_host=127.0.0.1", "--set", f"web_port={web}", "--set", "web_password=pw"]
        with (tmp_path / "mitmweb.log").open("wb") as log:
            proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(port, timeout=WAIT)
            wait_port(web, timeout=WAIT)

            async def run() -> None:
                async with lab_session(lab.url("tasks", f"http://127.0.0.1:{port}")) as s:
                    assert await call_text(s, "tick", count=2, every=0.01) == "done"

            asyncio.run(run())
            with httpx.Client(base_url=f"http://127.0.0.1:{web}", params={"token": "pw"}, timeout=WAIT) as api:
                shown = [f for f in api.get("/flows").json() if f["request"]["method"] == "POST" and f.get("response")
                         and any(k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in f["response"]["headers"])]
                bodies = [api.get(f"/flows/{f['id']}/response/content.data").content for f in shown]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=WAIT)
    assert len(bodies) >= 3 and all(b"data: " in b for b in bodies), bodies
    assert sum(b.count(b"notifications/message") for b in bodies) == 2


def _send_while_upstream_is_down(port: int) -> bytes:
    """One HTTP request on a raw connection; what came back before the proxy closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"POST /tasks/mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    return got


@pytest.mark.parametrize(
    ("args", "answer", "said"),
    [
        ((), b"HTTP/1.1 502", "changed from mitmproxy's default eager to lazy"),
        (("--set", "connection_strategy=eager"), b"", "connection_strategy=eager as set"),
        (("--set", "connection_strategy=lazy"), b"HTTP/1.1 502", None),
    ],
    ids=["default", "eager-chosen", "lazy-chosen"],
)
def test_connection_strategy_only_mitmproxys_default_is_changed(tmp_path, args, answer, said):
    """Lazy: a request to a down upstream gets a 502 (recorded as refused); eager, when the
    user chose it, stays: the proxy dials the upstream on connect and just closes."""
    out, down = tmp_path / "run.jsonl", free_port()
    with mitmdump(f"http://127.0.0.1:{down}", tmp_path, "--set", f"mcpsniff_output={out}", *args) as port:
        got = _send_while_upstream_is_down(port)
    assert got.startswith(answer) if answer else got == b"", got[:80]
    log = (tmp_path / "mitmdump.log").read_text()
    lines = [line for line in log.splitlines() if "mcpsniff: connection_strategy" in line]
    assert len(lines) == (1 if said else 0), log
    assert said is None or said in lines[0]
    assert "Traceback" not in log
    ends = [r.outcome for r in read(out) if r.kind == "end"]
    assert ends == (["refused"] if answer else []), "eager closes before any request is read"


def test_filter_records_only_the_matching_namespace(tmp_path):
    """``mcpsniff proxy --filter '~u /tasks/'`` (the addon's ``mcpsniff_filter``): sprint's
    session works through the proxy but is not recorded, nor are its connections."""
    out, port = tmp_path / "run.jsonl", free_port()
    with LabServer(("tasks", "sprint")) as lab:
        cmd = [sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(port), "--upstream", lab.base_url, "-o", str(out), "--filter", "~u /tasks/"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_port(port, timeout=WAIT)
            base = f"http://127.0.0.1:{port}"

            async def run() -> list[str]:
                texts = []
                for ns in ("tasks", "sprint"):
                    async with lab_session(lab.url(ns, base)) as s:
                        texts.append(await call_text(s, "echo", text="x"))
                return texts

            assert asyncio.run(run()) == ["tasks:x", "sprint:x"]
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert "tasks" in stdout and "sprint" not in stdout, stdout
    recs = read(out)
    assert {r.target for r in recs if r.kind == "request"} == {"/tasks/mcp"}
    with_requests = {r.conn for r in recs if r.kind == "request"}
    assert {r.conn for r in recs if r.kind == "conn"} <= with_requests, "no connection of sprint's alone"
    assert [ns.name for ns in analyze_files([out]).namespaces] == ["tasks"]


def test_bad_filter_stops_mitmdump_with_one_line(tmp_path):
    port = free_port()
    cmd = [find_mitmdump(), "--mode", "reverse:http://127.0.0.1:9", "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(SCRIPT), "--set", "mcpsniff_filter=~u (", "--set", f"mcpsniff_output={tmp_path / 'r.jsonl'}"]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT)
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if "mcpsniff_filter" in line]
    assert len(errors) == 1 and "not a mitmproxy filter expression: '~u ('" in errors[0], text


def test_cli_proxy_bad_filter_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(free_port()), "--upstream", "http://127.0.0.1:9", "--filter", "~u (", "-o", str(tmp_path / "r.jsonl")], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--filter" in result.stderr and "'~u ('" in result.stderr, result.stderr
    assert not (tmp_path / "r.jsonl").exists()
