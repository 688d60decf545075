"""HTTP/1.1 parsing of one direction of a captured connection (mcpsniff.wire.http1)."""

from __future__ import annotations

import pytest

from mcpsniff.wire.http1 import BodyPiece, Http1Parser, HttpEvent, MessageEnd, ParseError, RequestHead, ResponseHead


def summary(events: list[HttpEvent]) -> list[tuple]:
    """Events as short tuples; consecutive body pieces joined (their split is tested apart)."""
    out: list[tuple] = []
    for ev in events:
        if isinstance(ev, RequestHead):
            out.append(("req", ev.method, ev.target))
        elif isinstance(ev, ResponseHead):
            out.append(("resp", ev.status, ev.method))
        elif isinstance(ev, BodyPiece):
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + ev.data)
            else:
                out.append(("body", ev.data))
        elif isinstance(ev, MessageEnd):
            out.append(("end",))
        else:
            assert isinstance(ev, ParseError)
            out.append(("error", ev.message))
    return out


def feed_all(parser: Http1Parser, chunks: list[bytes]) -> list[HttpEvent]:
    events: list[HttpEvent] = []
    for i, chunk in enumerate(chunks, 1):
        events += parser.feed(chunk, float(i), i)
    return events


def requests(*chunks: bytes) -> list[tuple]:
    return summary(feed_all(Http1Parser(True), list(chunks)))


def responses(methods: list[str], *chunks: bytes, eof: bool = False) -> list[tuple]:
    parser = Http1Parser(False)
    for method in methods:
        parser.expect(method)
    events = feed_all(parser, list(chunks))
    if eof:
        events += parser.eof(99.0, 99)
    return summary(events)


POST = b'POST /sprint/mcp HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\n{"jsonrpc":1}'
SSE_EVENT = b'event: message\r\ndata: {"jsonrpc":"2.0"}\r\n\r\n'
SSE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n" % (len(SSE_EVENT), SSE_EVENT)
    + b"5;name=value\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"
)
SSE_BODY = SSE_EVENT + b"hello"


