"""mitmproxy: the addon that records MCP traffic through a proxy as mcpsniff records (JSONL),
and the reader of mitmproxy flow files (``read_flows``).

``mitmdump --mode reverse:http://127.0.0.1:5076 -p 5077 -s addons/mcpsniff_addon.py
--set mcpsniff_output=run.jsonl``

Why an addon and not a flow dump: SSE events must be timestamped the moment they pass
(``responseheaders`` switches ``text/event-stream`` responses to streaming with a
callable that decodes and returns the bytes unchanged), and the output must be
readable even when mitmdump is killed (one flushed JSON line per record).

Connection ids: one per client connection ("c1", ...). The upstream connection that
mitmproxy opens for a client connection reports on the same id (``detail`` says
"upstream ..."); every ConnEvent's ``server`` is the upstream server, so the analysis
sees the proxy as transparent. Unless the user set ``connection_strategy`` (``--set``,
config.yaml), the addon changes mitmproxy's default "eager" to "lazy": the upstream is
dialled per request, so a refused upstream becomes a 502 to a recorded request
(``End(outcome="refused")`` plus ``ConnEvent(event="refused")``) instead of a silently
closed client connection.

Streamed bodies: mitmproxy keeps no body of a streamed response, so ``mitmdump -w`` and
mitmweb would show event streams empty. The stream callable also keeps the first
``max_body`` bytes of each and puts them in the flow when it ends (a cut body is said in
``flow.comment`` and ``flow.metadata["mcpsniff_body_size"]``).

``mcpsniff_filter`` (a mitmproxy filter expression, matched once per request) limits what
is recorded; a connection's events are only written once one of its flows matched.

Any failure inside the addon is logged and swallowed: traffic always passes untouched.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional, TypeVar

from mitmproxy import connection, ctx, exceptions, flowfilter, http, io, optmanager
from mitmproxy.proxy import server_hooks

# absolute imports: mitmdump can load this file itself as a script (``-s .../mcpsniff/capture/mitm.py``),
# as a module outside the mcpsniff package, where relative imports would fail
from mcpsniff import records as R
from mcpsniff.config import load_config
from mcpsniff.errors import BadInputError, ConfigError
from mcpsniff.wire.sse import SseDecoder

if __name__.startswith("__mitmproxy_script__."):  # that script is not in sys.modules, where dataclasses look
    import importlib  # up the module of a class: lend them the installed module (same names)
    import sys

    sys.modules[__name__] = importlib.import_module("mcpsniff.capture.mitm")

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MAX_BODY = 65536
RETRY_EVERY = 1.0  # s between tries to open an output that failed
MAX_BACKLOG = 100_000  # records kept in memory while the output cannot be written
MAX_WAITING = 100  # connection facts kept per connection none of whose flows matched mcpsniff_filter yet


def _guarded(hook: F) -> F:
    """Never let an addon bug reach mitmproxy: log it and let the traffic through."""

    @functools.wraps(hook)
    def wrapper(self: McpSniff, *args: Any) -> Any:
        try:
            return hook(self, *args)
        except Exception:  # noqa: BLE001 - the proxy must keep working whatever happens here
            log.exception("mcpsniff: %s hook failed (traffic is not affected)", hook.__name__)
            return None

    return wrapper  # type: ignore[return-value]


def _addr(address: Any) -> str:
    """"ip:port" ("[v6]:port" for IPv6) of a mitmproxy address tuple ("" when unknown)."""
    if not address:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _set_by_user(name: str) -> bool:
    """Whether an option was given a value (``--set``, config.yaml, an addon), even its default's.

    mitmproxy has no public way to ask; should its internals change, the option counts as
    set, so the user's choice is never overridden.
    """
    option = getattr(ctx.options, "_options", {}).get(name)
    return option is None or getattr(option, "value", None) is not optmanager.unset


def _outcome(message: str) -> str:
    """End.outcome for a mitmproxy flow error message."""
    low = message.lower()
    if "connect call failed" in low or "refused" in low:
        return R.REFUSED
    if "reset" in low:
        return R.RESET
    if "disconnect" in low or "closed" in low or "incomplete" in low:
        return R.CLOSED
    return R.ERROR


@dataclass
class _Conn:
    """One client connection and the upstream connection(s) opened for it."""

    cid: str
    client: str
    server: str
    upstream_refused: str = ""  # error text of the last failed upstream connect
    cut_by: str = ""  # "client" or "server": who ended an open exchange by disconnecting
    waiting: list[R.Record] | None = None  # with a filter: its records until a flow of it matches (None: written at once)


@dataclass
class _Exchange:
    xid: str
    conn: _Conn
    decoder: SseDecoder | None = None


@dataclass
class _Kept:
    """The first ``cap`` bytes of a streamed response, for the flow (mitmproxy keeps none)."""

    flow: http.HTTPFlow
    cap: int
    data: bytearray = field(default_factory=bytearray)
    size: int = 0  # bytes that passed

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    def settle(self) -> None:
        """Give the flow the bytes kept, unless it has a body (``store_streamed_bodies``, another addon)."""
        resp = self.flow.response
        if resp is None or resp.raw_content is not None:
            return
        resp.raw_content = bytes(self.data)
        if self.size > len(self.data):
            self.flow.metadata["mcpsniff_body_size"] = self.size
            note = f"mcpsniff: streamed body cut to its first {len(self.data)} of {self.size} bytes (mcpsniff_max_body)"
            self.flow.comment = f"{self.flow.comment}\n{note}" if self.flow.comment else note


class McpSniff:
    """mitmproxy addon writing mcpsniff records; ``stream`` injects the output (tests)."""

    def __init__(self, stream: IO[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.clock = clock  # only for SSE events: no flow timestamp exists for them
        self.max_body = DEFAULT_MAX_BODY
        self._writer: R.RecordWriter | None = None
        self._file: IO[str] | None = None
        self._path: str | None = None  # the mcpsniff_output the writer was opened for
        self._appending = False  # the output was opened once: reopen it for appending
        self._retry_at = 0.0  # time.monotonic() of the next try to open a failed output
        self._complaint = ""  # the last error logged about the output (each said once)
        self._backlog: list[R.Record] = []  # records waiting for the output to open
        self._lost = 0  # records dropped from a full backlog
        self._ids = R.Ids()
        self._conns: dict[str, _Conn] = {}  # mitmproxy client id -> conn
        self._flows: dict[str, _Exchange] = {}  # flow id -> open exchange
        self._kept: dict[str, _Kept] = {}  # flow id -> body of a response being streamed
        self._filter: flowfilter.TFilter | None = None
        self._unrecorded: set[str] = set()  # ids of open flows the filter did not match
        self._strategy_said = False

    # -- options -------------------------------------------------------------------
    def load(self, loader: Any) -> None:
        loader.add_option("mcpsniff_output", Optional[str], None, "Write mcpsniff records (JSON lines, flushed per record) to this file.")
        loader.add_option("mcpsniff_config", Optional[str], None, "mcpsniff YAML config (max_body is used here).")
        loader.add_option("mcpsniff_max_body", Optional[int], None, "Characters of each request/response body kept (default: the config's max_body, 65536); also the bytes of each event stream kept in the flow (-w, mitmweb).")
        loader.add_option("mcpsniff_filter", Optional[str], None, "Record only flows matching this mitmproxy filter expression, matched on the request (e.g. '~u /tasks/'); the others pass unrecorded.")

    def configure(self, updated: set[str]) -> None:
        checks = []
        if "mcpsniff_config" in updated or "mcpsniff_max_body" in updated:
            checks.append(self._configure_limits)
        if "mcpsniff_filter" in updated:
            checks.append(self._configure_filter)
        for check in checks:
            try:
                check()
            except exceptions.OptionsError as exc:
                if len(updated) < len(ctx.options.keys()):
                    raise  # a change while running (mitmweb's options, tests): mitmproxy refuses it and says why
                log.error("mcpsniff: %s", exc)  # at load mitmproxy would print a traceback; mitmdump exits on this line
        if "connection_strategy" in updated:
            self._choose_strategy()
        self._open_output()

    def _choose_strategy(self) -> None:
        """Lazy unless the user chose a strategy: with "eager" a refused upstream only closes the client connection."""
        if _set_by_user("connection_strategy"):
            if ctx.options.connection_strategy == "eager" and not self._strategy_said:
                log.info("mcpsniff: connection_strategy=eager as set: a refused upstream closes the client connection instead of a recorded 502")
                self._strategy_said = True
            return
        if not self._strategy_said:
            log.info("mcpsniff: connection_strategy changed from mitmproxy's default eager to lazy, so a refused upstream is a 502 to a recorded request (--set connection_strategy=eager keeps eager)")
            self._strategy_said = True
        ctx.options.connection_strategy = "lazy"

    def _configure_filter(self) -> None:
        expr = ctx.options.mcpsniff_filter
        self._filter = None
        if expr:
            try:
                self._filter = flowfilter.parse(expr)
            except ValueError:
                raise exceptions.OptionsError(f"mcpsniff_filter: not a mitmproxy filter expression: {expr!r} (e.g. '~u /tasks/', '~d example.com & ~m POST')") from None

    def _configure_limits(self) -> None:
        path = ctx.options.mcpsniff_config
        try:
            cfg_max = load_config(Path(path)).max_body if path else DEFAULT_MAX_BODY
        except ConfigError as exc:
            raise exceptions.OptionsError(f"mcpsniff_config: {exc}") from None
        cap = ctx.options.mcpsniff_max_body
        if cap is not None and cap < 0:
            raise exceptions.OptionsError("mcpsniff_max_body: must be >= 0")
        self.max_body = cfg_max if cap is None else cap

    def _open_output(self) -> None:
        """(Re)open the output when the path changed (or on first use of an injected stream).

        An output that cannot be opened (a directory, a missing folder, no permission) is
        logged and retried every RETRY_EVERY s; until then records wait in memory (at most
        MAX_BACKLOG; older ones are counted and said lost). mitmdump never stops for it.
        """
        path = ctx.options.mcpsniff_output
        if self._writer is not None and path == self._path:
            return
        if path != self._path:
            self._close_file()
            self._writer = None
            self._appending = False
            self._path = path
        if not path:
            target = self.stream
            self._writer = R.RecordWriter(target, source="mitm", origin=self._origin()) if target is not None else None
            return
        self._try_open()

    def _origin(self) -> str:
        mode = ctx.options.mode
        return " ".join(mode) if isinstance(mode, (list, tuple)) else str(mode)

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _try_open(self) -> None:
        """Open ``mcpsniff_output`` (append after a failure, so nothing written is lost), then write what waited."""
        self._retry_at = time.monotonic() + RETRY_EVERY
        path = self._path
        assert path
        try:
            fh = open(Path(path).expanduser(), "a" if self._appending else "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the addon
        except OSError as exc:
            message = f"mcpsniff: cannot write records to {path}: {exc.strerror or exc}; traffic passes, retrying every {RETRY_EVERY:g} s"
            if message != self._complaint:
                log.warning(message)  # a warning: mitmdump exits on an error logged while it starts
                self._complaint = message
            return
        self._file = fh
        try:
            if self._appending:
                fh.write("\n")  # a line cut by the failure stays a line of its own
                self._writer = R.RecordWriter(fh, source="mitm", origin=self._origin(), meta=False)
            else:
                self._writer = R.RecordWriter(fh, source="mitm", origin=self._origin())
            self._appending = True
            if self._complaint:
                log.warning("mcpsniff: writing records to %s again", path)
                self._complaint = ""
            backlog, self._backlog = self._backlog, []
            if self._lost:
                self._writer.write(R.CaptureWarning(t=None, message=f"mcpsniff addon: {self._lost} record(s) lost while {path} could not be written"))
                self._lost = 0
            for record in backlog:
                self._writer.write(record)
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        message = f"mcpsniff: writing records to {self._path} failed: {exc.strerror or exc}; traffic passes, retrying every {RETRY_EVERY:g} s"
        if message != self._complaint:
            log.warning(message)
            self._complaint = message
        self._close_file()
        self._writer = None
        self._retry_at = time.monotonic() + RETRY_EVERY

    def _write(self, record: R.Record) -> None:
        if self._writer is None and self._path and time.monotonic() >= self._retry_at:
            self._try_open()
        if self._writer is None:
            if self._path:
                self._backlog.append(record)
                if len(self._backlog) > MAX_BACKLOG:
                    del self._backlog[: len(self._backlog) - MAX_BACKLOG]
                    self._lost += 1
            return
        try:
            self._writer.write(record)
        except OSError as exc:
            self._backlog.append(record)
            self._failed(exc)

    # -- connections -----------------------------------------------------------------
    def _conn_of(self, client: connection.Client) -> _Conn:
        conn = self._conns.get(client.id)
        if conn is None:  # a flow or hook for a client we did not see connect (addon loaded late)
            mode = getattr(client, "proxy_mode", None)
            upstream = _addr(getattr(mode, "address", None))
            conn = self._conns[client.id] = _Conn(self._ids.conn(), _addr(client.peername), upstream, waiting=[] if self._filter else None)
        return conn

    def _conn_write(self, conn: _Conn, record: R.Record) -> None:
        """Write a connection fact, or keep it while no flow of the connection matched the filter
        (bounded: its first fact and the latest MAX_WAITING - 1)."""
        if conn.waiting is None:
            self._write(record)
            return
        conn.waiting.append(record)
        if len(conn.waiting) > MAX_WAITING:
            del conn.waiting[1]

    @_guarded
    def client_connected(self, client: connection.Client) -> None:
        conn = self._conn_of(client)
        self._conn_write(conn, R.ConnEvent(t=client.timestamp_start, conn=conn.cid, event="opened", client=conn.client, server=conn.server, by="proxy", detail=f"client connected to proxy {_addr(client.sockname)}"))

    @_guarded
    def client_disconnected(self, client: connection.Client) -> None:
        conn = self._conns.pop(client.id, None)
        if conn is None or conn.waiting is not None:  # (not a flow of it matched the filter: nothing to say)
            return
        by = "server" if conn.cut_by == "server" else "client"
        t = client.timestamp_end or self.clock()
        self._write(R.ConnEvent(t=t, conn=conn.cid, event="closed", client=conn.client, server=conn.server, by=by, detail="client connection closed"))

    @_guarded
    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        conn = self._conn_of(data.client)
        conn.server = _addr(data.server.address) or conn.server
        t = data.server.timestamp_tcp_setup or data.server.timestamp_start or self.clock()
        self._conn_write(conn, R.ConnEvent(t=t, conn=conn.cid, event="opened", client=conn.client, server=conn.server, detail=f"upstream connected from {_addr(data.server.sockname)}"))

    @_guarded
    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        conn = self._conn_of(data.client)
        conn.server = _addr(data.server.address) or conn.server
        conn.upstream_refused = data.server.error or "connect failed"
        t = data.server.timestamp_start or self.clock()
        self._conn_write(conn, R.ConnEvent(t=t, conn=conn.cid, event="refused", client=conn.client, server=conn.server, by="server", detail=f"upstream: {conn.upstream_refused}"))

    @_guarded
    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        conn = self._conns.get(data.client.id)
        if conn is None or conn.cut_by == "client":  # the proxy closed the upstream after the client left
            return
        t = data.server.timestamp_end or self.clock()
        self._conn_write(conn, R.ConnEvent(t=t, conn=conn.cid, event="closed", client=conn.client, server=conn.server, by="server", detail="upstream connection closed"))

    # -- exchanges -------------------------------------------------------------------
    def _exchange(self, flow: http.HTTPFlow) -> _Exchange | None:
        """The flow's exchange, writing its Request record on first sight; None for a flow left out by the filter."""
        ex = self._flows.get(flow.id)
        if ex is None:
            if flow.id in self._unrecorded:
                return None
            if self._filter is not None and not self._filter(flow):
                self._unrecorded.add(flow.id)
                return None
            conn = self._conn_of(flow.client_conn)
            if conn.waiting is not None:  # its first matching flow: what the connection did so far
                waiting, conn.waiting = conn.waiting, None
                for record in waiting:
                    self._write(record)
            ex = self._flows[flow.id] = _Exchange(self._ids.xid(conn.cid), conn)
            req = flow.request
            body, size, cut = self._body(req)
            esc = R.escaped
            self._write(R.Request(t=req.timestamp_start, conn=conn.cid, xid=ex.xid, method=esc(req.method), target=esc(req.path), headers=_headers(req.headers.items(multi=True)), body=body, body_size=size, truncated=cut, server=esc(f"{req.host}:{req.port}")))
        return ex

    def _body(self, message: http.Message) -> tuple[str, int, bool]:
        return _body(message, self.max_body)

    def _end(self, ex: _Exchange, flow: http.HTTPFlow, t: float, outcome: str, detail: str = "") -> None:
        self._flows.pop(flow.id, None)
        self._write(R.End(t=t, xid=ex.xid, outcome=outcome, detail=detail))

    @_guarded
    def request(self, flow: http.HTTPFlow) -> None:
        self._exchange(flow)

    @_guarded
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or not resp.headers.get("content-type", "").lower().startswith("text/event-stream"):
            return
        previous = resp.stream if callable(resp.stream) else None
        kept = None
        if not getattr(ctx.options, "store_streamed_bodies", False):  # (with it mitmproxy keeps the whole body itself)
            kept = self._kept[flow.id] = _Kept(flow, self.max_body)
        resp.stream = functools.partial(self._pass_chunk, flow.id, previous, kept)  # first: SSE flows even if recording fails
        ex = self._exchange(flow)
        if ex is None:
            return
        self._write(R.Response(t=resp.timestamp_start, xid=ex.xid, status=resp.status_code, reason=R.escaped(resp.reason), headers=_headers(resp.headers.items(multi=True)), stream=True))
        if resp.headers.get("content-encoding", "identity").lower() != "identity":
            self._write(R.CaptureWarning(t=resp.timestamp_start, conn=ex.conn.cid, message=f"{ex.xid}: compressed event stream ({resp.headers['content-encoding']}); its events are not decoded"))
            return
        ex.decoder = SseDecoder()

    def _pass_chunk(self, flow_id: str, previous: Callable[[bytes], Any] | None, kept: _Kept | None, data: bytes) -> Any:
        """mitmproxy's stream callable: keep the bytes for the flow, record the events, hand the bytes on unchanged."""
        ex = self._flows.get(flow_id)
        try:
            if kept is not None:
                kept.add(data)
            if data and ex is not None and ex.decoder is not None:
                for event in ex.decoder.feed(data, self.clock()):
                    self._write(R.SseEvent(t=event.t, xid=ex.xid, data=event.data, event=event.event, id=event.id, retry=event.retry))
        except Exception:  # noqa: BLE001 - never break the stream
            log.exception("mcpsniff: SSE recording failed for %s (traffic is not affected)", ex.xid if ex else flow_id)
            if ex is not None:
                ex.decoder = None
        return previous(data) if previous is not None else data

    @_guarded
    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        assert resp is not None
        self._settle(flow)
        ex = self._exchange(flow)
        if ex is None:
            self._unrecorded.discard(flow.id)
            return
        t_end = resp.timestamp_end or resp.timestamp_start
        if ex.decoder is None and not callable(resp.stream):
            body, size, cut = self._body(resp)
            self._write(R.Response(t=resp.timestamp_start, xid=ex.xid, status=resp.status_code, reason=R.escaped(resp.reason), headers=_headers(resp.headers.items(multi=True)), body=body, body_size=size, truncated=cut, t_end=t_end))
        self._end(ex, flow, t_end, R.COMPLETE)

    @_guarded
    def error(self, flow: http.HTTPFlow) -> None:
        self._settle(flow)
        if flow.error is None:
            return
        ex = self._exchange(flow)
        if ex is None:
            self._unrecorded.discard(flow.id)
            return
        message = flow.error.msg
        t = flow.error.timestamp
        if flow.response is None and (ex.conn.upstream_refused or _outcome(message) == R.REFUSED):
            ex.conn.upstream_refused = ""
            self._end(ex, flow, t, R.REFUSED, f"upstream refused the connection; the client got 502 ({message})")
            return
        outcome = _outcome(message)
        if outcome in (R.CLOSED, R.RESET):
            ex.conn.cut_by = "client" if "client" in message.lower() else "server"
        self._end(ex, flow, t, outcome, message)

    def _settle(self, flow: http.HTTPFlow) -> None:
        kept = self._kept.pop(flow.id, None)
        if kept is not None:
            kept.settle()

    @_guarded
    def done(self) -> None:
        """mitmdump is stopping: what is still open is open at the end of the capture
        (and the flows still streaming get their bodies before mitmproxy's save addon writes them)."""
        for kept in self._kept.values():
            kept.settle()
        self._kept.clear()
        self._unrecorded.clear()
        t = self.clock()
        for ex in self._flows.values():
            self._write(R.End(t=t, xid=ex.xid, outcome=R.OPEN_AT_END, detail="proxy stopped"))
        self._flows.clear()
        for conn in self._conns.values():
            if conn.waiting is None:
                self._write(R.ConnEvent(t=t, conn=conn.cid, event="open-at-end", client=conn.client, server=conn.server))
        self._conns.clear()
        if self._backlog and self._path:
            self._try_open()  # a last try, so what waited is not lost
        if self._backlog:
            log.error("mcpsniff: %d record(s) could not be written to %s", len(self._backlog) + self._lost, self._path)
        self._close_file()
        self._writer = None


