"""`mcpsniff analyze` end to end: a real subprocess on a real capture, exit codes, JSON schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from mcpsniff.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
SCHEMA = json.loads((ROOT / "schemas" / "analysis.schema.json").read_text())


def test_subprocess_reports_the_stalled_namespace() -> None:
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "analyze", str(REAL / "one-stale" / "capture.pcap")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "stalled" in rows["sprint"] and "stale-session-loop" in rows["sprint"]
    for name in ("tasks", "dev-agents", "ci-infra"):
        assert rows[name].split()[1] == "rebound"
    assert "Traceback" not in proc.stderr


def test_healthy_capture_exits_zero() -> None:
    result = CliRunner().invoke(main, ["analyze", str(REAL / "healthy-cc" / "capture.pcap")])
    assert result.exit_code == 0, result.output
    assert "stalled" not in result.output


def test_json_output_validates_against_schema() -> None:
    result = CliRunner().invoke(main, ["analyze", "--format", "json", str(REAL / "one-stale" / "capture.pcap")])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    jsonschema.validate(doc, SCHEMA)
    verdicts = {ns["name"]: ns["diagnosis"]["verdict"] for ns in doc["namespaces"]}
    assert verdicts == {"tasks": "rebound", "dev-agents": "rebound", "sprint": "stalled", "ci-infra": "rebound"}


def test_namespace_filter() -> None:
    result = CliRunner().invoke(main, ["analyze", "--format", "json", "--namespace", "tasks", str(REAL / "one-stale" / "capture.pcap")])
    doc = json.loads(result.output)
    assert [ns["name"] for ns in doc["namespaces"]] == ["tasks"]
    assert result.exit_code == 0


def test_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "nope.pcap")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("namespaces:\n  - path: '('\n    name: x\n")
    result = CliRunner().invoke(main, ["analyze", "--config", str(cfg), str(REAL / "one-stale" / "capture.pcap")])
    assert result.exit_code == 2
    assert "invalid regular expression" in result.output


def test_config_renames_namespaces(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("namespaces:\n  - path: '^/(?P<ns>[^/]+)/mcp$'\n    name: 'lab-{ns}'\n")
    result = CliRunner().invoke(main, ["analyze", "--format", "json", "--config", str(cfg), str(REAL / "one-stale" / "capture.pcap")])
    names = {ns["name"] for ns in json.loads(result.output)["namespaces"]}
    assert names == {"lab-tasks", "lab-dev-agents", "lab-sprint", "lab-ci-infra"}


def test_every_command_has_help_with_an_example() -> None:
    for name, command in main.commands.items():
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output, f"`mcpsniff {name} --help` shows no example"


def _undocumented(doc: object, schema: dict, defs: dict, where: str = "$") -> list[str]:
    """Keys of ``doc`` the schema does not describe (following $ref, arrays and oneOf)."""
    if "$ref" in schema:
        return _undocumented(doc, defs[schema["$ref"].rsplit("/", 1)[-1]], defs, where)
    for branch in schema.get("oneOf", []):
        if branch.get("type") != "null" and doc is not None:
            return _undocumented(doc, branch, defs, where)
    out: list[str] = []
    if isinstance(doc, dict) and "properties" in schema:
        for key, value in doc.items():
            if key not in schema["properties"]:
                out.append(f"{where}.{key}")
            else:
                out += _undocumented(value, schema["properties"][key], defs, f"{where}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for item in doc[:50]:
            out += _undocumented(item, schema["items"], defs, f"{where}[]")
    return out


def test_every_field_of_the_json_is_in_the_schema() -> None:
    """The schema documents the whole output (both revisions, every diagnosis field)."""
    for case in ("ts-idle-get", "mixed-eras", "ts-fallback"):
        result = CliRunner().invoke(main, ["analyze", "--format", "json", "--full", str(REAL / case / "capture.pcap")])
        doc = json.loads(result.stdout)
        jsonschema.validate(doc, SCHEMA)
        assert doc["version"] == 2
        assert sorted(set(_undocumented(doc, SCHEMA, SCHEMA["$defs"]))) == [], case


ONE_STALE = "tests/data/real/one-stale/capture.pcap"
HOLDS_ONE_STALE = "it holds port 18202: tasks, dev-agents, sprint, ci-infra"
TWO_HOPS = "tests/data/real/ts-idle-get/capture.pcapng"  # client -> proxy (58771) and proxy -> server (37453)
NOT_FOUND = [  # (command line, the one line it must say)
    (["analyze", ONE_STALE, "--port", "9999"], f"no MCP traffic on port 9999 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["analyze", ONE_STALE, "--namespace", "nosuch"], f"no namespace nosuch in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["analyze", ONE_STALE, "--namespace", "tasks", "--namespace", "sprnt"], f"no namespace sprnt in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["analyze", ONE_STALE, "--namespace", "nosuch", "--port", "18202"], f"no namespace nosuch on port 18202 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["analyze", ONE_STALE, "--port", "9999", "--namespace", "nosuch"], f"no MCP traffic on port 9999 and no namespace nosuch on port 9999 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["analyze", TWO_HOPS, "--port", "37453", "--port", "9"], f"no MCP traffic on port 9 in {TWO_HOPS}; it holds port 37453: tasks, dev-agents, sprint, ci-infra; port 58771: tasks, dev-agents, sprint, ci-infra"),
    (["analyze", "tests/data/real/ts-idle-get/run.jsonl", "--port", "58771"], "no MCP traffic on port 58771 in tests/data/real/ts-idle-get/run.jsonl; it holds port 37453: tasks, dev-agents, sprint, ci-infra"),
    (["check", ONE_STALE, "--port", "9999"], f"no MCP traffic on port 9999 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["report", ONE_STALE, "--port", "9999", "-o", "{tmp}/r.html"], f"no MCP traffic on port 9999 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
    (["export", ONE_STALE, "--port", "9999", "--har", "{tmp}/x.har"], f"no MCP traffic on port 9999 in {ONE_STALE}; {HOLDS_ONE_STALE}"),
]


@pytest.mark.parametrize(("args", "says"), NOT_FOUND, ids=[" ".join(a[:1] + a[2:]) for a, _ in NOT_FOUND])
def test_a_port_or_namespace_the_capture_does_not_hold_is_named_with_what_it_holds(tmp_path: Path, args: list[str], says: str) -> None:
    """Not "(no MCP traffic found)" and exit 0: what was not found, what the capture holds, exit 2, nothing written."""
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", *(a.replace("{tmp}", str(tmp_path)) for a in args)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"mcpsniff: error: {says}"]
    assert proc.stdout == "" and not list(tmp_path.iterdir())


@pytest.mark.parametrize(("source", "port"), [(TWO_HOPS, 58771), (TWO_HOPS, 37453), ("tests/data/real/ts-idle-get/run.jsonl", 37453)])
def test_the_port_of_either_hop_or_of_the_records_still_picks_its_traffic(source: str, port: int) -> None:
    result = CliRunner().invoke(main, ["analyze", "--format", "json", "--port", str(port), str(ROOT / source)])
    assert result.exit_code == 1, result.output  # sprint stalled, as in every view of this run
    doc = json.loads(result.output)
    assert {ns["name"] for ns in doc["namespaces"]} == {"tasks", "dev-agents", "sprint", "ci-infra"}
    assert {ex["server"] for ns in doc["namespaces"] for ex in ns["exchanges"]} == {f"127.0.0.1:{port}"}
