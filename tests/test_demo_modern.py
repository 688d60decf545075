"""The demo's 2026-07-28 scenarios: the mcp 2.3.0 environment and the TS SDK 2.4 host set up,
speak the revision they should (sessionless with the 2.x server, a negotiated fallback with the
1.x one), and ``mcpsniff demo --scenario sessionless-dies --mode direct`` end to end.

Real processes on 127.0.0.1 only, bounded by deadlines; what is asserted is what each client
itself logged and what the analysis said, never how long anything took.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mcpsniff.demo import NAMESPACES, sdk2, tshost
from mcpsniff.demo.hosts import PY2_POLICIES, command
from mcpsniff.demo.run import GROUPS, SCENARIOS, Processes, free_ports, read_events, spawn_server, wait_ready
from mcpsniff.errors import CaptureError

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 60.0  # s for the clients to connect (two servers, three client processes start at once)
SESSIONLESS, FALLBACK = "2026-07-28 sessionless", "negotiated fallback"


def _node_major() -> int:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return 0
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"v(\d+)", out.strip())
    return int(match.group(1)) if match else 0


needs_node20 = pytest.mark.skipif(_node_major() < tshost.MIN_NODE_V2, reason=f"the TS SDK 2.4 host needs Node.js {tshost.MIN_NODE_V2}+ and npm")


def _can_tcpdump() -> bool:
    if shutil.which("tcpdump") is None:
        return False
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW):
            return True
    except PermissionError:
        return False


def test_the_mcp2_environment_is_set_up() -> None:
    """scripts/setup.sh installs it (a second call is a no-op); its python has mcp 2.3.0 and uvicorn."""
    python = sdk2.ensure_env()
    assert sdk2.installed() == python and sdk2.require() == python
    proc = subprocess.run([str(python), "-c", "import importlib.metadata as m, uvicorn; print(m.version('mcp'))"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == sdk2.SDK_VERSION, proc.stderr


def test_the_mcp2_environment_installs_offline_from_uvs_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh cache folder with the registry unreachable: the install comes from uv's own cache
    (filled by the first install); without that cache it is a one-line error."""
    sdk2.ensure_env()  # uv's cache holds the wheels from here on
    uv_cache = subprocess.run([sdk2._uv(), "cache", "dir"], capture_output=True, text=True, timeout=30).stdout.strip()
    monkeypatch.setenv("UV_CACHE_DIR", uv_cache)  # uv's cache would otherwise follow XDG_CACHE_HOME
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: the registry is unreachable
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    python = sdk2.ensure_env()
    assert python.is_relative_to(tmp_path) and (python.parent.parent / ".installed").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg2"))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    with pytest.raises(CaptureError) as err:
        sdk2.ensure_env()
    assert "could not install mcp 2.3.0" in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "xdg2" / "mcpsniff").iterdir())  # no half-made environment left


def test_py2_policies_are_the_hosts_own() -> None:
    """hosts.py describes modern/clients.py's policies (which it cannot import: mcp 2.x)."""
    names = re.findall(r'Policy\("([\w-]+)"', sdk2.CLIENTS.read_text())
    assert sorted(names) == sorted(PY2_POLICIES)


def _by(events: list[dict[str, Any]], ns: str, event: str) -> list[dict[str, Any]]:
    return [ev for ev in events if ev.get("ns") == ns and ev.get("event") == event]


