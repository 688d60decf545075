"""TCP events -> HTTP exchange records (``records.py``): the HTTP layer of ``analyze``.

``HttpAssembler.feed(event)`` takes the TCP layer's events in capture order and
returns the records they completed; ``finish()`` returns the rest at the end of the
capture.  Per exchange: ``Request`` (when the request is complete) -> ``Response``
(at its headers for ``text/event-stream``, else when the body is complete) ->
``SseEvent``s (each stamped with the packet that completed it) -> exactly one ``End``.
A complete ``Request``'s frame is that of its last packet (where Wireshark shows the
reassembled request), its time that of its first.

Records come out in non-decreasing time order, across connections too: a
``Request`` carries the time of its first packet but is only known when its last
packet arrived, so while some message is half-received, records of later times wait
in a small heap (usually empty: on loopback a message fits in one packet).  If more
than ``max_hold`` records would wait, the oldest go out anyway (order is given up
rather than memory).

Times are clamped per connection to never go backwards: bytes that arrived before
a hole in the stream was filled are usable only when it fills.
"""

from __future__ import annotations

import heapq
import zlib
from operator import attrgetter
from typing import Any, Final

from ..records import CLOSED, COMPLETE, ERROR, GAP, OPEN_AT_END, RESET, CaptureWarning, ConnEvent, End, Ids, Record, Request, Response, SseEvent
from .http1 import MAX_HEAD, BodyPiece, Http1Parser, HttpEvent, MessageEnd, ParseError, RequestHead, ResponseHead, preview
from .sse import MAX_RETRY_DIGITS, SseDecoder
from .tcpevents import TcpClosed, TcpData, TcpEvent, TcpGap, TcpOpenAtEnd, TcpOpened, TcpRefused, TcpReset

MAX_BODY: Final = 65536  # characters of a body kept in a record
MAX_HOLD: Final = 200_000  # records waiting for an unfinished message before order is given up
_by_time = attrgetter("t")


class _Body:
    """Collects a body: counts every byte, keeps the first ``limit`` (decompressed) bytes."""

    __slots__ = ("parts", "kept", "size", "limit", "inflate", "cut")

    def __init__(self, limit: int, encoding: str) -> None:
        self.parts: list[bytes] = []
        self.kept = 0
        self.size = 0  # bytes on the wire (after de-chunking)
        self.limit = limit
        self.inflate = _inflater(encoding)
        self.cut = False  # something was not kept

    def add(self, data: bytes) -> None:
        self.size += len(data)
        room = self.limit - self.kept
        if room <= 0:
            self.cut = True
            return
        if self.inflate is not None:
            try:
                data = self.inflate.decompress(data, room + 1)
            except zlib.error:
                self.inflate = None
                self.cut = True
                data = b""
        if len(data) > room:
            data = data[:room]
            self.cut = True
        self.parts.append(data)
        self.kept += len(data)

    def text(self, max_chars: int) -> tuple[str, bool]:
        """(text, truncated)."""
        text = b"".join(self.parts).decode("utf-8", "replace")
        if len(text) > max_chars:
            return text[:max_chars], True
        return text, self.cut


def _inflater(encoding: str) -> zlib._Decompress | None:
    """Content-Encoding gzip/deflate are undone (zlib is pure); others are stored as they are."""
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(47)  # zlib or gzip header, detected
    return None


class _Ex:
    """One exchange in progress."""

    __slots__ = ("xid", "conn", "server", "method", "target", "headers", "t", "frame", "t_frame", "body", "emitted", "damage", "head", "responded", "rbody", "sse", "inflate", "ended")

    def __init__(self, xid: str, conn: _Conn, head: RequestHead, max_bytes: int) -> None:
        self.xid = xid
        self.conn = conn.cid
        self.server = conn.server
        self.method = head.method
        self.target = head.target
        self.headers = head.headers
        self.t = head.t
        self.frame = head.frame  # its first packet's, then (once complete) its last packet's
        self.t_frame = head.t  # time of ``frame``
        self.body: _Body | None = _Body(max_bytes, head.content_encoding)
        self.emitted = False  # Request record written
        self.damage: tuple[str, str] | None = None  # (outcome, detail) when the request was cut
        self.head: ResponseHead | None = None
        self.responded = False  # Response record written
        self.rbody: _Body | None = None  # non-streamed response body
        self.sse: SseDecoder | None = None  # streamed (text/event-stream) response
        self.inflate: Any = None  # decompressor of a compressed stream
        self.ended = False

    @property
    def label(self) -> str:
        return f"{self.xid} ({self.method} {self.target})"


