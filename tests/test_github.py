"""GitHub Actions integration of `check` and `ci` (job summary, ::error annotations) and SARIF.

GitHub itself cannot run here: its runner is simulated by what it gives a step, the
GITHUB_ACTIONS and GITHUB_STEP_SUMMARY variables (a fake of the runner, nothing else)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REAL = Path(__file__).resolve().parent / "data" / "real"
STALE = REAL / "one-stale" / "capture.pcap"


def check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mcpsniff check` as a step runs it: this environment without GitHub's variables, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run([sys.executable, "-m", "mcpsniff", "check", *args], capture_output=True, text=True, timeout=180, env={**base, **(env or {})})


def test_under_github_actions_check_writes_the_job_summary_and_annotations(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    proc = check(str(STALE), env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stderr
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, as GitHub expects
    assert "### mcpsniff: gate FAILED" in text and "| sprint | stalled :x: | proven | stale-session-loop |" in text
    assert "| tasks | rebound |" in text and "advice: On 404 for a request with a session id" in text
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith("::error title=mcpsniff%3A sprint stalled::stalled at #372 POST /sprint/mcp")


def test_outside_github_actions_nothing_extra(tmp_path: Path) -> None:
    proc = check(str(STALE))
    assert proc.returncode == 1 and "::error" not in proc.stdout


def test_sarif_has_a_rule_per_signature_and_a_result_per_failing_namespace(tmp_path: Path) -> None:
    out = tmp_path / "mcpsniff.sarif"
    proc = check(str(STALE), "--sarif", str(out))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    run = doc["runs"][0]
    assert run["tool"]["driver"]["name"] == "mcpsniff"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["stale-session-loop"]
    (result,) = run["results"]
    assert result["ruleId"] == "stale-session-loop" and result["level"] == "error"
    assert result["message"]["text"].startswith("sprint: stalled at #372")
    assert result["locations"][0]["logicalLocations"][0] == {"name": "sprint", "kind": "namespace"}
    assert result["properties"]["frame"] == 372 and result["properties"]["basis"] == "proven"


def test_a_passing_gate_writes_an_empty_sarif_run(tmp_path: Path) -> None:
    out = tmp_path / "ok.sarif"
    proc = check(str(REAL / "healthy-cc" / "capture.pcap"), "--sarif", str(out))
    assert proc.returncode == 0 and json.loads(out.read_text())["runs"][0]["results"] == []
