"""`mcpsniff check`: the CI gate on the real captures, JUnit and JSON outputs, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff.analysis.gate import ALL, GateRule, evaluate, parse_require
from mcpsniff.api import analyze_files
from mcpsniff.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
ONE_STALE = REAL / "one-stale" / "capture.pcap"
HEALTHY = REAL / "healthy-cc" / "capture.pcap"


def cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {case.get("name"): case for case in root.iter("testcase")}


def test_one_stale_fails_and_names_sprint_in_junit(tmp_path: Path) -> None:
    junit, summary = tmp_path / "junit.xml", tmp_path / "gate.json"
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "check", str(ONE_STALE), "--junit", str(junit), "--json", str(summary)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    found = cases(junit)
    assert set(found) == {"tasks", "dev-agents", "sprint", "ci-infra"}
    failure = found["sprint"].find("failure")
    assert failure is not None
    message = failure.get("message")
    assert "sprint" in message and "stale-session-loop" in message
    assert "POST /sprint/mcp (tools/call) -> 404" in message  # the stall point
    assert failure.get("type") == "stale-session-loop"
    assert "initialize" in failure.text  # explanation and advice travel in the body
    for name in ("tasks", "dev-agents", "ci-infra"):
        assert found[name].find("failure") is None and found[name].find("skipped") is None
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1"
    doc = json.loads(summary.read_text())
    assert doc["gate"]["passed"] is False
    assert doc["namespaces"]["sprint"]["passed"] is False and doc["namespaces"]["tasks"]["passed"] is True
    assert doc["stalled"] == ["sprint"]
    assert "FAIL  sprint" in proc.stdout and "gate FAILED" in proc.stdout


def test_healthy_capture_passes_with_every_namespace_required(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(main, ["check", str(HEALTHY), "--require-rebind", "all", "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output
    found = cases(junit)
    assert len(found) == 4 and all(case.find("failure") is None for case in found.values())
    assert all(float(case.get("time")) < 1.0 for case in found.values())  # time = seconds to rebind after the server came back


@pytest.mark.parametrize(
    ("args", "code", "failing"),
    [
        # one-stale: tasks, dev-agents and ci-infra rebound 6.7 s after the server came back
        (["--within", "10"], 1, {"sprint"}),
        (["--within", "5"], 1, {"tasks", "dev-agents", "sprint", "ci-infra"}),
        (["--within", "5", "--require-rebind", "tasks"], 1, {"tasks"}),
        (["--within", "10", "--require-rebind", "tasks,ci-infra"], 0, set()),
        (["--require-rebind", "tasks,nosuch"], 1, {"nosuch"}),
    ],
)
def test_within_and_require_rebind(args: list[str], code: int, failing: set[str]) -> None:
    result = CliRunner().invoke(main, ["check", str(ONE_STALE), *args])
    assert result.exit_code == code, result.output
    failed = {line.split()[1] for line in result.output.splitlines() if line.startswith("FAIL  ")}
    assert failed == failing


def test_within_on_healthy_capture() -> None:
    assert CliRunner().invoke(main, ["check", str(HEALTHY), "--within", "1"]).exit_code == 0
    result = CliRunner().invoke(main, ["check", str(HEALTHY), "--within", "0.01"])
    assert result.exit_code == 1
    assert "later than the allowed 0.01 s" in result.output


def test_within_defaults_to_the_config_threshold(tmp_path: Path) -> None:
    config = tmp_path / "mcpsniff.yaml"
    config.write_text("thresholds:\n  rebind_within: 5\n")
    result = CliRunner().invoke(main, ["check", str(ONE_STALE), "--config", str(config), "--require-rebind", "tasks"])
    assert result.exit_code == 1
    assert "later than the allowed 5 s" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(ROOT / "README.md")], "not a pcap"),
        (["/nonexistent/capture.pcap"], "No such file"),
        ([str(ONE_STALE), "--within", "-1"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_without_traceback(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["check", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_gate_rule_parsing_and_wording() -> None:
    assert parse_require(None) is None and parse_require(" ") is None
    assert parse_require("ALL") == ALL
    assert parse_require("tasks, sprint,tasks") == ("tasks", "sprint")
    assert GateRule().describe() == "no namespace stalled"
    assert GateRule(("a", "b"), 3).describe() == "a, b rebound within 3 s after the server came back"


def test_no_mcp_traffic_fails_the_gate(tmp_path: Path) -> None:
    # A records file with a header and nothing else: a gate that checked nothing must not pass.
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"kind":"meta","source":"mitm","origin":"","format":"mcpsniff-records","version":1}\n')
    gate = evaluate(analyze_files([empty]), GateRule())
    assert not gate.passed
    assert "no MCP traffic" in gate.problems[0]