def _headers(items: Iterable[tuple[str, str]]) -> R.Headers:
    """Header pairs; bytes that are not UTF-8 (mitmproxy gives them as surrogates) kept as ``\\xNN``."""
    esc = R.escaped
    return tuple((esc(str(k)), esc(str(v))) for k, v in items)


def _body(message: http.Message, cap: int) -> tuple[str, int, bool]:
    """(text kept, size in bytes, truncated) of a request or response body."""
    raw = message.get_content(strict=False) or b""
    text = raw.decode("utf-8", errors="replace")
    return text[:cap], len(raw), len(text) > cap

# -- mitmproxy flow files (``mitmdump -w flows.mitm``) -------------------------------
# A flow file keeps whole flows, not the moments SSE events passed: every event of a
# stored ``text/event-stream`` body gets the response's end time. Records are sorted by
# time so the analysis sees requests, responses and connection facts in order. A flow
# file written while streaming holds no streamed body: the response is then marked as a
# stream without events.


def read_flows(path: Path) -> Iterator[R.Record]:
    """Records of a mitmproxy flow file; BadInputError if it cannot be read at all.

    A flow whose fields do not make valid records (wrong types, times out of range,
    missing keys) is skipped with a warning; a file that goes bad part-way (mitmproxy's
    reader raises, a length prefix beyond the end, nesting too deep) keeps the flows
    before that point.
    """
    out: list[R.Record] = []
    try:
        with Path(path).open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            out = list(_records(io.FlowReader(_Bounded(fh, size)).stream(), path))  # type: ignore[arg-type]
    except OSError as exc:
        raise BadInputError(f"{path}: {exc.strerror or exc}") from None
    yield R.Meta(source="mitm-flows", origin=Path(path).name)
    out.sort(key=R.time_key)  # stable: a flow's records keep their order
    yield from out


