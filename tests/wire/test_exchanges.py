"""TCP events -> exchange records (mcpsniff.wire.exchanges.HttpAssembler)."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from mcpsniff.records import CaptureWarning, ConnEvent, End, Record, Request, Response, SseEvent
from mcpsniff.wire.exchanges import MAX_BODY, HttpAssembler
from mcpsniff.wire.jsonrpc import parse
from mcpsniff.wire.tcpevents import TcpClosed, TcpData, TcpEvent, TcpGap, TcpOpenAtEnd, TcpOpened, TcpRefused, TcpReset

CLIENT, SERVER = "127.0.0.1:50123", "127.0.0.1:18207"
REAL = Path(__file__).resolve().parent.parent / "data" / "real"


def c(t: float, data: bytes, cid: str = "c1", frame: int | None = None) -> TcpData:
    return TcpData(cid, t, frame if frame is not None else int(t * 10), True, data)


def s(t: float, data: bytes, cid: str = "c1", frame: int | None = None) -> TcpData:
    return TcpData(cid, t, frame if frame is not None else int(t * 10), False, data)


def opened(t: float = 0.0, cid: str = "c1") -> TcpOpened:
    return TcpOpened(cid, t, CLIENT, SERVER, int(t * 10))


def closed(t: float, by: str, cid: str = "c1") -> TcpClosed:
    return TcpClosed(cid, t, int(t * 10), by)


def run(events: list[TcpEvent], **options: int) -> list[Record]:
    asm = HttpAssembler(**options)
    out: list[Record] = []
    for ev in events:
        out += asm.feed(ev)
    out += asm.finish()
    check_invariants(out)
    return out


def check_invariants(records: list[Record]) -> None:
    """Time order; per exchange Request -> Response? -> SseEvent* -> exactly one End."""
    times = [r.t for r in records if r.t is not None]
    assert times == sorted(times)
    kinds: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if isinstance(r, Request | Response | SseEvent | End):
            kinds[r.xid].append(r.kind)
    for xid, seq in kinds.items():
        assert seq[0] == "request" and seq[-1] == "end" and seq.count("end") == 1, (xid, seq)
        assert seq.count("response") <= 1 and seq.count("request") == 1, (xid, seq)
        if "sse" in seq:
            assert seq.index("response") < seq.index("sse"), (xid, seq)


def of(records: list[Record], cls: type) -> list:
    return [r for r in records if isinstance(r, cls)]


def post(path: str, body: dict, session: str | None = None) -> bytes:
    data = json.dumps(body).encode()
    extra = f"mcp-session-id: {session}\r\n".encode() if session else b""
    return b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:18207\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (path.encode(), extra, len(data), data)


def response(status: str, body: bytes = b"", ctype: str = "application/json", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n{extra}content-length: {len(body)}\r\n\r\n".encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncache-control: no-cache, no-transform\r\ncontent-type: text/event-stream\r\nmcp-session-id: 010def10\r\nTransfer-Encoding: chunked\r\n\r\n"
INIT = post("/sprint/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
GET = b"GET /sprint/mcp HTTP/1.1\r\nHost: 127.0.0.1:18207\r\naccept: text/event-stream\r\nmcp-session-id: 010def10\r\n\r\n"
SESSION_NOT_FOUND = b'{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Session not found"}}'


def test_json_response() -> None:
    body = b'{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}'
    records = run([opened(), c(1.0, INIT, frame=4), s(2.0, response("200 OK", body), frame=6), closed(3.0, "client"), closed(3.1, "server")])
    conn_open, req, resp, end, fin_c, fin_s = records
    assert conn_open == ConnEvent(0.0, "c1", "opened", CLIENT, SERVER, "", "", 0)
    assert (req.t, req.frame, req.conn, req.xid, req.method, req.target, req.server) == (1.0, 4, "c1", "c1.1", "POST", "/sprint/mcp", SERVER)
    assert json.loads(req.body)["method"] == "initialize" and req.body_size == len(req.body) and not req.truncated
    assert ("accept", "application/json, text/event-stream") in req.headers
    assert (resp.t, resp.t_end, resp.frame, resp.status, resp.reason, resp.body, resp.stream) == (2.0, 2.0, 6, 200, "OK", body.decode(), False)
    assert (end.t, end.outcome) == (2.0, "complete")
    assert [(r.event, r.by) for r in (fin_c, fin_s)] == [("closed", "client"), ("closed", "server")]


def test_sse_response_is_written_at_its_head_and_events_carry_their_packet_time() -> None:
    event1 = b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\r\n\r\n'
    event2 = b'event: message\r\ndata: {"jsonrpc":"2.0","id":0,"result":{}}\r\n\r\n'
    asm = HttpAssembler()
    got = [asm.feed(ev) for ev in [opened(), c(1.0, INIT), s(2.0, SSE_HEAD, frame=20), s(3.0, chunk(event1[:30])), s(4.0, chunk(event1[30:]), frame=40), s(5.0, chunk(event2), frame=50), s(6.0, b"0\r\n\r\n")]]
    assert [[r.kind for r in out] for out in got] == [["conn"], ["request"], ["response"], [], ["sse"], ["sse"], ["end"]]
    resp = got[2][0]
    assert (resp.t, resp.frame, resp.stream, resp.body, resp.t_end, resp.status) == (2.0, 20, True, "", None, 200)
    assert [(e.t, e.frame, e.event, parse(e.data).messages[0].kind) for e in (got[4][0], got[5][0])] == [(4.0, 40, "message", "notification"), (5.0, 50, "message", "response")]
    assert (got[6][0].t, got[6][0].outcome) == (6.0, "complete")
    check_invariants([r for out in got for r in out])


def test_202_for_a_notification_and_keep_alive_xids() -> None:
    note = post("/sprint/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"}, "010def10")
    tools = post("/sprint/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "010def10")
    records = run([opened(), c(1.0, note + tools), s(2.0, response("202 Accepted", ctype="text/plain") + response("200 OK", b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}')), TcpOpenAtEnd("c1", 9.0)])
    assert [(r.xid, r.status, r.body_size) for r in of(records, Response)] == [("c1.1", 202, 0), ("c1.2", 200, 46)]
    assert [(r.xid, r.outcome) for r in of(records, End)] == [("c1.1", "complete"), ("c1.2", "complete")]


def test_404_session_not_found_body() -> None:
    records = run([opened(), c(1.0, post("/sprint/mcp", {"jsonrpc": "2.0", "id": 5, "method": "tools/call"}, "stale")), s(1.5, response("404 Not Found", SESSION_NOT_FOUND))])
    (resp,) = of(records, Response)
    assert resp.status == 404
    (msg,) = parse(resp.body).messages
    assert (msg.kind, msg.error_code, msg.error_message) == ("error", -32600, "Session not found")


@pytest.mark.parametrize(
    "ending, outcome, detail",
    [
        ([closed(5.0, "server")], "closed", "connection closed by the server"),
        ([TcpReset("c1", 5.0, 50, "server")], "reset", "connection reset by server"),
        ([closed(4.5, "client"), closed(5.0, "server")], "closed", "connection closed by the client"),
        ([TcpOpenAtEnd("c1", 5.0)], "open-at-end", "capture ended"),
        ([], "open-at-end", "capture ended"),  # finish() without TcpOpenAtEnd
    ],
)
def test_get_stream_ended_by_the_connection(ending: list[TcpEvent], outcome: str, detail: str) -> None:
    records = run([opened(), c(1.0, GET), s(2.0, SSE_HEAD), s(3.0, chunk(b"id: 1\ndata:\n\n")), *ending])
    (sse,) = of(records, SseEvent)
    assert (sse.id, sse.data) == ("1", "")  # the priming event is reported
    (end,) = of(records, End)
    assert (end.t, end.outcome, end.detail) == (5.0 if ending else 3.0, outcome, detail)
    assert outcome in [r.event for r in of(records, ConnEvent)]


@pytest.mark.parametrize(
    "ending, outcome, detail",
    [
        ([TcpOpenAtEnd("c1", 7.0)], "open-at-end", "no response before the capture ended"),
        ([TcpReset("c1", 7.0, 70, "client")], "reset", "connection reset by client before the response"),
        ([closed(7.0, "server")], "closed", "connection closed by the server before the response"),
    ],
)
def test_request_without_response(ending: list[TcpEvent], outcome: str, detail: str) -> None:
    records = run([opened(), c(1.0, INIT), *ending])
    assert [r.kind for r in records if not isinstance(r, ConnEvent)] == ["request", "end"]
    (end,) = of(records, End)
    assert (end.t, end.outcome, end.detail) == (7.0, outcome, detail)


def test_gap_in_server_stream_ends_the_exchange_and_says_what_was_lost() -> None:
    ok = response("200 OK", b'{"jsonrpc":"2.0","id":1,"result":{}}')
    events = [opened(cid="c12"), c(1.0, GET + GET, "c12"), s(1.5, ok + ok, "c12"), c(2.0, GET + GET, "c12"), s(3.0, SSE_HEAD + chunk(b"data: 1\n\n"), "c12")]
    events += [TcpGap("c12", 4.0, 40, False, 1460), s(4.5, chunk(b"data: 2\n\n") + b"0\r\n\r\n" + response("200 OK", b"{}"), "c12")]
    records = run(events)
    warning = of(records, CaptureWarning)
    assert [w.message for w in warning] == ["c12: 1460 bytes lost in server->client stream, exchange c12.3 (GET /sprint/mcp) incomplete"]
    assert [(e.xid, e.outcome) for e in of(records, End)] == [("c12.1", "complete"), ("c12.2", "complete"), ("c12.3", "gap"), ("c12.4", "complete")]
    assert [e.data for e in of(records, SseEvent)] == ["1"]  # nothing after the hole is attributed to c12.3
    gap = [r for r in of(records, ConnEvent) if r.event == "gap"]
    assert [(g.by, g.detail) for g in gap] == [("server", "1460 bytes lost in server->client stream")]


def test_gap_before_any_response_byte_ends_the_oldest_waiting_exchange() -> None:
    records = run([opened(), c(1.0, INIT), TcpGap("c1", 2.0, 20, False, 300), s(3.0, b'rest of body"}'), closed(4.0, "server")])
    assert [(e.xid, e.outcome) for e in of(records, End)] == [("c1.1", "gap")]
    assert not of(records, Response)


def test_gap_in_client_stream_marks_the_cut_request() -> None:
    head, body = INIT.split(b"\r\n\r\n")
    records = run([opened(), c(1.0, head + b"\r\n\r\n" + body[:10]), TcpGap("c1", 2.0, 20, True, 40), s(3.0, response("400 Bad Request", b"{}"))])
    (req,) = of(records, Request)
    assert (req.body, req.truncated, req.body_size) == (body[:10].decode(), True, 10)
    assert [w.message for w in of(records, CaptureWarning)] == ["c1: 40 bytes lost in client->server stream, exchange c1.1 (POST /sprint/mcp) incomplete"]
    (end,) = of(records, End)
    assert (end.outcome, end.detail) == ("gap", "40 bytes lost in client->server stream: request incomplete")
    assert of(records, Response)[0].status == 400


def test_not_http_connection_gets_one_warning_and_its_bytes_are_ignored() -> None:
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xaa\xbb\xcc"
    records = run([TcpOpened("c7", 0.0, CLIENT, SERVER, 1), c(1.0, hello, "c7"), s(2.0, b"\x16\x03\x03\x00\x7a", "c7"), c(3.0, GET, "c7"), closed(4.0, "client", "c7")])
    assert [w.message for w in of(records, CaptureWarning)] == ["c7: not HTTP (first bytes: '\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03\\xaa...')"]
    assert {r.kind for r in records} == {"conn", "warning"}


def test_server_speaking_first_is_not_http() -> None:
    records = run([opened(), s(0.5, b"SSH-2.0-OpenSSH_9.6\r\n"), c(1.0, b"SSH-2.0-client\r\n")])
    assert [w.message for w in of(records, CaptureWarning)] == ["c1: not HTTP (first bytes: 'SSH-2.0-Open...')"]


def test_bad_response_bytes_end_the_exchange_with_error() -> None:
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-a-size\r\n"
    records = run([opened(), c(1.0, GET + GET), s(2.0, bad + response("204 No Content")), closed(3.0, "server")])
    assert [(e.xid, e.outcome) for e in of(records, End)] == [("c1.1", "error"), ("c1.2", "complete")]
    assert [w.message for w in of(records, CaptureWarning)] == ["c1: bad HTTP response: bad chunk size 'not-a-size', exchange c1.1 (GET /sprint/mcp) ended"]


def test_body_is_capped_but_size_is_real() -> None:
    body = ("é" * 30).encode()
    records = run([opened(), c(1.0, GET), s(2.0, response("200 OK", body, "text/plain"))], max_body=10)
    (resp,) = of(records, Response)
    assert (resp.body, resp.truncated, resp.body_size) == ("é" * 10, True, 60)


def test_gzip_body_is_decoded() -> None:
    body = gzip.compress(SESSION_NOT_FOUND)
    records = run([opened(), c(1.0, GET), s(2.0, response("404 Not Found", body, extra="content-encoding: gzip\r\n"))])
    (resp,) = of(records, Response)
    assert (resp.body, resp.body_size, resp.truncated) == (SESSION_NOT_FOUND.decode(), len(body), False)


def test_gzip_event_stream_is_decoded_incrementally() -> None:
    packed = gzip.compress(b"data: one\n\ndata: two\n\n")
    head = SSE_HEAD.replace(b"Transfer-Encoding", b"content-encoding: gzip\r\nTransfer-Encoding")
    records = run([opened(), c(1.0, GET), s(2.0, head + chunk(packed[:15])), s(3.0, chunk(packed[15:]) + b"0\r\n\r\n")])
    assert [(e.data, e.t) for e in of(records, SseEvent)] == [("one", 3.0), ("two", 3.0)]


def test_undecodable_compressed_stream_warns_and_holds_nothing_back() -> None:
    head = SSE_HEAD.replace(b"Transfer-Encoding", b"content-encoding: gzip\r\nTransfer-Encoding")
    asm = HttpAssembler()
    events = [opened(), c(1.0, GET), s(2.0, head + chunk(b"not gzip at all")), opened(2.5, "c2"), c(3.0, GET, "c2"), s(4.0, response("404 Not Found", b"{}"), "c2")]
    got = [asm.feed(ev) for ev in events]
    assert [w.message for out in got for w in out if isinstance(w, CaptureWarning)] == [
        "c1: exchange c1.1 (GET /sprint/mcp): undecodable compressed event stream (Error -3 while decompressing data: incorrect header check)"
    ]
    assert [r.kind for r in got[-1]] == ["response", "end"]  # c2's exchange is not held back by c1's stream


def test_early_response_writes_the_request_first() -> None:
    head = b"POST /upload HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"
    records = run([opened(), c(1.0, head + b"x" * 100), s(2.0, response("413 Payload Too Large")), closed(3.0, "server")])
    assert [r.kind for r in records if not isinstance(r, ConnEvent)] == ["request", "response", "end"]
    (req,) = of(records, Request)
    assert (req.body_size, req.truncated) == (100, True)


def test_records_are_in_time_order_across_connections() -> None:
    events = [opened(0.0, "c1"), opened(0.5, "c2"), c(1.0, INIT[:50], "c1"), c(2.0, GET, "c2"), s(3.0, response("405 Method Not Allowed"), "c2"), c(4.0, INIT[50:], "c1")]
    asm = HttpAssembler()
    got = [asm.feed(ev) for ev in events]
    assert [[r.kind for r in out] for out in got[2:]] == [[], [], [], ["request", "request", "response", "end"]]
    assert [(r.t, getattr(r, "xid", "")) for r in got[5]] == [(1.0, "c1.1"), (2.0, "c2.1"), (3.0, "c2.1"), (3.0, "c2.1")]


def test_refused_connection() -> None:
    records = run([TcpRefused("c3", 1.0, CLIENT, SERVER, 10)])
    assert records == [ConnEvent(1.0, "c3", "refused", CLIENT, SERVER, "server", "", 10)]


def test_time_never_goes_backwards_on_a_connection() -> None:
    records = run([opened(), c(1.0, GET), s(3.0, SSE_HEAD), s(2.5, chunk(b"data: late\n\n")), closed(4.0, "server")])
    (sse,) = of(records, SseEvent)
    assert sse.t == 3.0


def test_response_without_a_request_is_reported() -> None:
    records = run([TcpOpened("c1", 0.0, CLIENT, SERVER, 1, mid_stream=True), s(1.0, b'"}\n\n' + response("404 Not Found", b"{}")), c(2.0, INIT), s(3.0, response("200 OK", b"{}"))])
    assert [w.message for w in of(records, CaptureWarning)] == ["c1: HTTP 404 response without a request (ignored)"]
    assert [(r.xid, r.status) for r in of(records, Response)] == [("c1.1", 200)]
    assert of(records, ConnEvent)[0].detail == "picked up mid-stream"


def test_early_answered_request_cut_by_a_gap_is_written_once() -> None:
    head = b"POST /upload HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"
    records = run([opened(), c(1.0, head + b"x" * 10), s(2.0, response("413 Payload Too Large") + response("200 OK")), TcpGap("c1", 3.0, 30, True, 990), closed(4.0, "server")])
    assert [r.kind for r in records if r.kind in ("request", "response", "end")] == ["request", "response", "end"]


def test_response_bytes_before_the_request_head_is_complete() -> None:
    records = run([opened(), s(1.0, b"HTTP/1.1 200 OK\r\n"), c(2.0, GET), s(3.0, b"content-length: 0\r\n\r\n")])
    req, resp = of(records, Request)[0], of(records, Response)[0]
    assert req.t == 2.0 and resp.t == 2.0  # a response never precedes its request


def test_records_of_one_packet_come_out_sorted() -> None:
    # one server packet ends c1.1 (at 4.0) and answers c1.2, whose request started at 2.0 and is still incomplete
    second = b"POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
    events = [opened(), c(1.0, GET), s(1.5, SSE_HEAD), c(2.0, second), s(4.0, b"0\r\n\r\n" + response("413 Payload Too Large"))]
    records = run(events)
    assert [(r.kind, getattr(r, "xid", "")) for r in records if not isinstance(r, ConnEvent)] == [
        ("request", "c1.1"), ("response", "c1.1"), ("request", "c1.2"), ("end", "c1.1"), ("response", "c1.2"), ("end", "c1.2")
    ]


FUZZ_CLIENT = INIT + GET + post("/a/mcp", {"jsonrpc": "2.0", "method": "x"}) + b"HEAD /x HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
FUZZ_SERVER = (
    SSE_HEAD + chunk(b"event: message\r\ndata: {}\r\n\r\n") + b"0\r\n\r\n" + response("200 OK", b"{}", "text/event-stream") + response("404 Not Found", SESSION_NOT_FOUND)
    + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + response("200 OK", gzip.compress(b"hello"), extra="content-encoding: gzip\r\n") + b"HTTP/1.0 200 OK\r\n\r\nclose-delimited"
)


def _fuzzed_connection(rng: random.Random, cid: str) -> list[TcpEvent]:
    """A conversation with random corruption, packet boundaries, interleaving, gaps and ending."""

    def mutate(data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(rng.randint(0, 4)):
            i, op = rng.randrange(len(buf) + 1), rng.random()
            if op < 0.4 and buf:
                buf[min(i, len(buf) - 1)] = rng.randrange(256)
            elif op < 0.7:
                del buf[i : i + rng.randint(1, 40)]
            else:
                buf[i:i] = rng.randbytes(rng.randint(1, 20))
        return bytes(buf)

    def packets(data: bytes) -> list[bytes]:
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, len(data) // 40)))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]

    events: list[TcpEvent] = [TcpOpened(cid, 0.0, CLIENT, SERVER, 1, mid_stream=rng.random() < 0.1)]
    client, server = packets(mutate(FUZZ_CLIENT)), packets(mutate(FUZZ_SERVER))
    t = 0.0
    while client or server:
        t += rng.random()
        if rng.random() < 0.03:
            events.append(TcpGap(cid, t, 0, rng.random() < 0.5, rng.randint(1, 100)))
        side = client if client and (not server or rng.random() < 0.5) else server
        events.append(TcpData(cid, t, int(t * 10), side is client, side.pop(0)))
    ending = rng.random()
    if ending < 0.3:
        events += [TcpClosed(cid, t + 1, 0, "client"), TcpClosed(cid, t + 2, 0, "server")]
    elif ending < 0.5:
        events.append(TcpReset(cid, t + 1, 0, rng.choice(["client", "server"])))
    elif ending < 0.7:
        events.append(TcpOpenAtEnd(cid, t + 1))
    return events


@pytest.mark.parametrize("seed", range(300))
def test_fuzzed_traffic_never_raises_and_keeps_the_record_rules(seed: int) -> None:
    rng = random.Random(seed)
    events = sorted(_fuzzed_connection(rng, "c1") + _fuzzed_connection(rng, "c2"), key=lambda ev: ev.t)  # stable: per-connection order kept
    run(events, max_body=rng.choice([5, MAX_BODY]))  # run() checks time order and Request -> ... -> one End


# --- real captures (official SDK server and clients), through the real TCP layer ---------


def real_records(name: str) -> list[Record]:
    from scapy.utils import RawPcapReader

    from mcpsniff.wire.packet import PacketDecoder
    from mcpsniff.wire.tcp import TcpReassembler

    decoder, tcp, asm = PacketDecoder(), TcpReassembler(), HttpAssembler()
    out: list[Record] = []
    t = 0.0
    with RawPcapReader(str(REAL / name / "capture.pcap")) as reader:
        for frame, (data, meta) in enumerate(reader, 1):
            t = meta.sec + meta.usec / 1e6
            seg = decoder.decode(reader.linktype, data)
            if seg is not None:
                for ev in tcp.feed(t, frame, seg):
                    out += asm.feed(ev)
    for ev in tcp.finish(t):
        out += asm.feed(ev)
    out += asm.finish()
    check_invariants(out)
    return out


@pytest.mark.parametrize("name", ["py-healthy", "healthy-cc", "one-stale"])
def test_real_capture(name: str) -> None:
    truth = json.loads((REAL / name / "truth.json").read_text())
    records = real_records(name)
    assert not of(records, CaptureWarning)
    requests = of(records, Request)
    assert {r.server for r in requests} == {f"127.0.0.1:{truth['port']}"}
    inits = [r for r in requests if r.body and parse(r.body).messages[0].method == "initialize"]
    rebound = [ns for ns, v in truth["namespaces"].items() if v["expected"] == "rebound"]
    assert len(inits) >= len(truth["namespaces"]) + len(rebound)  # every namespace, and again after the restart
    # every initialize answered 200 got its JSON-RPC result as an SSE event
    xids = {r.xid for r in inits}
    results = [e for e in of(records, SseEvent) if e.xid in xids and '"result"' in e.data]
    ok = [r for r in of(records, Response) if r.xid in xids and r.status == 200]
    assert len(results) == len(ok) >= len(truth["namespaces"]) + len(rebound)


def test_real_capture_stale_namespace_keeps_getting_session_not_found() -> None:
    records = real_records("one-stale")
    sprint = {r.xid for r in of(records, Request) if r.target == "/sprint/mcp"}
    not_found = [r for r in of(records, Response) if r.xid in sprint and r.status == 404]
    assert len(not_found) >= 5
    assert {parse(r.body).messages[0].error_message for r in not_found} == {"Session not found"}
