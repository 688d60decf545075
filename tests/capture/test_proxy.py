"""A real mitmdump with the addon in front of a real MCP SDK server, with real SDK clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import ClientLog, LabServer, call_text, free_port, healthy_client, lab_session, stale_client, wait_port  # noqa: E402

from mcpsniff import records as R  # noqa: E402
from mcpsniff.capture.proxy import find_mitmdump, start_proxy  # noqa: E402
from mcpsniff.errors import CaptureError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # s: bound of every wait for the clients or mitmdump (never an assertion on time)


def read(path: Path) -> list[R.Record]:
    return list(R.read_records(path.read_text(encoding="utf-8").splitlines()))


async def until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {WAIT}s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def lab() -> Iterator[LabServer]:
    with LabServer(("tasks", "sprint")) as server:
        yield server


def test_readme_command_streams_sse_through_and_survives_sigkill(lab, tmp_path):
    """`mitmdump -s addons/mcpsniff_addon.py`: a notification reaches the client while the
    tool is still running (the tool only returns once the client has seen it)."""
    out, port = tmp_path / "run.jsonl", free_port()
    cmd = [find_mitmdump(), "--mode", f"reverse:{lab.base_url}", "--listen-host", "127.0.0.1", "-p", str(port), "-s", str(ROOT / "addons" / "mcpsniff_addon.py"), "--set", f"mcpsniff_output={out}", "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port(port, timeout=60)  # mitmdump starts slowly on a loaded machine
        seen: list[str] = []

        async def on_log(params) -> None:
            seen.append(str(params.data))
            lab.gate.set()  # releases the tool, which has been waiting for exactly this

        async def session() -> str:
            async with lab_session(lab.url("tasks", f"http://127.0.0.1:{port}"), on_log=on_log) as s:
                return await call_text(s, "hold", timeout=60, message="halfway")

        assert asyncio.run(session()) == "released"
        assert seen == ["halfway"]
    finally:
        proc.kill()  # SIGKILL: no chance to close the file
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode(errors="replace")
    recs = read(out)
    assert not [r for r in recs if r.kind == "warning"], "a killed mitmdump leaves only complete lines"
    calls = [r for r in recs if r.kind == "request" and '"tools/call"' in r.body]
    assert len(calls) == 1
    xid = calls[0].xid
    events = [r for r in recs if r.kind == "sse" and r.xid == xid]
    assert [json.loads(e.data).get("method") for e in events] == ["notifications/message", None]
    assert json.loads(events[1].data)["result"]["content"][0]["text"] == "released"
    resp = next(r for r in recs if r.kind == "response" and r.xid == xid)
    assert resp.stream and resp.status == 200
    end = next(r for r in recs if r.kind == "end" and r.xid == xid)
    assert resp.t <= events[0].t <= events[1].t <= end.t and end.outcome == "complete"
    methods = [json.loads(r.body).get("method") for r in recs if r.kind == "request" and r.body]
    assert methods[:2] == ["initialize", "notifications/initialized"]
    assert any(r.kind == "request" and r.method == "GET" for r in recs), "the SDK's GET stream is recorded"


async def _restart_run(lab: LabServer, base: str) -> tuple[ClientLog, ClientLog]:
    """tasks reconnects with a fresh session; sprint keeps its dead session id."""
    stop = asyncio.Event()
    good, stale = ClientLog(), ClientLog()
    clients = [
        asyncio.create_task(healthy_client(lab.url("tasks", base), stop, good)),
        asyncio.create_task(stale_client(lab.url("sprint", base), stop, stale)),
    ]
    try:
        await until(lambda: len(good.ok) >= 2 and len(stale.ok) >= 2, "both namespaces working")
        await asyncio.to_thread(lab.stop)
        t_down = time.time()
        await until(lambda: good.errors_since(t_down) >= 2 and stale.errors_since(t_down) >= 2, "failed attempts while the server is down")
        await asyncio.to_thread(lab.start)
        t_back = time.time()
        await until(lambda: good.ok_since(t_back) >= 2 and stale.errors_since(t_back) >= 4, "tasks rebound, sprint failing")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), WAIT)
    return good, stale


def test_restart_recorded_by_the_addon_gives_the_right_verdicts(lab, tmp_path):
    out, port = tmp_path / "run.jsonl", free_port()
    with start_proxy(port, lab.base_url, out) as proxy:
        good, stale = asyncio.run(_restart_run(lab, f"http://127.0.0.1:{port}"))
        assert proxy.running
    assert len({sid for _, sid in good.ok}) == 2, "tasks used a new session after the restart"
    recs = read(out)
    refused = [r for r in recs if r.kind == "end" and r.outcome == "refused"]
    assert refused and all("502" in r.detail for r in refused)
    assert any(r.kind == "conn" and r.event == "refused" and r.server == f"127.0.0.1:{lab.port}" for r in recs)
    assert any(r.kind == "response" and r.status == 404 for r in recs), "sprint's stale session is answered 404"

    result = subprocess.run([sys.executable, "-m", "mcpsniff", "analyze", str(out), "--format", "json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr  # a namespace stalled
    doc = json.loads(result.stdout)
    verdicts = {ns["name"]: ns["diagnosis"]["verdict"] for ns in doc["namespaces"]}
    assert verdicts == {"tasks": "rebound", "sprint": "stalled"}
    sprint = next(ns for ns in doc["namespaces"] if ns["name"] == "sprint")
    assert sprint["diagnosis"]["signature"] in ("stale-session-loop", "resume-without-initialize")
    assert sprint["diagnosis"]["stall_point"]["target"] == "/sprint/mcp"


def test_cli_proxy_stops_on_sigterm_and_prints_the_analysis(lab, tmp_path):
    out, port = tmp_path / "run.jsonl", free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(port), "--upstream", lab.base_url, "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + WAIT
        while not (out.exists() and out.stat().st_size):  # the addon writes its header line on start
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "proxy did not start"
            time.sleep(0.05)
        wait_port(port, timeout=60)  # mitmdump starts slowly on a loaded machine

        async def one_call() -> str:
            async with lab_session(lab.url("sprint", f"http://127.0.0.1:{port}")) as s:
                return await call_text(s, "echo", text="hi")

        assert asyncio.run(one_call()) == "sprint:hi"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"records written to {out}" in stderr and "Traceback" not in stderr
    assert "sprint" in stdout
    assert any(r.kind == "request" and r.target == "/sprint/mcp" for r in read(out))


def test_busy_port_and_bad_upstream_are_clear_errors(lab, tmp_path):
    with pytest.raises(CaptureError, match="busy"):
        start_proxy(lab.port, "http://127.0.0.1:9", tmp_path / "x.jsonl")
    with pytest.raises(CaptureError, match="upstream must look like"):
        start_proxy(free_port(), "127.0.0.1:5076", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_missing_mitmdump_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CaptureError, match="mitmdump not found"):
        start_proxy(free_port(), "http://127.0.0.1:5076", tmp_path / "x.jsonl")


def test_cli_proxy_bad_upstream_is_a_one_line_error():
    result = subprocess.run([sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(free_port()), "--upstream", "nonsense"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("mcpsniff: error: upstream must look like") and "Traceback" not in result.stderr