class _Bounded:
    """A binary file whose ``read(n)`` never asks for more than the file still holds:
    mitmproxy's tnetstring reader reads a value's declared length at once, and a length
    prefix of 99999999999 would otherwise try to allocate that much."""

    def __init__(self, fh: Any, size: int) -> None:
        self._fh = fh
        self._size = size

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._fh.tell())
        return self._fh.read(left if n is None or n < 0 or n > left else n)

    def peek(self, n: int = 1) -> bytes:
        return self._fh.peek(n)[:n]

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)


# What a malformed flow state makes mitmproxy or our record building raise.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError, UnicodeError, AssertionError, BadInputError)


def _records(flows: Iterable[Any], path: Path) -> Iterator[R.Record]:
    ids = R.Ids()
    conns: dict[str, str] = {}  # mitmproxy client connection id -> our conn id
    name = Path(path).name
    count = 0
    it = iter(flows)
    while True:
        try:
            flow = next(it)
        except StopIteration:
            break
        except (exceptions.FlowReadException, *_MALFORMED) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else R.text(f"{type(exc).__name__}: {exc}")[:200]
            if count == 0:
                raise BadInputError(f"{path}: not a readable mitmproxy flow file ({reason})") from None
            yield R.CaptureWarning(t=None, message=f"{name}: flow file ends in a damaged flow after {count} flow(s) ({reason})")
            break
        count += 1
        if not isinstance(flow, http.HTTPFlow):
            continue
        new_conn = None
        try:
            client = flow.client_conn
            cid = conns.get(client.id)
            got: list[R.Record] = []
            if cid is None:
                cid = conns[client.id] = ids.conn()
                new_conn = client.id
                server = _addr(flow.server_conn.address)
                got.append(R.ConnEvent(t=client.timestamp_start, conn=cid, event="opened", client=_addr(client.peername), server=server, by="proxy", detail="client connected to proxy"))
                if client.timestamp_end:
                    got.append(R.ConnEvent(t=client.timestamp_end, conn=cid, event="closed", client=_addr(client.peername), server=server, detail="client connection closed"))
            got += _flow_records(flow, cid, ids.xid(cid))
            for record in got:
                R.validate(record)
        except _MALFORMED as exc:
            if new_conn is not None:
                conns.pop(new_conn, None)
            reason = "nested too deeply" if isinstance(exc, RecursionError) else R.text(str(exc))[:200]
            yield R.CaptureWarning(t=None, message=f"{name}: flow {count} skipped (malformed: {reason})")
            continue
        yield from got