REQUEST_CASES = [
    ("content-length", [POST], [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)]),
    ("no body", [b"GET /tasks/mcp HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n"], [("req", "GET", "/tasks/mcp"), ("end",)]),
    ("chunked with extension and trailer", [b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: yes\r\n\r\n"], [("req", "POST", "/x"), ("body", b"abcde"), ("end",)]),
    ("keep-alive: three in one packet", [POST + POST + b"DELETE /a/mcp HTTP/1.1\r\n\r\n"], [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)] * 2 + [("req", "DELETE", "/a/mcp"), ("end",)]),
    ("head split over packets", [POST[:10], POST[10:40], POST[40:]], [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)]),
    ("empty line between messages", [POST + b"\r\n" + POST], [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)] * 2),
    ("bare LF line ends", [b"GET /a HTTP/1.1\nHost: h\n\n"], [("req", "GET", "/a"), ("end",)]),
    ("CRLF lines, bare LF end before a CRLF", [b"GET /a HTTP/1.1\r\nHost: h\r\n\n\r\nGET /b HTTP/1.1\r\n\r\n"], [("req", "GET", "/a"), ("end",), ("req", "GET", "/b"), ("end",)]),
    ("mixed line ends", [b"GET /a HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", b"GET /a HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"], [("req", "GET", "/a"), ("end",)] * 2),
    ("bad start line, then resync", [b"POST/x HTTP/1.1\r\n\r\n" + POST], [("error", "bad request line 'POST/x HTTP/1.1'"), ("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)]),
    ("bad header line", [b"GET /a HTTP/1.1\r\nno colon here\r\n\r\nGET /b HTTP/1.1\r\n\r\n"], [("error", "bad header line 'no colon here'"), ("req", "GET", "/b"), ("end",)]),
    ("space before colon", [b"GET /a HTTP/1.1\r\nHost : h\r\n\r\n"], [("error", "bad header line 'Host : h'")]),
    ("bad content-length", [b"POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"], [("error", "bad Content-Length '1x'")]),
    ("conflicting content-lengths", [b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"], [("error", "bad Content-Length '2'")]),
    ("bad chunk size", [b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /b HTTP/1.1\r\n\r\n"], [("req", "POST", "/a"), ("error", "bad chunk size 'zz'"), ("req", "GET", "/b"), ("end",)]),
    ("no CRLF after chunk", [b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc"], [("req", "POST", "/a"), ("body", b"a"), ("error", "no CRLF after chunk data: 'bc'")]),
    ("TLS client hello", [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"], [("error", "not an HTTP request: '\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03'")]),
    ("HTTP/2 preface", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], [("error", "bad request line 'PRI * HTTP/2.0'")]),
]


@pytest.mark.parametrize("chunks, expected", [c[1:] for c in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES])
def test_requests(chunks: list[bytes], expected: list[tuple]) -> None:
    assert requests(*chunks) == expected


RESPONSE_CASES = [
    ("content-length", ["POST"], [b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"], False, [("resp", 404, "POST"), ("body", b"{}"), ("end",)]),
    ("202 without body", ["POST"], [b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"], False, [("resp", 202, "POST"), ("end",)]),
    ("chunked SSE with extension and trailer", ["POST"], [SSE_RESPONSE], False, [("resp", 200, "POST"), ("body", SSE_BODY), ("end",)]),
    ("HEAD has no body despite Content-Length", ["HEAD", "GET"], [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], False, [("resp", 200, "HEAD"), ("end",), ("resp", 200, "GET"), ("body", b"hello"), ("end",)]),
    ("204 and 304 have no body", ["GET", "GET"], [b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"], False, [("resp", 204, "GET"), ("end",), ("resp", 304, "GET"), ("end",)]),
    ("100 Continue does not answer the request", ["POST"], [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"], False, [("resp", 100, None), ("end",), ("resp", 200, "POST"), ("body", b"x"), ("end",)]),
    ("pipelined responses pair FIFO", ["GET", "POST"], [b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], False, [("resp", 405, "GET"), ("end",), ("resp", 200, "POST"), ("body", b"ok"), ("end",)]),
    ("close-delimited", ["GET"], [b"HTTP/1.0 200 OK\r\n\r\nabc", b"def"], True, [("resp", 200, "GET"), ("body", b"abcdef"), ("end",)]),
    ("close-delimited without eof stays open", ["GET"], [b"HTTP/1.1 200 OK\r\n\r\nabc"], False, [("resp", 200, "GET"), ("body", b"abc")]),
    ("unknown transfer-coding: until close", ["GET"], [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz"], True, [("resp", 200, "GET"), ("body", b"zz"), ("end",)]),
    ("response without request", [], [b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"], False, [("resp", 408, None), ("end",)]),
    ("bad status line then resync", ["GET", "GET"], [b"HTTP/1.1 2000 OK\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], False, [("error", "bad status line 'HTTP/1.1 2000 OK'"), ("resp", 200, "GET"), ("end",)]),
    ("not HTTP at all", ["GET"], [b"SSH-2.0-OpenSSH_9.6\r\n"], False, [("error", "not an HTTP response: 'SSH-2.0-OpenSSH_9.6\\r\\n'")]),
    ("101 switches protocols: rest ignored", ["GET"], [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"], False, [("resp", 101, "GET"), ("end",)]),
]


@pytest.mark.parametrize("methods, chunks, eof, expected", [c[1:] for c in RESPONSE_CASES], ids=[c[0] for c in RESPONSE_CASES])
def test_responses(methods: list[str], chunks: list[bytes], eof: bool, expected: list[tuple]) -> None:
    assert responses(methods, *chunks, eof=eof) == expected


def test_oversize_head_is_an_error_then_resync() -> None:
    parser = Http1Parser(True, max_head=100)
    events = parser.feed(b"GET /a HTTP/1.1\r\nX: " + b"a" * 200, 1.0, 1)
    events += parser.feed(b"\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 2.0, 2)
    assert summary(events) == [("error", "request head larger than 100 bytes"), ("req", "GET", "/b"), ("end",)]


@pytest.mark.parametrize("cut", range(1, len(SSE_RESPONSE)))
def test_chunked_split_at_every_byte(cut: int) -> None:
    assert responses(["POST"], SSE_RESPONSE[:cut], SSE_RESPONSE[cut:]) == [("resp", 200, "POST"), ("body", SSE_BODY), ("end",)]


def test_chunked_one_byte_per_packet() -> None:
    chunks = [SSE_RESPONSE[i : i + 1] for i in range(len(SSE_RESPONSE))]
    assert responses(["POST"], *chunks) == [("resp", 200, "POST"), ("body", SSE_BODY), ("end",)]


@pytest.mark.parametrize("cut", range(1, len(POST) * 2))
def test_keep_alive_requests_split_at_every_byte(cut: int) -> None:
    data = POST + POST
    assert requests(data[:cut], data[cut:]) == [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)] * 2


def test_body_pieces_carry_their_packet_time_and_head_the_first() -> None:
    parser = Http1Parser(False)
    parser.expect("POST")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
    events = parser.feed(head[:20], 1.0, 10) + parser.feed(head[20:], 2.0, 11)
    events += parser.feed(b"3\r\nabc\r\n", 3.0, 12) + parser.feed(b"2\r\nde\r\n", 4.0, 13) + parser.feed(b"0\r\n\r\n", 5.0, 14)
    assert isinstance(events[0], ResponseHead)
    assert (events[0].t, events[0].frame, events[0].content_type) == (1.0, 10, "text/event-stream")
    assert [(e.data, e.t, e.frame) for e in events if isinstance(e, BodyPiece)] == [(b"abc", 3.0, 12), (b"de", 4.0, 13)]
    assert isinstance(events[-1], MessageEnd) and (events[-1].t, events[-1].frame) == (5.0, 14)


def test_headers_keep_case_order_and_duplicates() -> None:
    data = b"POST /a HTTP/1.1\r\nHost: h\r\nMcp-Session-Id: abc\r\nX-Dup: 1\r\nx-dup: 2\r\nFolded: a\r\n  b\r\nContent-Encoding: GZIP\r\n\r\n"
    (head, _end) = Http1Parser(True).feed(data, 1.0, 1)
    assert isinstance(head, RequestHead)
    assert head.headers == (("Host", "h"), ("Mcp-Session-Id", "abc"), ("X-Dup", "1"), ("x-dup", "2"), ("Folded", "a b"), ("Content-Encoding", "GZIP"))
    assert head.content_encoding == "gzip"


def test_pending_since_is_the_first_byte_of_an_unfinished_message() -> None:
    parser = Http1Parser(True)
    assert parser.pending_since is None
    parser.feed(POST[:30], 1.0, 1)
    assert parser.pending_since == 1.0
    parser.feed(POST[30:-3], 2.0, 2)
    assert parser.pending_since == 1.0 and parser.in_body
    parser.feed(POST[-3:], 3.0, 3)
    assert parser.pending_since is None and not parser.in_body


def test_mid_stream_start_skips_to_the_first_message() -> None:
    parser = Http1Parser(True, resync=True)
    events = feed_all(parser, [b'"id":3}\r\n', POST])
    assert summary(events) == [("req", "POST", "/sprint/mcp"), ("body", b'{"jsonrpc":1}'), ("end",)]


def test_lost_bytes_resync_at_next_message() -> None:
    parser = Http1Parser(False)
    parser.expect("GET")
    parser.expect("POST")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 1.0, 1)
    parser.lost()
    events = parser.feed(b"xyz\r\nHTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", 2.0, 2)
    assert summary(events) == [("resp", 202, "POST"), ("end",)]


def test_error_in_body_is_flagged() -> None:
    parser = Http1Parser(True)
    events = parser.feed(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n", 1.0, 1)
    assert isinstance(events[-1], ParseError) and events[-1].in_body
    head_error = Http1Parser(True).feed(b"GET\r\n\r\n", 1.0, 1)
    assert isinstance(head_error[0], ParseError) and not head_error[0].in_body


HEAD = b"POST /a HTTP/1.1\r\nHost: x\r\n\r\nbody\n\r\n"


@pytest.mark.parametrize(
    "buf, sub, start, end",
    [
        (HEAD, b"\n\r\n", 0, len(HEAD)),  # a head's end
        (HEAD, b"\n\r\n", 26, len(HEAD)),  # the next one
        (HEAD, b"\n\r\n", 0, 27),  # cut off by the end
        (b"a\n\n\r\n", b"\n\r\n", 0, 5),  # a first byte that matches, then the real match
        (b"\n\r", b"\n\r\n", 0, 2),  # shorter than the needle
        (b"x\r\n", b"\n", 0, 3),
        (b"x\r\n", b"\n", 3, 3),
        (b"x\r\n", b"\n", 5, 9),  # past the end
        (b"0123456789", b"5", -6, -2),  # from the end, as in a slice
        (b"0123456789", b"5", -60, -5),
        (b"0123456789", b"5", 7, 2),  # an empty range
        (b"event: message\r\ndata: {}\r\n\r\n", b"\r", 22, -4),  # the SSE fast path's question
        (b"", b"\n", 0, 0),
        (b"abc", b"", 1, 2),  # the empty string
        (b"abc", b"", 3, 3),
        (b"abc", b"", 4, 9),
        (b"abc", b"", 2, 1),
    ],
)
def test_find_is_bytes_find(buf: bytes, sub: bytes, start: int, end: int) -> None:
    """The layers' find() (the C function of the compiled build, else bytes.find) answers as bytes.find."""
    from mcpsniff.wire import http1

    assert http1.find(buf, sub, start, end) == buf.find(sub, start, end)
    if http1._c_find is not None:
        assert http1._c_find(buf, sub, start, end) == buf.find(sub, start, end)
