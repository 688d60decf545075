"""Issue 13: hostile values in records and HAR files never end in a traceback, and a bogus
time never changes a verdict silently.  Each input is built here from a real run
(tests/data/real/ts-hang/run.jsonl, four namespaces, sprint stalled) and sent through
every command that reads it: analyze (text and JSON), report, export, check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff import records as R
from mcpsniff.cli import main

RUN = Path(__file__).resolve().parent / "data" / "real" / "ts-hang" / "run.jsonl"


def lines() -> list[dict]:
    return [json.loads(line) for line in RUN.read_text(encoding="utf-8").splitlines()]


def write(path: Path, docs: list[dict | str]) -> Path:
    path.write_text("\n".join(d if isinstance(d, str) else json.dumps(d, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8")
    return path


def first(docs: list[dict], kind: str, **match: object) -> int:
    return next(i for i, d in enumerate(docs) if d.get("kind") == kind and all(d.get(k) == v for k, v in match.items()))


def run_every_command(tmp_path: Path, path: Path) -> dict:
    """analyze (text, JSON), report, export (HAR, OTLP), check: no crash; the JSON analysis."""
    runner = CliRunner()
    out = {}
    for name, args in {
        "text": ["analyze", str(path)],
        "json": ["analyze", str(path), "--format", "json", "--full"],
        "report": ["report", str(path), "-o", str(tmp_path / "r.html")],
        "export": ["export", str(path), "--har", str(tmp_path / "x.har"), "--otlp", str(tmp_path / "x.json")],
        "check": ["check", str(path), "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "g.json")],
    }.items():
        result = runner.invoke(main, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exc_info)
        assert "Traceback" not in result.output + result.stderr, (name, result.stderr)
        assert result.exit_code in (0, 1), (name, result.exit_code, result.stderr)
        out[name] = result
    (tmp_path / "r.html").read_text(encoding="utf-8")
    json.loads((tmp_path / "x.har").read_text(encoding="utf-8"))
    return json.loads(out["json"].stdout)


def verdicts(doc: dict) -> dict[str, str]:
    return {ns["name"]: ns["diagnosis"]["verdict"] for ns in doc["namespaces"]}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("baseline")
    doc = run_every_command(tmp, write(tmp / "run.jsonl", lines()))
    assert verdicts(doc)["sprint"] == "stalled"
    return verdicts(doc)


WRONG_TYPES = {
    "t is a string": ("request", "t", "1796157245.5"),
    "headers is a dict": ("request", "headers", {"host": "x"}),
    "headers of two-letter keys": ("request", "headers", {"ab": "cd"}),
    "body is a list": ("request", "body", [1, 2]),
    "target is an int": ("request", "target", 404),
    "status is a string": ("response", "status", "200"),
    "status is 1e999": ("response", "status", "1e999"),
    "retry is huge": ("sse", "retry", 10**30),
    "frame is a float": ("conn", "frame", 1.5),
    "truncated is a string": ("request", "truncated", "no"),
    "server port is ²": ("request", "server", "127.0.0.1:²"),
    "server port of 5000 digits": ("request", "server", "127.0.0.1:" + "9" * 5000),
    "kind is a list": ("conn", "kind", ["conn"]),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_records_with_wrong_field_types_are_skipped_with_a_warning(tmp_path: Path, case: str, baseline: dict[str, str]) -> None:
    kind, key, value = WRONG_TYPES[case]
    docs = lines()
    i = first(docs, kind)
    docs[i] = {**docs[i], key: value}
    if value == "1e999":  # a number token, not a string
        docs[i] = json.dumps(docs[i]).replace('"1e999"', "1e999")
    doc = run_every_command(tmp_path, write(tmp_path / "bad.jsonl", docs))
    assert any(f"line {i + 1}: unreadable record skipped" in w for w in doc["warnings"]), doc["warnings"]


def test_lone_surrogates_in_records_are_replaced(tmp_path: Path) -> None:
    docs = lines()
    i = first(docs, "request", method="POST")
    text = [json.dumps(d) for d in docs]
    text[i] = text[i].replace('"method": "POST"', '"method": "POST", "body": "{\\"x\\": \\"\\ud800\\"}"', 1).replace('"target": "/', '"target": "/\\udfff', 1)
    text[i] = text[i].replace('"host", "127', '"host\\ud83d", "127', 1)
    path = tmp_path / "surrogates.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="ascii")
    doc = run_every_command(tmp_path, path)
    assert "\ufffd" in json.dumps(doc, ensure_ascii=False)


def test_deep_nesting_and_huge_numbers_in_records(tmp_path: Path, baseline: dict[str, str]) -> None:
    docs: list[dict | str] = list(lines())
    docs.insert(5, "[" * 100_000 + "]" * 100_000)
    docs.insert(6, '{"kind": "sse", "t": 1796157245.6, "xid": "c1.1", "retry": ' + "9" * 5000 + "}")
    doc = run_every_command(tmp_path, write(tmp_path / "deep.jsonl", docs))
    assert verdicts(doc) == baseline
    assert any("nested too deeply" in w for w in doc["warnings"]) and any("line 7" in w for w in doc["warnings"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 1e300, -1e300])
def test_impossible_times_in_records_are_refused_and_verdicts_kept(tmp_path: Path, bad: float, baseline: dict[str, str]) -> None:
    docs = lines()
    i = first(docs, "end")
    text = [json.dumps(d) for d in docs]
    text[i] = text[i].replace(f'"t": {docs[i]["t"]!r}', f'"t": {json.dumps(bad)}' if math.isfinite(bad) else f'"t": {"NaN" if bad != bad else "Infinity"}')
    text.append(json.dumps({"kind": "response", "t": 1796157300.0, "xid": "c1.1", "status": 200, "t_end": bad}) if math.isfinite(bad) else text[-1])
    path = tmp_path / "times.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    doc = run_every_command(tmp_path, path)
    assert verdicts(doc) == baseline
    assert any(f"line {i + 1}: unreadable record skipped" in w and "seconds since the epoch" in w for w in doc["warnings"]), doc["warnings"]


def test_one_record_far_in_the_future_is_dropped_not_a_verdict_change(tmp_path: Path, baseline: dict[str, str]) -> None:
    """t = 4e9 is a valid time (2096) but 9,000 days off its neighbours: without the guard the
    capture would seem to end in 2096 and every namespace that waits would be 'stalled'."""
    docs = lines()
    i = first(docs, "conn", event="opened", conn="c5")
    docs[i] = {**docs[i], "t": 4.0e9}
    doc = run_every_command(tmp_path, write(tmp_path / "future.jsonl", docs))
    assert verdicts(doc) == baseline
    assert any("record skipped: its time 4000000000.000" in w for w in doc["warnings"]), doc["warnings"]


def test_a_jump_that_cannot_be_told_apart_is_warned_about(tmp_path: Path) -> None:
    docs = lines()
    last = max(d["t"] for d in docs if isinstance(d.get("t"), float))
    docs.append({"kind": "conn", "t": last + 10 * 86400, "conn": "c999", "event": "opened", "client": "127.0.0.1:1", "server": "127.0.0.1:55337"})
    doc = run_every_command(tmp_path, write(tmp_path / "jump.jsonl", docs))
    assert any("time jumps by +10.0 days" in w for w in doc["warnings"]), doc["warnings"]


def test_the_writer_never_loses_a_record_to_a_surrogate(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        writer = R.RecordWriter(fh, source="test")
        writer.write(R.Request(t=1.0, conn="c1", xid="c1.1", method="GET", target="/a\udce9", headers=(("x-bin", "caf\udce9"),)))
    recs = list(R.read_records(path.read_text(encoding="utf-8").splitlines()))
    assert [r.kind for r in recs] == ["meta", "request"]
    assert R.escaped("caf\udce9") == "caf\\xe9"


# ------------------------------------------------------------------------------ HAR


def har(entries: list[dict]) -> dict:
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}}


def entry(**over: object) -> dict:
    base = {
        "startedDateTime": "2026-12-01T20:34:05.000Z", "time": 12.5, "connection": "1",
        "request": {"method": "POST", "url": "http://127.0.0.1:5076/tasks/mcp", "headers": [{"name": "content-type", "value": "application/json"}],
                    "postData": {"mimeType": "application/json", "text": '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}'}},
        "response": {"status": 200, "statusText": "OK", "headers": [{"name": "content-type", "value": "text/event-stream"}, {"name": "mcp-session-id", "value": "s1"}],
                     "content": {"mimeType": "text/event-stream", "text": 'event: message\ndata: {"jsonrpc":"2.0","id":0,"result":{}}\n\n'}},
        "timings": {"send": 1, "wait": 10, "receive": 1.5},
    }
    base.update(over)
    return base


HAR_CASES = {
    "status 1e999": lambda e: e["response"].update(status="@1e999@"),
    "retry 1e999": lambda e: e.update(_sseEvents=[{"time": 1796157245.6, "data": "x", "retry": "@1e999@"}]),
    "retry of 5000 digits": lambda e: e.update(_sseEvents=[{"time": 1796157245.6, "data": "x", "retry": "9" * 5000}]),
    "time NaN": lambda e: e.update(startedDateTime="@NaN@"),
    "time 1e300": lambda e: e.update(startedDateTime=1e300),
    "time year 1": lambda e: e.update(startedDateTime="0001-01-01T00:00:00Z"),
    "negative time": lambda e: e.update(startedDateTime=-5.0),
    "missing request": lambda e: e.pop("request"),
    "url port ²": lambda e: e["request"].update(url="http://127.0.0.1:²/tasks/mcp"),
    "lone surrogate": lambda e: e["request"].update(method="POST\ud800"),
}


@pytest.mark.parametrize("case", list(HAR_CASES))
def test_har_entry_with_hostile_values(tmp_path: Path, case: str) -> None:
    bad = entry()
    HAR_CASES[case](bad)
    good = entry(startedDateTime="2026-12-01T20:34:06.000Z", connection="2")
    text = json.dumps(har([bad, good])).replace('"@', "").replace('@"', "")
    path = tmp_path / "x.har"
    path.write_text(text, encoding="ascii")
    doc = run_every_command(tmp_path, path)
    assert [ns["name"] for ns in doc["namespaces"]] == ["tasks"]  # the good entry is read
    if case != "lone surrogate":
        assert any("entry 1 skipped" in w for w in doc["warnings"]), doc["warnings"]


def test_har_nested_100k_deep_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.har"
    path.write_text('{"log": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="ascii")
    result = CliRunner().invoke(main, ["analyze", str(path)])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr and "Traceback" not in result.stderr
