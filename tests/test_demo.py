"""`mcpsniff demo` end to end (real server, proxy, capture and SDK clients as subprocesses),
its clean-up on Ctrl-C, and the sample captures it made (captures/sample-*)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcp_lab import raw_sockets_refused  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted(p for p in (ROOT / "captures").glob("sample-*") if (p / "expected.json").exists())


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text`` (the demo puts its output dir in them)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.skipif(raw_sockets_refused(), reason="the demo's live capture needs raw sockets (root or CAP_NET_RAW)")
def test_demo_end_to_end_finds_the_stalled_namespace(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k != "UV_RUN_RECURSION_DEPTH"}  # as from a shell with the venv on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "mcpsniff", "demo", "--scenario", "stale-session", "-o", str(out),
         "--warmup-seconds", "1", "--down-seconds", "2", "--settle-seconds", "12"],
        capture_output=True, text=True, timeout=240, cwd=ROOT, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # sprint stalled, as the scenario's client did
    assert "Traceback" not in proc.stderr
    for name in ("capture.pcapng", "run.jsonl", "clients.jsonl", "report.txt", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["namespaces"]
    assert rows["sprint"]["verdict"] == "stalled"
    assert rows["sprint"]["signature"] == "stale-session-loop"
    assert rows["sprint"]["stall_point"]
    for ns in ("tasks", "dev-agents", "ci-infra"):
        assert rows[ns]["verdict"] == "rebound", rows[ns]
    for ns, row in rows.items():  # every view: both pcap hops, the addon's jsonl, the clients' own log
        assert {row["server-hop"], row["client-hop"], row["jsonl"], row["client"]} == {row["expected"]}, (ns, row)
    assert summary["agree"] and summary["as_expected"]
    assert "sprint" in (out / "report.txt").read_text()
    verdicts = proc.stdout[proc.stdout.index("Demo 'stale-session' verdicts"):]
    assert "sprint      STALLED" in verdicts and "tasks       REBOUND" in verdicts
    assert "server back up" in proc.stderr and "clients connected" in proc.stderr
    assert processes_mentioning(str(out)) == []
    assert not listening(summary["ports"]["server"]) and not listening(summary["ports"]["proxy"])
    # it ends with what to do next: the report's path and the analyze command, which run as printed gives the same verdicts
    last = proc.stdout.rstrip().splitlines()[-3:]
    assert last[0] == "Next:" and last[1] == f"  report:  {out / 'report.html'}  (open it in a browser)", last
    command = last[2].removeprefix("  analyze: ")
    assert command == f"mcpsniff analyze {out / 'capture.pcapng'} --port {summary['ports']['server']}", command
    again = subprocess.run(["bash", "-c", command + " --format json"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 1, again.stderr  # sprint stalled
    assert {ns["name"]: ns["diagnosis"]["verdict"] for ns in json.loads(again.stdout)["namespaces"]} == {ns: row["verdict"] for ns, row in rows.items()}


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpsniff", "demo", "-o", str(out), "--no-html"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 180
        while b"clients connected" not in seen and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 0.2)[0]:
                seen += os.read(proc.stderr.fileno(), 4096)
        assert b"clients connected" in seen, seen.decode(errors="replace")
        assert processes_mentioning(str(out))  # server, mitmdump and clients are running
        proc.send_signal(signal.SIGINT)  # like Ctrl-C (the demo is not in our process group)
        _stdout, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted" in rest and b"Traceback" not in rest
    assert processes_mentioning(str(out)) == []


def test_unknown_scenario_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "demo", "--scenario", "nope"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert "Invalid value for '--scenario'" in proc.stderr


@pytest.mark.skipif(not SAMPLES, reason="no sample captures in captures/")
@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_captures_give_their_expected_verdicts(sample: Path) -> None:
    expected = json.loads((sample / "expected.json").read_text())
    views = {
        "pcap server hop": analyze_files([sample / "capture.pcapng"], ports=[expected["ports"]["server"]]),
        "pcap client hop": analyze_files([sample / "capture.pcapng"], ports=[expected["ports"]["proxy"]]),
        "run.jsonl": analyze_files([sample / "run.jsonl"]),
    }
    for view, analysis in views.items():
        got = {ns.name: ns.diagnosis.verdict for ns in analysis.namespaces}
        want = {ns: row["expected"] for ns, row in expected["namespaces"].items()}
        assert got == want, view
    server = {ns.name: ns.diagnosis.signature for ns in views["pcap server hop"].namespaces}
    for ns, row in expected["namespaces"].items():
        if row["expected"] == "stalled":
            assert server[ns] == row["signature"], ns


def test_samples_are_small() -> None:
    for sample in SAMPLES:
        assert sum(f.stat().st_size for f in sample.iterdir()) < 1_000_000, sample.name



def test_cli_offers_every_scenario() -> None:
    from mcpsniff.cli import demo
    from mcpsniff.demo.run import SCENARIOS

    choice = next(p for p in demo.params if p.name == "scenario").type
    assert sorted(choice.choices) == sorted(SCENARIOS)


def test_the_analyze_command_is_spelled_for_the_shell_the_demo_ran_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under `uv run` (scripts/demo.sh) the shell needs `uv run` too; a path with a space is quoted."""
    from mcpsniff.demo.nextsteps import analyze_command, next_steps

    summary = {"files": {"report": "report.txt", "jsonl": "run.jsonl"}, "ports": {"proxy": 5077, "server": 5076}}
    out = tmp_path / "my demo"
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")
    assert analyze_command(out, summary) == f"uv run mcpsniff analyze '{out}/run.jsonl' --port 5076"
    assert next_steps(out, summary)[2] == f"  report:  {out}/report.txt"
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH")
    monkeypatch.setenv("PATH", str(tmp_path))  # no mcpsniff on PATH: this interpreter
    assert analyze_command(out, summary).startswith(f"{sys.executable} -m mcpsniff analyze ")