class _Conn:
    """One TCP connection: a parser per direction and its exchanges in FIFO order."""

    __slots__ = ("cid", "client", "server", "req", "resp", "queue", "sending", "receiving", "seen_http", "ignored", "mid_stream", "fin_client", "fin_server", "t", "first")

    def __init__(self, cid: str, client: str, server: str, max_head: int, mid_stream: bool) -> None:
        self.cid = cid
        self.client = client
        self.server = server
        self.req = Http1Parser(True, max_head=max_head, resync=mid_stream)
        self.resp = Http1Parser(False, max_head=max_head, resync=mid_stream)
        self.queue: list[_Ex] = []  # requests (head seen) whose response has not started (a list: small when idle)
        self.sending: _Ex | None = None  # request whose body is still arriving
        self.receiving: _Ex | None = None  # response in progress
        self.seen_http = False
        self.ignored = False  # not HTTP, or switched protocols: bytes are dropped
        self.mid_stream = mid_stream
        self.fin_client = False
        self.fin_server = False
        self.t = 0.0  # latest time seen on this connection
        self.first: bytes | None = None  # first payload (for the "not HTTP" warning)


class HttpAssembler:
    """Turns ``TcpEvent``s into records; see the module docstring."""

    def __init__(self, ids: Ids | None = None, *, max_body: int = MAX_BODY, max_head: int = MAX_HEAD, max_hold: int = MAX_HOLD) -> None:
        self.ids = ids if ids is not None else Ids()
        self.max_body = max_body
        self.max_head = max_head
        self.max_hold = max_hold
        self.exchanges = 0  # requests seen
        self._conns: dict[str, _Conn] = {}
        self._pending: dict[str, float] = {}  # conn -> first byte of a message whose record is not out yet
        self._held: list[tuple[float, int, Record]] = []  # (t, arrival order, record)
        self._seq = 0
        self._last_t = 0.0  # latest time seen
        self._out: list[Record] = []
        self._unsorted = False  # self._out needs sorting

    # ------------------------------------------------------------------ API
    def feed(self, event: TcpEvent) -> list[Record]:
        """Records completed by this event, in time order."""
        out = self._out = []
        if event.t > self._last_t:
            self._last_t = event.t
        if type(event) is TcpData:
            conn = self._conns.get(event.conn) or self._open(event.conn, "", "", event.t, False)
            if not conn.ignored:
                if event.from_client or not self._stream_packet(conn, event):
                    self._data(conn, event)
                if conn.req.pending_since is None and conn.resp.pending_since is None:
                    if self._pending:
                        self._pending.pop(conn.cid, None)
                else:
                    self._track(conn)
        else:
            self._control(event)
            self._unsorted = len(out) > 1
        if self._unsorted:  # an older Request/Response was written after a newer record
            self._unsorted = False
            out.sort(key=_by_time)
        if self._held or self._pending:
            return self._release(out)
        return out

    def finish(self) -> list[Record]:
        """End what is still open (as "open-at-end") and flush every waiting record."""
        out = self._out = []
        t = self._last_t  # the capture's end, as far as we know
        for conn in list(self._conns.values()):
            out.append(ConnEvent(t, conn.cid, "open-at-end", conn.client, conn.server))
            self._end_all(conn, OPEN_AT_END, t, "capture ended")
        out.sort(key=_by_time)
        self._unsorted = False
        return self._release(out)

    # ------------------------------------------------------------------ order
    def _release(self, out: list[Record]) -> list[Record]:
        held = self._held
        if not held:  # the usual case: ``out`` is sorted, so what is ready is a prefix of it
            horizon = min(self._pending.values()) if self._pending else float("inf")
            if not out or out[-1].t <= horizon:  # type: ignore[union-attr,operator]  # never Meta
                return out
        for record in out:
            self._seq += 1
            heapq.heappush(held, (record.t, self._seq, record))  # type: ignore[union-attr,misc]  # never Meta
        horizon = min(self._pending.values()) if self._pending else float("inf")
        ready: list[Record] = []
        while held and (held[0][0] <= horizon or len(held) > self.max_hold):
            ready.append(heapq.heappop(held)[2])
        return ready

    def _track(self, conn: _Conn) -> None:
        """Remember whether a record with an earlier time can still come from this connection."""
        c = conn.req.pending_since
        if c is not None and conn.sending is not None and conn.sending.emitted:
            c = None
        s = conn.resp.pending_since
        if s is not None and conn.receiving is not None and conn.receiving.responded:  # a stream
            s = None
        if c is None:
            if s is None:
                self._pending.pop(conn.cid, None)
            else:
                self._pending[conn.cid] = s
        else:
            self._pending[conn.cid] = c if s is None or not s < c else s  # min(c, s)

    # ------------------------------------------------------------------ TCP events
    def _open(self, cid: str, client: str, server: str, t: float, mid_stream: bool) -> _Conn:
        conn = self._conns[cid] = _Conn(cid, client, server, self.max_head, mid_stream)
        conn.t = t
        return conn

    def _control(self, ev: TcpEvent) -> None:
        out = self._out
        if type(ev) is TcpOpened:
            self._open(ev.conn, ev.client, ev.server, ev.t, ev.mid_stream)
            out.append(ConnEvent(ev.t, ev.conn, "opened", ev.client, ev.server, "", "picked up mid-stream" if ev.mid_stream else "", ev.frame))
            return
        if type(ev) is TcpRefused:
            out.append(ConnEvent(ev.t, ev.conn, "refused", ev.client, ev.server, "server", "", ev.frame))
            return
        conn = self._conns.get(ev.conn)
        if conn is None:
            conn = self._open(ev.conn, "", "", ev.t, False)
        t = conn.t = max(conn.t, ev.t)
        if type(ev) is TcpGap:
            self._gap(conn, ev, t)
        elif type(ev) is TcpClosed:
            out.append(ConnEvent(t, conn.cid, "closed", conn.client, conn.server, ev.by, "", ev.frame))
            self._closed(conn, ev.by, t, ev.frame)
        elif type(ev) is TcpReset:
            out.append(ConnEvent(t, conn.cid, "reset", conn.client, conn.server, ev.by, "", ev.frame))
            self._end_all(conn, RESET, t, f"connection reset by {ev.by}")
        elif type(ev) is TcpOpenAtEnd:
            out.append(ConnEvent(t, conn.cid, "open-at-end", conn.client, conn.server))
            self._end_all(conn, OPEN_AT_END, t, "capture ended")
        if conn.cid in self._conns:
            self._track(conn)

    def _data(self, conn: _Conn, ev: TcpData) -> None:
        t = ev.t
        if t < conn.t:
            t = conn.t
        else:
            conn.t = t
        if conn.first is None:
            conn.first = ev.data
            if not ev.from_client and not conn.mid_stream and not ev.data.startswith(b"HTTP/"):
                self._not_http(conn, t)  # the server spoke first: HTTP servers do not
                return
        if ev.from_client:
            for hev in conn.req.feed(ev.data, t, ev.frame):
                if type(hev) is BodyPiece:
                    ex = conn.sending
                    if ex is not None and ex.body is not None:
                        ex.body.add(hev.data)
                else:
                    self._request_event(conn, hev)
                    if conn.ignored:
                        break
        else:
            for hev in conn.resp.feed(ev.data, t, ev.frame):
                if type(hev) is BodyPiece:
                    ex = conn.receiving
                    if ex is not None:
                        if ex.sse is not None:
                            self._sse(ex, hev.data, hev.t, hev.frame)
                        elif ex.rbody is not None:
                            ex.rbody.add(hev.data)
                else:
                    self._response_event(conn, hev)
                    if conn.ignored:
                        break

    def _stream_packet(self, conn: _Conn, ev: TcpData) -> bool:
        """Fast path of ``_data`` for server bytes that are whole chunks of an SSE stream.

        Most packets of MCP traffic are one SSE event in one chunk: this skips the
        parser's event objects.  False (nothing done) when it does not apply.
        """
        ex = conn.receiving
        if ex is None or ex.sse is None or ex.inflate is not None or conn.first is None:
            return False
        chunks = conn.resp.whole_chunks(ev.data)
        if chunks is None:
            return False
        t = ev.t
        if t < conn.t:
            t = conn.t
        else:
            conn.t = t
        payloads, ended = chunks
        for payload in payloads:
            self._sse(ex, payload, t, ev.frame)
        if ended:
            self._response_event(conn, MessageEnd(t, ev.frame))
        return True

    def _gap(self, conn: _Conn, ev: TcpGap, t: float) -> None:
        side = "client->server" if ev.from_client else "server->client"
        lost = f"{ev.lost} bytes lost in {side} stream"
        self._out.append(ConnEvent(t, conn.cid, "gap", conn.client, conn.server, "client" if ev.from_client else "server", lost, ev.frame))
        if conn.ignored:
            return
        message = f"{conn.cid}: {lost}"
        ex: _Ex | None
        if ev.from_client:
            ex = conn.sending
            if ex is None and conn.req.pending_since is not None:
                message += " (inside a request head)"
            conn.req.lost()
            if ex is not None:
                self._cut_request(conn, ex, GAP, f"{lost}: request incomplete")
        else:
            ex = conn.receiving or (conn.queue[0] if conn.queue else None)
            conn.resp.lost()
            if ex is conn.receiving:
                conn.receiving = None
            elif ex is not None:  # its response started in the lost bytes
                conn.queue.pop(0)
                conn.resp.methods.pop(0)
            if ex is not None:
                self._end(ex, GAP, t, lost)
        if ex is not None:
            message += f", exchange {ex.label} incomplete"
        self._out.append(CaptureWarning(t, message, conn.cid))

    def _closed(self, conn: _Conn, by: str, t: float, frame: int | None) -> None:
        first = "client" if conn.fin_client else "server" if conn.fin_server else by  # who closed first
        if by == "client":
            conn.fin_client = True
            if conn.sending is not None:
                self._cut_request(conn, conn.sending, CLOSED, "the client closed the connection inside the request")
        else:
            conn.fin_server = True
            if not conn.ignored:
                for hev in conn.resp.eof(t, frame):  # ends a body delimited by the close
                    self._response_event(conn, hev)
        if conn.fin_server:  # nothing more can be answered
            self._end_all(conn, CLOSED, t, f"connection closed by the {first}", drop=conn.fin_client)

    def _end_all(self, conn: _Conn, outcome: str, t: float, detail: str, drop: bool = True) -> None:
        """End every exchange of the connection; forget the connection if ``drop``."""
        if conn.receiving is not None:
            self._end(conn.receiving, outcome, t, detail)
            conn.receiving = None
        waiting = "no response before the capture ended" if outcome == OPEN_AT_END else f"{detail} before the response"
        while conn.queue:
            self._end(conn.queue.pop(0), outcome, t, waiting)
        conn.resp.methods.clear()
        conn.sending = None
        if drop:
            self._conns.pop(conn.cid, None)
            self._pending.pop(conn.cid, None)

    def _not_http(self, conn: _Conn, t: float) -> None:
        conn.ignored = True
        conn.req.stop()
        conn.resp.stop()
        self._out.append(CaptureWarning(t, f"{conn.cid}: not HTTP (first bytes: {preview(conn.first or b'', 12)})", conn.cid))

    # ------------------------------------------------------------------ HTTP events
    def _request_event(self, conn: _Conn, hev: HttpEvent) -> None:
        """Heads, ends and errors of the client side (body pieces are handled inline in _data)."""
        ex: _Ex | None
        if type(hev) is RequestHead:
            conn.seen_http = True
            ex = conn.sending = _Ex(self.ids.xid(conn.cid), conn, hev, self.max_body * 4)
            self.exchanges += 1
            conn.queue.append(ex)
            conn.resp.expect(hev.method)
        elif type(hev) is MessageEnd:
            ex = conn.sending
            if ex is not None:
                conn.sending = None
                if not ex.emitted:
                    ex.frame, ex.t_frame = hev.frame, hev.t  # the packet that completed it: Wireshark's HTTP row
                    self._request(ex, complete=True)
        elif type(hev) is ParseError:
            if not conn.seen_http and not conn.mid_stream:
                self._not_http(conn, hev.t)
                return
            message = f"{conn.cid}: bad HTTP request: {hev.message}"
            ex = conn.sending if hev.in_body else None
            if ex is not None:
                self._cut_request(conn, ex, ERROR, hev.message)
                message += f", exchange {ex.label} incomplete"
            self._out.append(CaptureWarning(hev.t, message, conn.cid))

    def _response_event(self, conn: _Conn, hev: HttpEvent) -> None:
        """Heads, ends and errors of the server side (body pieces are handled inline in _data)."""
        if type(hev) is ResponseHead:
            self._response_head(conn, hev)
        elif type(hev) is MessageEnd:
            ex = conn.receiving
            if ex is None:
                return
            conn.receiving = None
            outcome, detail = ex.damage or (COMPLETE, "")
            self._end(ex, outcome, hev.t, detail, complete=True)
            if conn.resp.dead:  # 101 Switching Protocols or a CONNECT tunnel: not HTTP any more
                conn.ignored = True
                conn.req.stop()
                self._end_all(conn, CLOSED, hev.t, "protocol switched", drop=False)
        elif type(hev) is ParseError:
            if not conn.seen_http and not conn.mid_stream:
                self._not_http(conn, hev.t)
                return
            message = f"{conn.cid}: bad HTTP response: {hev.message}"
            ex = conn.receiving if hev.in_body else None
            if ex is not None:
                conn.receiving = None
                self._end(ex, ERROR, hev.t, hev.message)
                message += f", exchange {ex.label} ended"
            self._out.append(CaptureWarning(hev.t, message, conn.cid))

    def _response_head(self, conn: _Conn, head: ResponseHead) -> None:
        if head.status < 200 and head.status != 101:
            return  # interim response (100 Continue, 103 Early Hints): no record
        if head.method is None or not conn.queue:
            self._add_older(CaptureWarning(head.t, f"{conn.cid}: HTTP {head.status} response without a request (ignored)", conn.cid))
            return
        ex = conn.queue.pop(0)
        conn.receiving = ex
        if not ex.emitted:  # answered before the request was complete
            self._request(ex, complete=False)
        ex.head = head
        if head.has_body and head.content_type == "text/event-stream":
            ex.sse = SseDecoder()
            ex.inflate = _inflater(head.content_encoding)
            self._response(ex, None, complete=True)
        else:
            ex.rbody = _Body(self.max_body * 4, head.content_encoding)

    def _sse(self, ex: _Ex, data: bytes, t: float, frame: int | None) -> None:
        """Body bytes of an event stream -> SseEvent records (stamped with the packet's t/frame)."""
        if ex.inflate is not None:
            try:
                data = ex.inflate.decompress(data)
            except zlib.error as exc:
                ex.inflate = None
                ex.sse = None  # the rest of the stream cannot be read
                self._out.append(CaptureWarning(t, f"{ex.conn}: exchange {ex.label}: undecodable compressed event stream ({exc})", ex.conn))
                return
        assert ex.sse is not None
        events = ex.sse.decode(data)
        if events:
            xid, append = ex.xid, self._out.append
            for text, name, eid, retry, _ in events:
                append(SseEvent(t, xid, text, name, eid, retry, frame))

    def _cut_request(self, conn: _Conn, ex: _Ex, outcome: str, detail: str) -> None:
        """The rest of this request will never be seen: write it as it is; its End will say why."""
        conn.sending = None
        ex.damage = (outcome, detail)
        if not ex.emitted:
            self._request(ex, complete=False)

    # ------------------------------------------------------------------ records
    def _add_older(self, record: Request | Response | CaptureWarning) -> None:
        """Append a record whose time is that of an earlier packet (the others' is the current one)."""
        out = self._out
        if out and out[-1].t > record.t:  # type: ignore[union-attr,operator]  # never Meta, t set
            self._unsorted = True
        out.append(record)

    def _request(self, ex: _Ex, complete: bool) -> None:
        ex.emitted = True
        body, truncated, size = "", False, 0
        if ex.body is not None:
            body, truncated = ex.body.text(self.max_body)
            size = ex.body.size
            ex.body = None
        self._add_older(Request(ex.t, ex.conn, ex.xid, ex.method, ex.target, ex.headers, body, size, truncated or not complete, ex.frame, ex.server, ex.t_frame))

    def _response(self, ex: _Ex, t_end: float | None, complete: bool) -> None:
        head = ex.head
        assert head is not None
        ex.responded = True
        body, truncated, size = "", False, 0
        if ex.rbody is not None:
            body, truncated = ex.rbody.text(self.max_body)
            size = ex.rbody.size
            ex.rbody = None
        t = head.t if head.t > ex.t else ex.t  # its first byte can be older (bytes before a resync)
        self._add_older(Response(t, ex.xid, head.status, head.reason, head.headers, body, size, truncated or not complete, ex.sse is not None, t_end, head.frame))

    def _end(self, ex: _Ex, outcome: str, t: float, detail: str, complete: bool = False) -> None:
        """Write what is still unwritten of the exchange, then its End (exactly once)."""
        if ex.ended:
            return
        ex.ended = True
        if not ex.emitted:
            self._request(ex, complete=False)
        if ex.head is not None and not ex.responded:
            self._response(ex, t if complete else None, complete)
        if ex.sse is not None and ex.sse.ignored_retry:
            self._out.append(CaptureWarning(t, f"{ex.conn}: exchange {ex.label}: {ex.sse.ignored_retry} SSE retry field(s) of more than {MAX_RETRY_DIGITS} digits ignored", ex.conn))
        self._out.append(End(t, ex.xid, outcome, detail))
