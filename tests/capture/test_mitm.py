"""The mitmproxy addon, hook by hook (mitmproxy's own test helpers, output into a StringIO)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import connection, exceptions, flow, hooks
from mitmproxy import io as mio
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy import http
from mitmproxy.http import Headers
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import taddons, tflow, tutils

from mcpsniff import records as R
from mcpsniff.capture.mitm import McpSniff, read_flows

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ("127.0.0.1", 5076)
SSE_HEADERS = Headers(((b"content-type", b"text/event-stream"), (b"mcp-session-id", b"s1")))
INIT_BODY = b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}'


def records(out: io.StringIO) -> list[R.Record]:
    return list(R.read_records(out.getvalue().splitlines()))


def kinds(out: io.StringIO) -> list[str]:
    return [r.kind for r in records(out)]


@pytest.fixture
def addon() -> Iterator[tuple[McpSniff, io.StringIO, taddons.context]]:
    out = io.StringIO()
    sniff = McpSniff(stream=out, clock=lambda: 1000.5)
    with taddons.context(sniff) as tctx:
        tctx.configure(sniff, mode=["reverse:http://127.0.0.1:5076"])
        yield sniff, out, tctx


def client() -> connection.Client:
    conn = tflow.tclient_conn()
    conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:5076")
    conn.peername = ("127.0.0.1", 40000)
    conn.sockname = ("127.0.0.1", 5077)
    return conn


def mcp_flow(client_conn=None, method: bytes = b"POST", body: bytes = INIT_BODY) -> flow.Flow:
    req = tutils.treq(host="127.0.0.1", port=5076, method=method, path=b"/tasks/mcp", content=body, headers=Headers(((b"content-type", b"application/json"),)), timestamp_start=1000.0, timestamp_end=1000.01)
    f = tflow.tflow(client_conn=client_conn or client(), req=req)
    f.server_conn.address = UPSTREAM
    return f


def sse_response(**kw) -> http.Response:
    return tutils.tresp(headers=SSE_HEADERS.copy(), content=None, timestamp_start=1000.1, timestamp_end=None, **kw)


def test_json_exchange_is_recorded_with_the_flow_timestamps(addon):
    sniff, out, _ = addon
    conn = client()
    f = mcp_flow(conn)
    sniff.client_connected(conn)
    sniff.request(f)
    f.response = tutils.tresp(headers=Headers(((b"content-type", b"application/json"),)), content=b'{"jsonrpc":"2.0","id":0,"result":{}}', timestamp_start=1000.2, timestamp_end=1000.3)
    sniff.responseheaders(f)
    sniff.response(f)
    meta, opened, req, resp, end = records(out)
    assert meta.source == "mitm" and meta.origin == "reverse:http://127.0.0.1:5076"
    assert opened == R.ConnEvent(t=conn.timestamp_start, conn="c1", event="opened", client="127.0.0.1:40000", server="127.0.0.1:5076", by="proxy", detail="client connected to proxy 127.0.0.1:5077")
    assert (req.t, req.conn, req.xid, req.method, req.target, req.server) == (1000.0, "c1", "c1.1", "POST", "/tasks/mcp", "127.0.0.1:5076")
    assert req.body == INIT_BODY.decode() and req.body_size == len(INIT_BODY) and ("content-type", "application/json") in req.headers
    assert (resp.xid, resp.status, resp.t, resp.t_end, resp.stream) == ("c1.1", 200, 1000.2, 1000.3, False)
    assert json.loads(resp.body) == {"jsonrpc": "2.0", "id": 0, "result": {}}
    assert end == R.End(t=1000.3, xid="c1.1", outcome="complete")


def test_sse_events_are_recorded_as_they_pass_and_bytes_are_unchanged(addon):
    sniff, out, _ = addon
    f = mcp_flow()
    sniff.request(f)
    f.response = sse_response()
    sniff.responseheaders(f)
    assert callable(f.response.stream), "streaming must be switched on in responseheaders"
    assert kinds(out)[-1] == "response" and records(out)[-1].stream
    chunks = [b'event: message\r\ndata: {"method":"notifications/message"}\r\n\r\n', b"data: part", b"ial\r\n\r\n", b""]
    seen = []
    for chunk in chunks:
        assert f.response.stream(chunk) == chunk  # forwarded unchanged, immediately
        seen.append([r for r in records(out) if r.kind == "sse"])
    assert [e.data for e in seen[0]] == ['{"method":"notifications/message"}'], "first event recorded before the stream goes on"
    assert len(seen[1]) == 1 and [e.data for e in seen[2]][-1] == "partial"
    assert all(e.t == 1000.5 and e.xid == "c1.1" for e in seen[2])
    f.response.timestamp_end = 1001.0
    sniff.response(f)
    assert records(out)[-1] == R.End(t=1001.0, xid="c1.1", outcome="complete")
    assert kinds(out).count("response") == 1


def test_non_sse_responses_are_not_streamed(addon):
    sniff, _, _ = addon
    f = mcp_flow()
    f.response = tutils.tresp()
    sniff.responseheaders(f)
    assert f.response.stream is False


def test_refused_upstream_gives_conn_event_and_refused_end(addon):
    sniff, out, _ = addon
    conn = client()
    f = mcp_flow(conn)
    sniff.client_connected(conn)
    sniff.request(f)
    server = tflow.tserver_conn()
    server.address = UPSTREAM
    server.timestamp_start = 1000.02
    server.error = "[Errno 111] Connect call failed ('127.0.0.1', 5076)"
    sniff.server_connect_error(ServerConnectionHookData(server=server, client=conn))
    f.error = flow.Error("[Errno 111] Connect call failed ('127.0.0.1', 5076)", 1000.03)
    sniff.error(f)
    refused = [r for r in records(out) if r.kind == "conn" and r.event == "refused"]
    assert len(refused) == 1 and (refused[0].server, refused[0].conn, refused[0].t) == ("127.0.0.1:5076", "c1", 1000.02)
    end = records(out)[-1]
    assert (end.kind, end.xid, end.outcome, end.t) == ("end", "c1.1", "refused", 1000.03)
    assert "502" in end.detail


@pytest.mark.parametrize(
    ("message", "outcome", "server_close_recorded", "client_close_by"),
    [
        ("HTTP/1 protocol error: peer closed connection without sending complete message body (incomplete chunked read)", "closed", True, "server"),
        ("Client disconnected.", "closed", False, "client"),
        ("Connection reset by peer", "reset", True, "server"),
        ("something else went wrong", "error", True, "client"),
    ],
)
def test_disconnect_in_the_middle_of_a_stream(addon, message, outcome, server_close_recorded, client_close_by):
    sniff, out, _ = addon
    conn = client()
    f = mcp_flow(conn, method=b"GET", body=b"")
    sniff.client_connected(conn)
    sniff.request(f)
    f.response = sse_response()
    sniff.responseheaders(f)
    f.error = flow.Error(message, 1002.0)
    sniff.error(f)
    server = tflow.tserver_conn()
    server.address, server.timestamp_end = UPSTREAM, 1002.1
    sniff.server_disconnected(ServerConnectionHookData(server=server, client=conn))
    conn.timestamp_end = 1002.2
    sniff.client_disconnected(conn)
    recs = records(out)
    end = next(r for r in recs if r.kind == "end")
    assert (end.outcome, end.t, end.detail) == (outcome, 1002.0, message)
    closes = [r for r in recs if r.kind == "conn" and r.event == "closed"]
    assert [(c.by, c.t) for c in closes] == ([("server", 1002.1)] if server_close_recorded else []) + [(client_close_by, 1002.2)]


def test_done_closes_what_is_still_open(addon):
    sniff, out, _ = addon
    conn = client()
    sniff.client_connected(conn)
    f = mcp_flow(conn, method=b"GET", body=b"")
    sniff.request(f)
    f.response = sse_response()
    sniff.responseheaders(f)
    sniff.done()
    tail = records(out)[-2:]
    assert (tail[0].kind, tail[0].outcome) == ("end", "open-at-end")
    assert (tail[1].kind, tail[1].event, tail[1].conn) == ("conn", "open-at-end", "c1")


def test_connection_ids_per_client_and_exchange_ids_per_request(addon):
    sniff, out, _ = addon
    a, b = client(), client()
    for conn in (a, b, a):
        sniff.request(mcp_flow(conn))
    assert [(r.conn, r.xid) for r in records(out) if r.kind == "request"] == [("c1", "c1.1"), ("c2", "c2.1"), ("c1", "c1.2")]


@pytest.mark.parametrize(
    ("options", "config", "kept"),
    [
        ({}, None, len(INIT_BODY)),
        ({"mcpsniff_max_body": 10}, None, 10),
        ({}, "max_body: 12\n", 12),
        ({"mcpsniff_max_body": 5}, "max_body: 12\n", 5),
    ],
)
def test_body_cap_from_option_or_config(tmp_path, options, config, kept):
    out = io.StringIO()
    sniff = McpSniff(stream=out)
    with taddons.context(sniff) as tctx:
        if config is not None:
            (tmp_path / "c.yaml").write_text(config)
            options = {**options, "mcpsniff_config": str(tmp_path / "c.yaml")}
        tctx.configure(sniff, **options)
        sniff.request(mcp_flow())
    req = records(out)[-1]
    assert len(req.body) == kept and req.body_size == len(INIT_BODY)
    assert req.truncated == (kept < len(INIT_BODY))


@pytest.mark.parametrize(
    ("options", "config", "error"),
    [
        ({"mcpsniff_max_body": -1}, None, "mcpsniff_max_body"),
        ({}, "max_body: [1]\n", "max_body"),
        ({}, "nope: 1\n", "unknown key"),
        # an unwritable mcpsniff_output is no option error any more: logged and retried (tests/capture/test_robust_addon.py)
    ],
)
def test_bad_options_are_option_errors(tmp_path, options, config, error):
    sniff = McpSniff(stream=io.StringIO())
    with taddons.context(sniff) as tctx:
        if config is not None:
            (tmp_path / "c.yaml").write_text(config)
            options = {**options, "mcpsniff_config": str(tmp_path / "c.yaml")}
        with pytest.raises(exceptions.OptionsError, match=error):
            tctx.configure(sniff, **options)


def test_output_file_is_readable_after_every_record(tmp_path):
    path = tmp_path / "run.jsonl"
    sniff = McpSniff()
    with taddons.context(sniff) as tctx:
        tctx.configure(sniff, mcpsniff_output=str(path))
        f = mcp_flow()
        sniff.request(f)
        # no done(), no close: what a killed mitmdump leaves behind
        recs = list(R.read_records(path.read_text().splitlines()))
        assert [r.kind for r in recs] == ["meta", "request"]
        sniff.done()


def test_mitmproxys_default_connection_strategy_becomes_lazy_but_a_chosen_one_stays(caplog):
    out = io.StringIO()
    sniff = McpSniff(stream=out)
    with caplog.at_level(logging.INFO), taddons.context(Proxyserver(), sniff) as tctx:
        tctx.master.addons.invoke_addon_sync(sniff, hooks.ConfigureHook(set(tctx.options.keys())))  # as a script's load does
        assert tctx.options.connection_strategy == "lazy"
        tctx.configure(sniff, connection_strategy="eager")  # the user's choice, later (mitmweb's options)
        assert tctx.options.connection_strategy == "eager"
    said = [r.getMessage() for r in caplog.records if "connection_strategy" in r.getMessage()]
    assert len(said) == 1 and "default eager to lazy" in said[0], said
    assert kinds(out) == ["meta"], "reconfiguring does not start the output again"


def test_an_explicit_eager_connection_strategy_is_kept():
    sniff = McpSniff(stream=io.StringIO())
    with taddons.context(Proxyserver(), sniff) as tctx:
        tctx.options.update(connection_strategy="eager")  # --set connection_strategy=eager, before the script loads
        tctx.master.addons.invoke_addon_sync(sniff, hooks.ConfigureHook(set(tctx.options.keys())))
        assert tctx.options.connection_strategy == "eager"


def test_failures_are_logged_and_traffic_passes(addon, caplog):
    sniff, out, _ = addon
    out.close()  # every write now fails
    f = mcp_flow()
    with caplog.at_level(logging.ERROR):
        assert sniff.request(f) is None
        f.response = sse_response()
        sniff.responseheaders(f)
        data = b"data: x\n\n"
        assert callable(f.response.stream), "SSE is streamed even when recording fails"
        assert f.response.stream(data) == data
        sniff.response(f)
        sniff.done()
    assert "mcpsniff" in caplog.text and "traffic is not affected" in caplog.text


def test_addon_script_loads_from_a_checkout():
    with taddons.context() as tctx:
        loaded = tctx.script(str(ROOT / "addons" / "mcpsniff_addon.py"))
    assert [type(a).__name__ for a in loaded.addons] == ["McpSniff"]


SSE_CHUNKS = [b'event: message\r\ndata: {"a":1}\r\n\r\n', b"data: par", b"tial\r\n\r\n"]


@pytest.mark.parametrize(
    ("cap", "kept", "cut"),
    [
        (65536, b"".join(SSE_CHUNKS), False),
        (len(SSE_CHUNKS[0]), SSE_CHUNKS[0], True),  # the cap falls between two chunks
        (40, b"".join(SSE_CHUNKS)[:40], True),  # ... inside one
        (0, b"", True),
    ],
    ids=["whole", "cut-between-chunks", "cut-inside-a-chunk", "cap-0"],
)
def test_streamed_event_stream_is_kept_in_the_flow_up_to_the_cap(tmp_path, cap, kept, cut):
    """mitmproxy keeps no streamed body: the addon puts what passed in the flow (``-w``, mitmweb)."""
    sniff = McpSniff(stream=io.StringIO(), clock=lambda: 1000.5)
    with taddons.context(sniff) as tctx:
        tctx.configure(sniff, mcpsniff_max_body=cap)
        f = mcp_flow()
        sniff.request(f)
        f.response = sse_response()
        sniff.responseheaders(f)
        for chunk in [*SSE_CHUNKS, b""]:
            assert f.response.stream(chunk) == chunk
        assert f.response.raw_content is None, "nothing is set before the response ends"
        f.response.timestamp_end = 1001.0
        sniff.response(f)
    assert f.response.raw_content == kept
    assert ("mcpsniff_body_size" in f.metadata) == cut and ("cut to its first" in f.comment) == cut
    with (tmp_path / "flows").open("wb") as fh:
        mio.FlowWriter(fh).add(f)
    recs = list(read_flows(tmp_path / "flows"))
    events = [r.data for r in recs if r.kind == "sse"]
    assert events == ['{"a":1}', "partial"][: len(events)] and (len(events) == 2) == (not cut)
    warnings = [r.message for r in recs if r.kind == "warning"]
    assert bool(warnings) == cut and all(f"of {len(b''.join(SSE_CHUNKS))} bytes" in w for w in warnings)


def test_a_body_mitmproxy_kept_itself_is_left_alone():
    """With ``store_streamed_bodies`` mitmproxy sets the whole body before the response hook."""
    sniff = McpSniff(stream=io.StringIO())
    with taddons.context(Proxyserver(), sniff) as tctx:
        tctx.configure(sniff, store_streamed_bodies=True, mcpsniff_max_body=3)
        f = mcp_flow()
        f.response = sse_response()
        sniff.responseheaders(f)
        f.response.stream(SSE_CHUNKS[0])
        f.response.raw_content = SSE_CHUNKS[0]  # what mitmproxy does
        sniff.response(f)
    assert f.response.raw_content == SSE_CHUNKS[0] and not f.metadata and not f.comment


def test_a_stream_open_when_mitmdump_stops_or_cut_by_an_error_gets_its_body(addon):
    sniff, _, _ = addon
    open_at_end, cut = mcp_flow(), mcp_flow()
    for f in (open_at_end, cut):
        sniff.request(f)
        f.response = sse_response()
        sniff.responseheaders(f)
        f.response.stream(SSE_CHUNKS[0])
    cut.error = flow.Error("client disconnected", timestamp=1000.7)
    sniff.error(cut)
    assert cut.response.raw_content == SSE_CHUNKS[0]
    sniff.done()  # before mitmproxy's save addon writes the flows still open
    assert open_at_end.response.raw_content == SSE_CHUNKS[0]


def test_filter_records_only_matching_flows_and_their_connections(addon):
    sniff, out, tctx = addon
    tctx.configure(sniff, mcpsniff_filter="~u /tasks/")
    tasks_conn, sprint_conn = client(), client()
    sprint_conn.peername = ("127.0.0.1", 40001)
    for conn, path in ((tasks_conn, b"/tasks/mcp"), (sprint_conn, b"/sprint/mcp")):
        sniff.client_connected(conn)
        f = mcp_flow(conn)
        f.request.path = path
        sniff.request(f)
        f.response = sse_response()
        sniff.responseheaders(f)
        assert callable(f.response.stream), "a flow left out is still streamed"
        f.response.stream(SSE_CHUNKS[0])
        f.response.timestamp_end = 1001.0
        sniff.response(f)
        assert f.response.raw_content == SSE_CHUNKS[0], "... and keeps its body"
        sniff.client_disconnected(conn)
    recs = records(out)
    assert {r.target for r in recs if r.kind == "request"} == {"/tasks/mcp"}
    assert [r.event for r in recs if r.kind == "conn"] == ["opened", "closed"]
    assert {r.client for r in recs if r.kind == "conn"} == {"127.0.0.1:40000"}
    assert [r.kind for r in recs].count("sse") == 1


@pytest.mark.parametrize("expr", ["~u (", "~nosuch", "~d"])
def test_bad_filter_is_an_option_error(addon, expr):
    sniff, _, tctx = addon
    with pytest.raises(exceptions.OptionsError, match="mcpsniff_filter: not a mitmproxy filter expression"):
        tctx.configure(sniff, mcpsniff_filter=expr)
