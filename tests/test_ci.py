"""`mcpsniff ci` end to end: a real subprocess around a real command that restarts a real MCP server.

The command is tests/ci_scenario.py (official-SDK server and clients, one restart).
Loopback capture needs raw sockets (root here and in CI); without them those tests
are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from mcp_lab import free_port

from mcpsniff.capture.live import LiveCapture
from mcpsniff.errors import CaptureError

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "ci_scenario.py"


def raw_sockets_refused(tmp: Path) -> str | None:
    try:
        LiveCapture([9], tmp / "probe.pcapng").start().stop()
    except CaptureError as exc:
        return str(exc)
    return None


@pytest.fixture
def loopback(tmp_path: Path) -> None:
    reason = raw_sockets_refused(tmp_path)
    if reason:
        pytest.skip(f"loopback capture unavailable: {reason}")


def ci(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``env``: what a GitHub Actions step would add (GITHUB_ACTIONS, GITHUB_STEP_SUMMARY)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run([sys.executable, "-m", "mcpsniff", "ci", *args], cwd=cwd, capture_output=True, text=True, timeout=240, env={**base, **(env or {})})


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def test_loopback_run_with_a_stalled_namespace_fails_the_gate(tmp_path: Path, loopback: None) -> None:
    port = free_port()
    out = tmp_path / "bundle"
    step_summary = tmp_path / "step-summary.md"
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step_summary)}  # as a GitHub Actions step runs it
    proc = ci(["--port", str(port), "--artifacts", str(out), "--", sys.executable, str(SCENARIO), "--port", str(port), "--stale", "sprint"], tmp_path, github)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "| sprint | stalled :x: |" in step_summary.read_text()
    assert [line for line in proc.stdout.splitlines() if line.startswith("::error title=mcpsniff%3A sprint stalled::")]
    assert "Traceback" not in proc.stderr
    assert {p.name for p in out.iterdir()} >= {"capture.pcapng", "report.html", "summary.json", "junit.xml"}
    cases = junit_cases(out / "junit.xml")
    failure = cases["sprint"].find("failure")
    assert failure is not None and "stale-session-loop" in failure.get("message") and "POST /sprint/mcp" in failure.get("message")
    assert cases["tasks"].find("failure") is None
    assert cases["command"].find("failure") is None  # the command itself succeeded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["command"]["exit_code"] == 0
    assert summary["namespaces"]["sprint"]["verdict"] == "stalled"
    assert summary["namespaces"]["tasks"]["verdict"] == "rebound"
    assert summary["namespaces"]["tasks"]["rebind_seconds"] is not None  # the server's return was seen
    assert summary["restarts"] and summary["capture"] == {"via": "loopback", "port": port, "file": "capture.pcapng"}
    html = (out / "report.html").read_text()
    assert "stale-session-loop" in html and "sprint" in html
    assert "FAIL  sprint" in proc.stdout and "gate FAILED" in proc.stdout


def test_proxy_run_where_the_command_fails_but_the_gate_passes(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "bundle"
    # the scenario's clients reach the server through $MCPSNIFF_URL, i.e. the proxy
    proc = ci(["--port", str(port), "--via", "proxy", "--artifacts", str(out), "--require-rebind", "all", "--", sys.executable, str(SCENARIO), "--port", str(port), "--exit", "5"], tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} >= {"capture.jsonl", "report.html", "summary.json", "junit.xml"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"]["exit_code"] == 5 and summary["command"]["passed"] is False
    assert summary["gate"]["passed"] is True
    assert {ns: row["verdict"] for ns, row in summary["namespaces"].items()} == {"tasks": "rebound", "sprint": "rebound"}
    cases = junit_cases(out / "junit.xml")
    assert "exited with 5" in cases["command"].find("failure").get("message")
    assert all(cases[ns].find("failure") is None for ns in ("tasks", "sprint"))


@pytest.mark.parametrize(
    ("command", "extra", "says"),
    [
        (["mcpsniff-no-such-command-xyz"], [], "could not start"),
        ([sys.executable, "-c", "import time; time.sleep(60)"], ["--timeout", "1"], "timed out"),
    ],
)
def test_failed_command_without_traffic_still_writes_the_bundle(tmp_path: Path, loopback: None, command: list[str], extra: list[str], says: str) -> None:
    out = tmp_path / "bundle"
    proc = ci(["--port", str(free_port()), "--artifacts", str(out), *extra, "--", *command], tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr  # command failed and gate failed (nothing captured)
    summary = json.loads((out / "summary.json").read_text())
    assert says in summary["command"]["result"]
    assert "no MCP traffic" in summary["gate"]["problems"][0]
    cases = junit_cases(out / "junit.xml")
    assert cases["capture"].find("failure") is not None and cases["command"].find("failure") is not None


def test_processes_left_behind_by_the_command_are_stopped(tmp_path: Path, loopback: None) -> None:
    pidfile = tmp_path / "bg.pid"
    script = f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); open({str(pidfile)!r}, 'w').write(str(p.pid))"
    proc = ci(["--port", str(free_port()), "--artifacts", str(tmp_path / "b"), "--", sys.executable, "-c", script], tmp_path)
    assert proc.returncode == 1  # command ok, nothing captured
    pid = int(pidfile.read_text())
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().split()[2] == "Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "5076"], "Missing argument"),
        (["--port", "5076", "--via", "carrier-pigeon", "--", "true"], "Invalid value"),
        (["--port", "0", "--", "true"], "Invalid value"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = ci(args, tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_help_documents_the_exit_codes() -> None:
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "ci", "--help"], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert proc.returncode == 0
    for line in ("0  command succeeded, gate passed", "1  command succeeded, gate failed", "3  command failed", "4  command failed and gate failed"):
        assert line in proc.stdout


def test_readme_shows_the_workflow_example() -> None:
    import textwrap

    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "mcpsniff-restart.yml").read_text())
    steps = workflow["jobs"]["restart"]["steps"]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### GitHub Actions", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    shown = yaml.safe_load(textwrap.dedent(block))
    assert all(step in steps for step in shown)
    run = next(step["run"] for step in shown if "mcpsniff ci" in str(step.get("run")))
    assert run.startswith("uv run mcpsniff ci --port 5076") and "-- uv run python tests/ci_scenario.py --port 5076" in run
    assert any(step.get("uses", "").startswith("actions/upload-artifact") and step.get("if") == "always()" for step in shown)