def _flow_records(flow: http.HTTPFlow, cid: str, xid: str) -> Iterator[R.Record]:
    req, resp = flow.request, flow.response
    body, size, cut = _body(req, DEFAULT_MAX_BODY)
    server = _addr(flow.server_conn.address) or R.escaped(f"{req.host}:{req.port}")
    yield R.Request(t=req.timestamp_start, conn=cid, xid=xid, method=R.escaped(req.method), target=R.escaped(req.path), headers=_headers(req.headers.items(multi=True)), body=body, body_size=size, truncated=cut, server=server)
    if resp is not None:
        t_end = resp.timestamp_end or resp.timestamp_start
        if resp.headers.get("content-type", "").lower().startswith("text/event-stream"):
            yield R.Response(t=resp.timestamp_start, xid=xid, status=resp.status_code, reason=R.escaped(resp.reason), headers=_headers(resp.headers.items(multi=True)), stream=True)
            content = resp.get_content(strict=False)
            if content is None:
                yield R.CaptureWarning(t=resp.timestamp_start, conn=cid, message=f"{xid}: the flow file holds no body for this event stream (it was streamed: load the mcpsniff addon, or --set store_streamed_bodies=true, to keep it)")
            else:
                size = flow.metadata.get("mcpsniff_body_size")
                if isinstance(size, int) and size > len(resp.raw_content or b""):
                    yield R.CaptureWarning(t=t_end, conn=cid, message=f"{xid}: the flow keeps only the first {len(resp.raw_content or b'')} of {size} bytes of this event stream (mcpsniff_max_body): later events are missing")
                for event in SseDecoder().feed(content, t_end):
                    yield R.SseEvent(t=t_end, xid=xid, data=event.data, event=event.event, id=event.id, retry=event.retry)
        else:
            body, size, cut = _body(resp, DEFAULT_MAX_BODY)
            yield R.Response(t=resp.timestamp_start, xid=xid, status=resp.status_code, reason=R.escaped(resp.reason), headers=_headers(resp.headers.items(multi=True)), body=body, body_size=size, truncated=cut, t_end=t_end)
    if flow.error is not None:
        message = R.escaped(str(flow.error.msg))
        outcome = _outcome(message)
        if outcome == R.REFUSED:
            yield R.ConnEvent(t=flow.error.timestamp, conn=cid, event="refused", server=server, by="server", detail=f"upstream: {message}")
        yield R.End(t=flow.error.timestamp, xid=xid, outcome=outcome, detail=message)
    elif resp is not None:
        yield R.End(t=resp.timestamp_end or resp.timestamp_start, xid=xid, outcome=R.COMPLETE)
    else:
        yield R.End(t=req.timestamp_end or req.timestamp_start, xid=xid, outcome=R.OPEN_AT_END, detail="the flow file holds no response")


addons = [McpSniff()]  # for ``mitmdump -s`` of this file; addons/mcpsniff_addon.py is the documented script
