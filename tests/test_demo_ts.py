"""The demo's TypeScript-SDK client host (mcpsniff/demo/ts/host.mjs) against the real demo server,
and the real captures it made (tests/data/real/<scenario>/: truth.json agrees with client.log).

The live test runs real processes on loopback only (the Python SDK server, restarted once,
and one Node process with four official TS-SDK clients), bounded by deadlines; it checks
what each client itself ended in, from its own log, never how long anything took.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from mcpsniff.demo import NAMESPACES
from mcpsniff.demo.run import (
    HUNG_AFTER,
    SCENARIOS,
    Processes,
    client_outcomes,
    client_signature,
    free_ports,
    read_events,
    spawn_server,
    summary_of,
    truth_document,
    wait_ready,
)
from mcpsniff.demo.truth import revision_of

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
LABELLED = sorted(p for p in REAL.iterdir() if (p / "client.log").exists() and (p / "truth.json").exists()) if REAL.exists() else []
DEADLINE = 45.0  # s for everything the live test waits for after the restart

# real captures made by the 2026-07-28 lab under another name than the demo scenario that makes them now
LAB_NAMES = {"sessionless-healthy": "sessionless", "sessionless-one-dies": "sessionless-dies", "ts-fallback": "fallback"}

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="the ts client host needs node and npm")


def _by(events: list[dict[str, Any]], ns: str, event: str) -> list[dict[str, Any]]:
    return [ev for ev in events if ev.get("ns") == ns and ev.get("event") == event]


def _messages(events: list[dict[str, Any]], ns: str) -> list[str]:
    return [ev["detail"].get("message", "") for ev in _by(events, ns, "sdk_error")]


@needs_node
def test_ts_host_through_a_real_restart(tmp_path: Path) -> None:
    """cc rebinds with a new session; idle only has the SDK's two GET retries, which end while
    the server is down; stale resumes the old id into 404s; hang rebinds, then waits forever."""
    from mcpsniff.demo import tshost

    install = tshost.ensure_installed()
    port = free_ports(1)[0]
    log = tmp_path / "clients.jsonl"
    policies = {"tasks": "cc", "dev-agents": "stale", "sprint": "idle", "ci-infra": "hang"}
    procs = Processes()
    try:
        server = spawn_server(procs, port, tmp_path / "server.log")
        wait_ready(procs, server, port, tmp_path / "server.log")
        host = procs.spawn(tshost.command(install, f"http://127.0.0.1:{port}", policies, log, 0.5), tmp_path / "host.log")

        def wait_for(what: str, check: Any) -> list[dict[str, Any]]:
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                events = read_events(log)
                if check(events):
                    return events
                assert host.poll() is None, (tmp_path / "host.log").read_text()
                time.sleep(0.1)
            pytest.fail(f"timed out waiting for {what}; log tail: {log.read_text()[-2000:]}")

        wait_for("every namespace to list its tools and cc to call", lambda evs: all(_by(evs, ns, "tools_listed") for ns in NAMESPACES) and _by(evs, "tasks", "call_ok"))
        stopped_at = time.time()
        procs.stop(server)
        # the idle namespace's SDK gives up on its GET stream while nothing listens
        wait_for("sprint's SDK to give up its GET stream", lambda evs: any(m.startswith("Maximum reconnection attempts (2)") for m in _messages(evs, "sprint")))
        server = spawn_server(procs, port, tmp_path / "server.log")
        ready_at = wait_ready(procs, server, port, tmp_path / "server.log")
        wait_for("tasks to rebind, dev-agents to get a 404, ci-infra to send its hang call", lambda evs: (
            any(ev["t"] > ready_at for ev in _by(evs, "tasks", "reconnected"))
            and any("Session not found" in m for m in _messages(evs, "dev-agents"))
            and _by(evs, "ci-infra", "call_started")
        ))
        hang_sent = _by(read_events(log), "ci-infra", "call_started")[0]["t"]
        time.sleep(max(0.0, hang_sent + HUNG_AFTER + 0.5 - time.time()))  # so the pending call counts as hung
        os.killpg(host.pid, signal.SIGTERM)
        host.wait(15)
    finally:
        procs.cleanup()

    events = read_events(log)
    start = next(ev for ev in events if ev["event"] == "start")["detail"]
    assert start["client"] == "ts-sdk 1.32.2" and start["policies"] == policies
    summary = summary_of(events)
    for ns in NAMESPACES:
        for key in ("state", "policy", "gen", "session_id", "last_ok_call_time", "tools_known", "reconnect_attempts", "pending", "gave_up"):
            assert key in summary[ns], (ns, key)
        assert summary[ns]["policy"] == policies[ns]

    assert client_outcomes(events, ready_at) == {"tasks": "rebound", "dev-agents": "stalled", "sprint": "stalled", "ci-infra": "hung"}
    # cc: a new session after the restart, its tools listed again
    first, last = _by(events, "tasks", "connected")[0]["detail"], _by(events, "tasks", "connected")[-1]["detail"]
    assert last["session_id"] != first["session_id"] and not last["resumed"]
    assert summary["tasks"]["state"] == "bound" and summary["tasks"]["gave_up"] is False
    # idle: no call at all, only the SDK's own errors; the host never reconnected
    assert not _by(events, "sprint", "call_ok") and not _by(events, "sprint", "call_error") and not _by(events, "sprint", "reconnect_attempt")
    assert sum(m.startswith("Failed to reconnect SSE stream") for m in _messages(events, "sprint")) == 2
    assert summary["sprint"]["state"] == "stalled" and summary["sprint"]["gen"] == 1
    # stale: every later connect resumed the first session id, no initialize, 404 once the server was back
    resumed = _by(events, "dev-agents", "connected")[1:]
    assert resumed and all(ev["detail"]["resumed"] and ev["detail"]["session_id"] == first_sid(events, "dev-agents") for ev in resumed)
    assert summary["dev-agents"]["state"] == "stalled"
    # hang: rebound, then one call still pending when the host stopped
    assert any(ev["t"] > ready_at for ev in _by(events, "ci-infra", "reconnected"))
    assert summary["ci-infra"]["state"] == "hung"
    assert [p["tool"] for p in summary["ci-infra"]["pending"]] == ["hang"]
    # the call failures are told apart from the SDK's own errors
    assert all(ev["detail"]["message"] == "MCP error -32000: Connection closed" for ev in _by(events, "dev-agents", "call_error"))

    doc = truth_document(SCENARIOS["ts-hang"], events, client_outcomes(events, ready_at), {"server_stopped_at": stopped_at, "server_started_at": ready_at, "server_ready_at": ready_at}, port, "direct")
    assert doc["client"] == "ts-sdk 1.32.2"
    row = {"revision": "2025-era sessions", "client": "ts-sdk 1.32.2", "listen_reissued": None}
    assert doc["namespaces"]["ci-infra"] == {"expected": "stalled", "signature": "hung-call", "policy": "cc", **row, "first_ok_after_restart": doc["namespaces"]["ci-infra"]["first_ok_after_restart"]}
    assert doc["namespaces"]["tasks"]["first_ok_after_restart"] > ready_at
    assert doc["namespaces"]["tasks"] == {"expected": "rebound", "signature": "new-session", "policy": "cc", **row, "first_ok_after_restart": doc["namespaces"]["tasks"]["first_ok_after_restart"]}


def first_sid(events: list[dict[str, Any]], ns: str) -> str:
    return _by(events, ns, "connected")[0]["detail"]["session_id"]


def test_missing_node_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpsniff.demo import tshost
    from mcpsniff.errors import CaptureError

    monkeypatch.setattr(tshost.shutil, "which", lambda name: None)
    with pytest.raises(CaptureError) as err:
        tshost.ensure_installed()
    assert "node and npm not found" in str(err.value) and "\n" not in str(err.value)


def test_ts_host_lockfile_pins_the_sdks() -> None:
    ts = ROOT / "mcpsniff" / "demo" / "ts"
    package = json.loads((ts / "package.json").read_text())
    assert package["private"] is True
    assert package["dependencies"] == {"@modelcontextprotocol/sdk": "1.32.2", "@modelcontextprotocol/client": "2.4.0"}
    lock = json.loads((ts / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@modelcontextprotocol/sdk"]["version"] == "1.32.2"
    assert lock["packages"]["node_modules/@modelcontextprotocol/client"]["version"] == "2.4.0"


@pytest.mark.skipif(not LABELLED, reason="no labelled real captures in tests/data/real")
@pytest.mark.parametrize("folder", LABELLED, ids=[p.name for p in LABELLED])
def test_real_capture_truth_is_what_the_client_log_says(folder: Path) -> None:
    """truth.json's expected/signature (and revision, where it says one) are recomputed from the
    client's own log (and the same for the proxied run's proxied-truth.json / proxied-client.log
    where there is one)."""
    pairs = [("client.log", "truth.json", "capture.pcap")]
    if (folder / "proxied-truth.json").exists():
        pairs.append(("proxied-client.log", "proxied-truth.json", "capture.pcapng"))
        assert (folder / "run.jsonl").exists()
    for log_name, truth_name, capture in pairs:
        truth = json.loads((folder / truth_name).read_text())
        events = read_events(folder / log_name)
        assert summary_of(events), f"{log_name} ends with its summary line"
        outcomes = client_outcomes(events, truth["restart"]["server_ready_at"])
        scenario = SCENARIOS[LAB_NAMES.get(truth["scenario"], truth["scenario"])]
        for ns in NAMESPACES:
            want = truth["namespaces"][ns]
            assert ("rebound" if outcomes[ns] == "rebound" else "stalled") == want["expected"], (truth_name, ns)
            assert client_signature(events, ns, scenario.policy(ns), outcomes[ns], scenario.stateless) == want["signature"], (truth_name, ns)
            if "revision" in want:
                assert revision_of(events, ns) == want["revision"], (truth_name, ns)
        assert (folder / capture).stat().st_size < 1_000_000, capture