@needs_node20
def test_2x_clients_speak_the_revision_of_their_server(tmp_path: Path) -> None:
    """The mcp 2.3.0 server: the Python SDK 2.3.0 client and the TS SDK 2.4 host speak 2026-07-28
    (and hold a subscriptions/listen stream); the mcp 1.x server: the TS SDK 2.4 host's probe is
    refused and it falls back to a 2025 session."""
    ready = {"py2": sdk2.ensure_env(), "ts": tshost.ensure_installed(min_node=tshost.MIN_NODE_V2)}
    new_port, old_port = free_ports(2)
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("py2", "ts2", "ts2-old")}
    procs = Processes()
    try:
        new = spawn_server(procs, new_port, tmp_path / "server2.log", server="py2")
        old = spawn_server(procs, old_port, tmp_path / "server1.log")
        wait_ready(procs, new, new_port, tmp_path / "server2.log")
        wait_ready(procs, old, old_port, tmp_path / "server1.log")
        hosts = [
            procs.spawn(command("py2", ready, f"http://127.0.0.1:{new_port}", {"tasks": "rebuild"}, logs["py2"], 0.5), tmp_path / "py2.log"),
            procs.spawn(command("ts2", ready, f"http://127.0.0.1:{new_port}", {"dev-agents": "rebuild"}, logs["ts2"], 0.5), tmp_path / "ts2.log"),
            procs.spawn(command("ts2", ready, f"http://127.0.0.1:{old_port}", {"sprint": "rebuild"}, logs["ts2-old"], 0.5), tmp_path / "ts2-old.log"),
        ]
        wanted = {("tasks", "listen_open"), ("dev-agents", "listen_open"), ("tasks", "call_ok"), ("dev-agents", "call_ok"), ("sprint", "call_ok")}
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            events = read_events(*logs.values())
            if all(_by(events, ns, kind) for ns, kind in wanted):
                break
            assert all(h.poll() is None for h in hosts), [p.read_text()[-500:] for p in tmp_path.glob("*.log")]
            time.sleep(0.2)
        for host in hosts:
            os.killpg(host.pid, signal.SIGTERM)
            host.wait(15)
    finally:
        procs.cleanup()
    events = read_events(*logs.values())
    missing = [(ns, kind) for ns, kind in wanted if not _by(events, ns, kind)]
    assert not missing, missing
    clients = {ev["detail"]["client"] for ev in events if ev["event"] == "start"}
    assert clients == {"py-sdk 2.3.0", "ts-sdk-client 2.4.0"}
    for ns, era, version in (("tasks", SESSIONLESS, "2026-07-28"), ("dev-agents", SESSIONLESS, "2026-07-28"), ("sprint", FALLBACK, "2025-11-25")):
        connected = _by(events, ns, "connected")[0]["detail"]
        assert (connected["era"], connected["protocol_version"]) == (era, version), ns
    assert _by(events, "sprint", "connected")[0]["detail"]["session_id"]  # a 2025 session after the refused probe
    assert not _by(events, "sprint", "listen_open")  # no subscriptions/listen in a 2025 session
    assert {ns for ev in events if ev["event"] == "summary" for ns in ev["detail"]["namespaces"]} == {"tasks", "dev-agents", "sprint"}


@pytest.mark.skipif(not _can_tcpdump(), reason="direct mode records with tcpdump (installed, root or CAP_NET_RAW)")
def test_demo_sessionless_dies_end_to_end(tmp_path: Path) -> None:
    """sprint's mcp 2.3.0 Client ends with the restart and is never rebuilt; the others rebuild.
    The verdicts are what the clients' own log says, and the analysis names the revision."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "mcpsniff", "demo", "--scenario", "sessionless-dies", "--mode", "direct", "-o", str(out), "--no-html",
         "--warmup-seconds", "1", "--down-seconds", "2", "--settle-seconds", "20"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    truth = json.loads((out / "truth.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert truth["client"] == "py-sdk 2.3.0" and summary["server"] == "py2" and summary["client_host"] == "py2"
    rows = summary["namespaces"]
    for ns in NAMESPACES:
        told = truth["namespaces"][ns]
        assert rows[ns]["verdict"] == told["expected"] == rows[ns]["expected"], (ns, rows[ns], told)
        assert told["revision"] == rows[ns]["revision"] == rows[ns]["client_revision"] == SESSIONLESS, ns
    assert truth["namespaces"]["sprint"] == {
        "expected": "stalled", "signature": "client-died", "revision": SESSIONLESS, "client": "py-sdk 2.3.0",
        "policy": "dies", "first_ok_after_restart": None, "listen_reissued": False,
    }
    for ns in ("tasks", "dev-agents", "ci-infra"):
        assert truth["namespaces"][ns]["signature"] == rows[ns]["signature"] == "rebuilt-client", ns
        assert truth["namespaces"][ns]["listen_reissued"] is True, ns
    assert rows["sprint"]["signature"] == "client-gave-up" and rows["sprint"]["stall_point"]
    assert summary["agree"] and summary["as_expected"] and summary["revisions_agree"]
    report = (out / "report.txt").read_text()
    assert SESSIONLESS in report and "sprint" in report
    assert "sprint      STALLED   (client-gave-up; 2026-07-28 sessionless)" in proc.stdout
    assert "Python SDK 2.3.0 clients" in proc.stderr and "server back up" in proc.stderr


def test_help_lists_the_scenarios_by_revision() -> None:
    from click.testing import CliRunner

    from mcpsniff.cli import main

    result = CliRunner().invoke(main, ["demo", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = result.output
    positions = [text.index(heading + ":") for heading in GROUPS.values()]
    assert positions == sorted(positions)
    for name in ("sessionless", "sessionless-dies", "sessionless-listen", "fallback", "mixed-eras"):
        group = SCENARIOS[name].group
        start = text.index(GROUPS[group] + ":")
        following = [p for p in positions if p > start]
        section = text[start:following[0] if following else len(text)]
        assert re.search(rf"^\s+{re.escape(name)}\s{{2,}}\S", section, re.M), name
    assert all(s.group in GROUPS and s.brief for s in SCENARIOS.values())
