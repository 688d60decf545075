"""`mcpsniff export`: HAR 1.2 structure and OTLP/JSON checked with the official protobuf classes."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import REAL
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from mcpsniff.api import analyze_files
from mcpsniff.cli import main
from mcpsniff.report.har import build_har
from mcpsniff.report.otlp import build_otlp

ONE_STALE = REAL / "one-stale" / "capture.pcap"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,6}Z$")

# HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): required members and their types.
HAR_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "log": {"version": str, "creator": dict, "entries": list},
    "creator": {"name": str, "version": str},
    "page": {"startedDateTime": str, "id": str, "title": str, "pageTimings": dict},
    "entry": {"startedDateTime": str, "time": (int, float), "request": dict, "response": dict, "cache": dict, "timings": dict},
    "request": {"method": str, "url": str, "httpVersion": str, "cookies": list, "headers": list, "queryString": list, "headersSize": int, "bodySize": int},
    "response": {"status": int, "statusText": str, "httpVersion": str, "cookies": list, "headers": list, "content": dict, "redirectURL": str, "headersSize": int, "bodySize": int},
    "content": {"size": int, "mimeType": str},
    "timings": {"send": (int, float), "wait": (int, float), "receive": (int, float)},
    "postData": {"mimeType": str},
}


def has_required(obj: dict[str, Any], kind: str) -> None:
    for key, typ in HAR_REQUIRED[kind].items():
        assert key in obj, f"{kind} lacks {key}"
        assert isinstance(obj[key], typ) and not isinstance(obj[key], bool), f"{kind}.{key} is {type(obj[key]).__name__}"


def check_har(doc: dict[str, Any]) -> None:
    """Everything HAR 1.2 requires, and custom members only with a leading underscore."""
    assert set(doc) == {"log"}
    log = doc["log"]
    has_required(log, "log")
    assert log["version"] == "1.2"
    has_required(log["creator"], "creator")
    pages = {p["id"] for p in log.get("pages", [])}
    for page in log.get("pages", []):
        has_required(page, "page")
    standard_entry = set(HAR_REQUIRED["entry"]) | {"pageref", "serverIPAddress", "connection", "comment"}
    for entry in log["entries"]:
        has_required(entry, "entry")
        assert all(k in standard_entry or k.startswith("_") for k in entry)
        assert ISO.match(entry["startedDateTime"])
        assert entry.get("pageref", next(iter(pages), None)) in pages
        has_required(entry["request"], "request")
        has_required(entry["response"], "response")
        has_required(entry["response"]["content"], "content")
        has_required(entry["timings"], "timings")
        if "postData" in entry["request"]:
            has_required(entry["request"]["postData"], "postData")
        for pairs in (entry["request"]["headers"], entry["response"]["headers"], entry["request"]["queryString"]):
            assert all(set(h) == {"name", "value"} and all(isinstance(v, str) for v in h.values()) for h in pairs)
        t = entry["timings"]
        assert all(t[k] >= 0 for k in ("send", "wait", "receive"))
        assert all(t.get(k, -1) >= -1 for k in ("blocked", "dns", "connect", "ssl"))
        assert abs(entry["time"] - sum(v for k, v in t.items() if k != "ssl" and v > 0)) < 0.01


@pytest.fixture(scope="module")
def one_stale():  # type: ignore[no-untyped-def]
    return analyze_files([ONE_STALE], full=True)


def test_har_export_is_valid_har_with_sse_events(one_stale, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "one-stale.har"
    result = CliRunner().invoke(main, ["export", str(ONE_STALE), "--har", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    check_har(doc)
    entries = doc["log"]["entries"]
    assert len(entries) == sum(len(ns.exchanges) for ns in one_stale.namespaces)
    assert [e["startedDateTime"] for e in entries] == sorted(e["startedDateTime"] for e in entries)
    streamed = [e for e in entries if e["response"]["content"]["mimeType"].startswith("text/event-stream")]
    assert streamed and all("_sseEvents" in e for e in streamed)
    with_events = [e for e in streamed if e["_sseEvents"]]
    event = with_events[0]["_sseEvents"][0]
    assert isinstance(event["time"], float) and json.loads(event["data"])["jsonrpc"] == "2.0"
    assert f"data: {event['data']}" in with_events[0]["response"]["content"]["text"]  # the raw stream, for plain viewers
    sprint_404 = [e for e in entries if e["_mcp"]["namespace"] == "sprint" and e["response"]["status"] == 404]
    assert len(sprint_404) >= 2 and all(e["_mcp"]["error"] == "session-not-found" for e in sprint_404)
    stall = [e for e in entries if e["_mcp"]["stallPoint"]]
    assert len(stall) == 1 and stall[0]["_mcp"]["namespace"] == "sprint"
    assert doc["log"]["_mcpsniff"]["namespaces"]["sprint"]["signature"] == "stale-session-loop"


def test_har_export_reads_back_into_mcpsniff(tmp_path: Path) -> None:
    """The HAR reader (capture/har.py) takes our export: same namespaces, sessions, exchanges and SSE events."""
    out = tmp_path / "x.har"
    assert CliRunner().invoke(main, ["export", str(ONE_STALE), "--har", str(out)]).exit_code == 0
    original, again = analyze_files([ONE_STALE], full=True), analyze_files([out], full=True)
    assert [ns.name for ns in again.namespaces] == [ns.name for ns in original.namespaces]
    for a, b in zip(original.namespaces, again.namespaces):
        assert [g.session_id for g in b.generations] == [g.session_id for g in a.generations]
        assert len(b.exchanges) == len(a.exchanges)
        assert sum(len(ex.events) for ex in b.exchanges) == sum(len(ex.events) for ex in a.exchanges)


def test_har_is_redacted(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sample.namespaces[0].exchanges[0].request_headers = (("Authorization", "Bearer sk-verysecret-123456"), ("host", "127.0.0.1:5076"))
    text = json.dumps(build_har(sample))
    assert "sk-verysecret-123456" not in text and "Bearer [REDACTED]" in text
    sid = next(g.session_id for ns in sample.namespaces for g in ns.generations if g.session_id)
    assert sid in text and sid not in json.dumps(build_har(sample, share=True))


def otlp_to_proto(doc: dict[str, Any]) -> ExportTraceServiceRequest:
    """Load OTLP/JSON with the official classes. OTLP/JSON writes trace/span ids as hex where
    proto3 JSON expects base64 (the one documented difference), so convert those first."""
    doc = copy.deepcopy(doc)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return Parse(json.dumps(doc), ExportTraceServiceRequest())


def attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


def test_otlp_export_loads_into_the_official_protobuf_classes(one_stale, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "traces.json"
    result = CliRunner().invoke(main, ["export", str(ONE_STALE), "--otlp", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    raw_spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    for span in raw_spans:  # the OTLP/JSON rules that differ from plain proto3 JSON
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
        assert isinstance(span["startTimeUnixNano"], str) and isinstance(span["kind"], int)
    Parse(out.read_text(), ExportTraceServiceRequest())  # field names, nesting and value types as the proto declares
    request = otlp_to_proto(doc)
    spans = [(rs, s) for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == len(raw_spans)
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for _, s in spans)
    assert all(s.end_time_unix_nano >= s.start_time_unix_nano > 1_700_000_000 * 10**9 for _, s in spans)
    services = [attrs(rs.resource.attributes)["service.name"] for rs in request.resource_spans]
    assert services == ["tasks", "dev-agents", "sprint", "ci-infra", "mcpsniff"]

    # a trace per namespace session: sprint had one session, tasks two (before and after the restart)
    def traces(ns: str) -> dict[bytes, list[Any]]:
        out: dict[bytes, list[Any]] = {}
        for rs, s in spans:
            if attrs(rs.resource.attributes)["service.name"] == ns:
                out.setdefault(s.trace_id, []).append(s)
        return out

    assert len(traces("sprint")) == 1 and len(traces("tasks")) == 2
    for trace in traces("tasks").values():
        roots = [s for s in trace if not s.parent_span_id]
        assert len(roots) == 1 and all(s.parent_span_id == roots[0].span_id for s in trace if s is not roots[0])
        assert len({attrs(s.attributes)["mcp.session.id"] for s in trace if "mcp.session.id" in attrs(s.attributes)}) == 1
    sprint = next(iter(traces("sprint").values()))
    methods = [attrs(s.attributes).get("mcp.method.name") for s in sprint]
    assert {"initialize", "notifications/initialized", "tools/list", "tools/call"} <= set(methods)
    assert all(attrs(s.attributes)["mcpsniff.verdict"] == "stalled" and attrs(s.attributes)["mcpsniff.namespace"] == "sprint" for s in sprint)
    stall = [s for s in sprint if attrs(s.attributes).get("mcpsniff.stall_point")]
    assert len(stall) == 1 and stall[0].status.code == 2  # STATUS_CODE_ERROR
    assert attrs(stall[0].attributes)["http.response.status_code"] == 404
    assert any(ev.name == "mcpsniff.stall" for ev in stall[0].events)
    sse = [ev for _, s in spans for ev in s.events if ev.name == "notifications/message" or ev.name == "response"]
    assert sse, "SSE events become span events"


def test_otlp_ids_are_stable_and_redacted(sample) -> None:  # type: ignore[no-untyped-def]
    assert build_otlp(sample) == build_otlp(sample)
    sid = next(g.session_id for ns in sample.namespaces for g in ns.generations if g.session_id)
    assert sid in json.dumps(build_otlp(sample)) and sid not in json.dumps(build_otlp(sample, share=True))


def test_export_needs_a_target() -> None:
    result = CliRunner().invoke(main, ["export", str(ONE_STALE)])
    assert result.exit_code == 2 and "--har" in result.output
