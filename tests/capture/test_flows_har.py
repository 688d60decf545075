"""mitmproxy flow files and HAR files -> records: from a real mitmdump run, and table-driven edge cases."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mitmproxy import flow, io
from mitmproxy.http import Headers
from mitmproxy.test import tflow, tutils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import LabServer, call_text, free_port, lab_session, wait_port  # noqa: E402

from mcpsniff import records as R  # noqa: E402
from mcpsniff.api import sniff_format  # noqa: E402
from mcpsniff.capture.har import read_har  # noqa: E402
from mcpsniff.capture.mitm import read_flows  # noqa: E402
from mcpsniff.capture.proxy import find_mitmdump  # noqa: E402
from mcpsniff.errors import BadInputError  # noqa: E402


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, Path, int]:
    """Plain mitmdump (no mcpsniff addon) writing a flow file and a HAR: an SDK session,
    then the server stops and one more call gets 502."""
    tmp = tmp_path_factory.mktemp("mitm")
    flows, har, port = tmp / "flows.mitm", tmp / "run.har", free_port()
    with LabServer(("tasks",)) as lab:
        cmd = [find_mitmdump(), "--mode", f"reverse:{lab.base_url}", "--listen-host", "127.0.0.1", "-p", str(port), "-w", str(flows), "--set", f"hardump={har}", "--set", "connection_strategy=lazy", "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(port, timeout=60)  # mitmdump starts slowly on a loaded machine
            url = lab.url("tasks", f"http://127.0.0.1:{port}")

            async def session() -> None:
                async with lab_session(url) as s:
                    assert await call_text(s, "echo", text="one") == "tasks:one"

            async def call_while_down() -> None:
                with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 502 as an error
                    async with lab_session(url, timeout=5):
                        pass

            asyncio.run(session())
            lab.stop()
            asyncio.run(call_while_down())
        finally:
            proc.send_signal(signal.SIGTERM)  # hardump is written on shutdown
            proc.wait(timeout=30)
    return flows, har, lab.port


def _rpc_methods(recs: list[R.Record]) -> list[str]:
    return [json.loads(r.body).get("method", "") for r in recs if r.kind == "request" and r.body]


@pytest.mark.parametrize("reader", [read_flows, read_har], ids=["flows", "har"])
def test_real_mitmdump_files(real_run, reader):
    flows, har, upstream_port = real_run
    path = flows if reader is read_flows else har
    assert sniff_format(path) == ("mitm" if reader is read_flows else "har")
    recs = list(reader(path))
    assert recs[0].kind == "meta" and recs[0].source == ("mitm-flows" if reader is read_flows else "har")
    methods = _rpc_methods(recs)
    assert methods[:2] == ["initialize", "notifications/initialized"] and "tools/call" in methods
    call = next(r for r in recs if r.kind == "request" and '"tools/call"' in r.body)
    assert call.target == "/tasks/mcp" and call.server.endswith(f":{upstream_port}")
    events = [r for r in recs if r.kind == "sse" and r.xid == call.xid]
    assert [json.loads(e.data)["result"]["content"][0]["text"] for e in events] == ["tasks:one"]
    ends = {r.xid: r for r in recs if r.kind == "end"}
    assert ends[call.xid].outcome == "complete"
    assert any(r.kind == "end" and r.outcome == "refused" for r in recs), "the 502 while the server was down"
    times = [r.t for r in recs if getattr(r, "t", None) is not None]
    assert times == sorted(times)


def _write_flows(path: Path, flows: list[flow.Flow]) -> None:
    with path.open("wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)


def _mcp_flow(resp=None, err=None, content=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}') -> flow.Flow:
    req = tutils.treq(host="127.0.0.1", port=5076, method=b"POST", path=b"/tasks/mcp", content=content, timestamp_start=100.0, timestamp_end=100.1)
    f = tflow.tflow(req=req, resp=resp or False, err=err or False)
    f.server_conn.address = ("127.0.0.1", 5076)
    return f


SSE = Headers(((b"content-type", b"text/event-stream"),))


@pytest.mark.parametrize(
    ("flow_", "expect"),
    [
        (_mcp_flow(resp=tutils.tresp(headers=SSE, content=b"event: message\ndata: a\n\ndata: b\r\n\r\n", timestamp_start=100.2, timestamp_end=100.5)), [("response", True), ("sse", "a", 100.5), ("sse", "b", 100.5), ("end", "complete")]),
        (_mcp_flow(resp=tutils.tresp(headers=SSE, content=None, timestamp_start=100.2, timestamp_end=100.5)), [("response", True), ("warning",), ("end", "complete")]),
        (_mcp_flow(err=flow.Error("[Errno 111] Connect call failed ('127.0.0.1', 5076)", 100.3)), [("conn", "refused"), ("end", "refused")]),
        (_mcp_flow(resp=tutils.tresp(headers=SSE, content=b"data: a\n\n", timestamp_start=100.2, timestamp_end=None), err=flow.Error("Client disconnected.", 101.0)), [("response", True), ("sse", "a", 100.2), ("end", "closed")]),
        (_mcp_flow(), [("end", "open-at-end")]),
    ],
    ids=["sse-body", "streamed-no-body", "refused", "client-disconnected", "no-response"],
)
def test_flow_file_cases(tmp_path, flow_, expect):
    path = tmp_path / "f.mitm"
    _write_flows(path, [flow_])
    recs = [r for r in read_flows(path) if r.kind not in ("meta",) and not (r.kind == "conn" and r.event in ("opened", "closed"))]
    assert recs[0].kind == "request" and recs[0].target == "/tasks/mcp"
    got = []
    for r in recs[1:]:
        if r.kind == "response":
            got.append(("response", r.stream))
        elif r.kind == "sse":
            got.append(("sse", r.data, r.t))
        elif r.kind == "end":
            got.append(("end", r.outcome))
        elif r.kind == "conn":
            got.append(("conn", r.event))
        else:
            got.append((r.kind,))
    assert got == expect


def test_damaged_flow_file_keeps_what_could_be_read(tmp_path):
    path = tmp_path / "f.mitm"
    _write_flows(path, [_mcp_flow(resp=tutils.tresp(timestamp_start=100.2, timestamp_end=100.3))])
    path.write_bytes(path.read_bytes() + b"9999:{garbage")
    recs = list(read_flows(path))
    assert [r.kind for r in recs if r.kind in ("request", "response", "end")] == ["request", "response", "end"]
    assert recs[-1].kind == "warning" and "damaged" in recs[-1].message


@pytest.mark.parametrize(
    ("content", "reader", "message"),
    [
        (b"12:not a flow!!", read_flows, "not a readable mitmproxy flow file"),
        (b"{not json", read_har, "invalid JSON"),
        (b'{"log": {"version": "1.2"}}', read_har, "no log.entries"),
        (b"[1, 2]", read_har, "no log.entries"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path, content, reader, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        list(reader(path))


def _har(*entries: dict) -> bytes:
    return json.dumps({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": list(entries)}}).encode()


def _entry(response: dict, **extra) -> dict:
    return {
        "startedDateTime": "2026-01-01T10:00:00.000Z",
        "time": 500,
        "request": {"method": "POST", "url": "http://127.0.0.1:5076/sprint/mcp", "headers": [{"name": "mcp-session-id", "value": "s1"}], "postData": {"mimeType": "application/json", "text": '{"jsonrpc":"2.0","id":3,"method":"tools/call"}'}},
        "response": response,
        "timings": {"send": 1, "wait": 99, "receive": 400},
        **extra,
    }


T0 = 1767261600.0  # 2026-01-01T10:00:00Z


@pytest.mark.parametrize(
    ("entry", "expect"),
    [
        (
            _entry({"status": 200, "statusText": "OK", "headers": [{"name": "Content-Type", "value": "application/json"}], "content": {"mimeType": "application/json", "text": '{"jsonrpc":"2.0","id":3,"result":{}}'}}),
            [("response", 200, T0 + 0.1, False), ("end", "complete", T0 + 0.5)],
        ),
        (
            _entry({"status": 200, "headers": [], "content": {"mimeType": "text/event-stream", "text": "data: one\n\nid: 7\nretry: 1500\ndata: two\n\n"}}),
            [("response", 200, T0 + 0.1, True), ("sse", "one", None, T0 + 0.5), ("sse", "two", "7", T0 + 0.5), ("end", "complete", T0 + 0.5)],
        ),
        (
            _entry({"status": 200, "headers": [], "content": {"mimeType": "text/event-stream", "text": ""}}, _sseEvents=[{"time": T0 + 0.2, "data": "early", "event": "message"}, {"time": "2026-01-01T10:00:00.300Z", "data": "later", "eventId": "9"}]),
            [("response", 200, T0 + 0.1, True), ("sse", "early", None, T0 + 0.2), ("sse", "later", "9", T0 + 0.3), ("end", "complete", T0 + 0.5)],
        ),
        (
            _entry({"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "eyJvayI6IHRydWV9", "encoding": "base64"}}),
            [("response", 200, T0 + 0.1, False), ("end", "complete", T0 + 0.5)],
        ),
        (
            _entry({"status": 0, "headers": [], "content": {}, "_error": "net::ERR_CONNECTION_REFUSED"}),
            [("conn", "refused"), ("end", "refused", T0 + 0.5)],
        ),
        (
            _entry({"status": 0, "headers": [], "content": {}, "_error": "Connection reset by peer"}),
            [("end", "reset", T0 + 0.5)],
        ),
    ],
    ids=["json", "sse-body", "sse-events-field", "base64", "refused", "reset"],
)
def test_har_cases(tmp_path, entry, expect):
    path = tmp_path / "x.har"
    path.write_bytes(_har(entry))
    assert sniff_format(path) == "har"
    recs = list(read_har(path))[1:]
    req = recs[0]
    assert (req.kind, req.method, req.target, req.server, req.t) == ("request", "POST", "/sprint/mcp", "127.0.0.1:5076", T0)
    assert ("mcp-session-id", "s1") in req.headers
    got = []
    for r in recs[1:]:
        if r.kind == "response":
            got.append(("response", r.status, pytest.approx(r.t), r.stream))
        elif r.kind == "sse":
            got.append(("sse", r.data, r.id, pytest.approx(r.t)))
        elif r.kind == "end":
            got.append(("end", r.outcome, pytest.approx(r.t)))
        elif r.kind == "conn":
            got.append(("conn", r.event))
    assert got == expect
    if entry["response"].get("encoding") or entry["response"].get("content", {}).get("encoding"):
        assert json.loads(recs[1].body) == {"ok": True}


def test_har_entries_share_a_connection_by_its_id_and_bad_entries_are_warnings(tmp_path):
    ok = _entry({"status": 202, "headers": [], "content": {}})
    path = tmp_path / "x.har"
    path.write_bytes(_har({**ok, "connection": "17"}, {"startedDateTime": "2026-01-01T10:00:01Z"}, {**ok, "connection": "17"}, ok))
    recs = list(read_har(path))
    assert [r.conn for r in recs if r.kind == "request"] == ["c1", "c1", "c2"]
    warnings = [r for r in recs if r.kind == "warning"]
    assert len(warnings) == 1 and "entry 2" in warnings[0].message
