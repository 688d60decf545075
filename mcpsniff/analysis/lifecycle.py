"""Records -> per-namespace exchanges, session generations and server restart windows.

Pure: everything (timestamps included) comes from the records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from .. import records as R
from ..config import Config
from ..wire import jsonrpc
from .clients import ClientObserver
from .conformance import ConformanceObserver, meta_version, rpc_name
from .hops import HopSampler, fingerprint
from .model import Exchange, Generation, NamespaceLifecycle, SseTick
from .namespaces import NamespaceResolver
from .restarts import RestartTracker

SETUP_METHODS: Final = frozenset({"initialize", "notifications/initialized"})
# JSON-RPC error codes that name what went wrong, whatever the HTTP status (2026-07-28 adds the first three)
RPC_ERRORS: Final = {-32020: "header-mismatch", -32021: "missing-capability", -32022: "unsupported-version", -32601: "method-not-found"}
PROBE_REJECTED: Final = "probe-rejected"  # Exchange.error of a server/discover probe answered 4xx: neither session nor failure
MAX_TICKS_COMPACT: Final = 50
MAX_INVALID_WARNINGS: Final = 20
MAX_UNATTRIBUTED: Final = 50_000  # refused/reset connections kept one by one (real restarts have dozens to thousands)


def classify_error(status: int | None, body: str, messages: tuple[jsonrpc.RpcMessage, ...]) -> tuple[str, str]:
    """Name what a failed response means; the body tells 404s apart (mcp-wire.md)."""
    for msg in messages:
        if msg.kind == "error":
            text = (msg.error_message or "").lower()
            if "session" in text and ("not found" in text or "terminated" in text or "invalid" in text):
                return "session-not-found", f"{msg.error_code} {msg.error_message}"
            if msg.error_code in RPC_ERRORS:
                return RPC_ERRORS[msg.error_code], f"{msg.error_code} {msg.error_message}"[:200]
            if status is None or 200 <= status < 300:
                return "jsonrpc-error", f"{msg.error_code} {msg.error_message}"
    if status is None or status < 400:
        return "", ""
    excerpt = " ".join(body.split())[:160]
    lowered = body.lower()
    if status == 404 and '"detail"' in lowered and "not found" in lowered:
        return "route-not-mounted", excerpt
    if status == 400 and "session" in lowered:
        return "session-not-found", excerpt
    if status == 409:
        return "conflict", excerpt
    if status in (502, 503, 504):
        return "upstream-unavailable", excerpt
    return f"http-{status}", excerpt


# The dataclasses below spell out __init__ (mypyc compiles it; the generated one runs as Python: see records.py).
@dataclass
class _Conn(R.Rebuilt):
    client: str = ""
    server: str = ""
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, event, by)
    xids: list[str] = field(default_factory=list)
    closed_by: set[str] = field(default_factory=set)
    last_request_t: float | None = None
    opened_t: float | None = None

    def __init__(
        self,
        client: str = "",
        server: str = "",
        events: list[tuple[float, str, str]] | None = None,
        xids: list[str] | None = None,
        closed_by: set[str] | None = None,
        last_request_t: float | None = None,
        opened_t: float | None = None,
    ) -> None:
        self.client = client
        self.server = server
        self.events = [] if events is None else events
        self.xids = [] if xids is None else xids
        self.closed_by = set() if closed_by is None else closed_by
        self.last_request_t = last_request_t
        self.opened_t = opened_t


class LifecycleBuilder:
    """Consumes records one by one; ``finish()`` returns namespaces, restarts and connections."""

    def __init__(self, config: Config, compact: bool = False) -> None:
        self.compact = compact
        self.resolver = NamespaceResolver(config)
        self.namespaces: dict[str, NamespaceLifecycle] = {}
        self.open: dict[str, Exchange] = {}  # xid -> exchange still being filled
        self.conns: dict[str, _Conn] = defaultdict(_Conn)
        self.warnings: list[str] = []
        self.t0: float | None = None
        self.t_last: float = 0.0
        self.skipped_requests = 0
        self.invalid_jsonrpc = 0
        self.restarts = RestartTracker()
        self.last_refusal: float | None = None
        self.unattributed: list[dict[str, Any]] = []  # refused/reset connections that carried no request
        self.unattributed_dropped = 0  # beyond MAX_UNATTRIBUTED (a SYN flood): counted, not kept
        self.clients = ClientObserver()
        self.minted: dict[str, float] = {}  # session id -> when a response first carried it
        self.rejected: set[str] = set()  # session ids the server already answered 404 (session not found)
        self.lost_requests: list[tuple[float, float, str, str, str]] = []  # (from, to, server, conn, bytes): client bytes lost in the capture
        self.conformance = ConformanceObserver()
        self.hops = HopSampler()
        self.set_aside: list[str] = []  # server addresses whose traffic was a proxy's client hop
        self._routine: set[str] = set()  # xids of ended routine exchanges (compact mode), which later ones may merge into

    # -- feeding --------------------------------------------------------------
    def feed_all(self, records: Iterable[R.Record]) -> None:
        for rec in records:
            self.feed(rec)

    def feed(self, rec: R.Record) -> None:
        # by type, the most frequent first: compiled, a type check and a typed ``t`` cost less than
        # reading ``kind`` and ``getattr(rec, "t")`` of a union (records are built by their kind)
        if isinstance(rec, R.SseEvent):
            self._saw(rec.t)
            self._sse(rec)
        elif isinstance(rec, R.Request):
            self._saw(rec.t)
            self._request(rec)
        elif isinstance(rec, R.End):
            self._saw(rec.t)
            self._end(rec)
        elif isinstance(rec, R.Response):
            self._saw(rec.t)
            self._response(rec)
        elif isinstance(rec, R.ConnEvent):
            self._saw(rec.t)
            self._conn(rec)
        elif isinstance(rec, R.CaptureWarning):
            if rec.t is not None:
                self._saw(rec.t)
            self.warnings.append(rec.message)
        elif isinstance(rec, R.Meta):
            first = rec.t_first  # the file's first packet, of any port: times are relative to it, as in Wireshark
            if first is not None and (self.t0 is None or first < self.t0):
                self.t0 = first

    def _saw(self, t: float) -> None:
        """A record's time: the first and last seen."""
        if self.t0 is None or t < self.t0:
            self.t0 = t
        if t > self.t_last:
            self.t_last = t

    def _conn(self, rec: R.ConnEvent) -> None:
        conn = self.conns[rec.conn]
        if rec.client:
            conn.client = rec.client
        if rec.server:
            conn.server = rec.server
        server = conn.server
        if not self.compact:
            conn.events.append((rec.t, rec.event, rec.by))
        if rec.event == "opened" and conn.opened_t is None:
            conn.opened_t = rec.t
        if rec.event == "refused":
            self.restarts.refused(server, rec.t)
            self.last_refusal = rec.t
        elif rec.event == "opened" and rec.by != "proxy":
            self.restarts.opened(server, rec.t)
        elif rec.event in ("closed", "reset") and rec.by == "server":
            self.restarts.server_closed(server, rec.t)
        if rec.event in ("refused", "reset") and not conn.xids:
            if len(self.unattributed) < MAX_UNATTRIBUTED:
                self.unattributed.append({"conn": rec.conn, "t": rec.t, "event": rec.event, "by": rec.by, "client": conn.client, "server": server, "frame": rec.frame})
            else:
                self.unattributed_dropped += 1
                if self.unattributed_dropped == 1:
                    self.warnings.append(f"more than {MAX_UNATTRIBUTED:,} refused or reset connections without a request: the later ones are counted in the restarts, not listed one by one")
        if rec.event == "reset" and rec.by == "client" and conn.xids:
            self.clients.client_reset(rec.conn)
        if rec.event == "gap" and rec.by == "client" and len(self.lost_requests) < 10_000:
            # client bytes the capture lost, somewhere after this connection's last request we saw
            self.lost_requests.append((conn.last_request_t or conn.opened_t or rec.t, rec.t, server, rec.conn, rec.detail.split(" ", 1)[0]))
        if rec.event == "closed":
            conn.closed_by.add(rec.by)
        if self.compact and (rec.event in ("refused", "reset", "open-at-end") or len(conn.closed_by) == 2):
            del self.conns[rec.conn]  # keep memory bounded by open connections

    def _request(self, rec: R.Request) -> None:
        plain = jsonrpc.plain_request(rec.body) if rec.body else None
        messages: tuple[jsonrpc.RpcMessage, ...]
        if plain is not None:  # the usual body: its message and name, without json.loads
            messages = (plain[0],)
        else:
            messages = jsonrpc.parse(rec.body).messages if rec.body else ()
            if messages and (len(messages) > 1 or messages[0].kind == jsonrpc.INVALID):  # the where-text only when it may be needed
                self._check_valid(messages, f"{rec.xid} ({rec.method} {rec.target}) request body")
        h = _mcp_headers(rec.headers)
        session = h.get("mcp-session-id")
        looks_mcp = bool(messages) or session is not None or rec.method == "GET" and "event-stream" in (h.get("accept") or "")
        server = rec.server or self.conns[rec.conn].server
        name = self.resolver.resolve(rec.target, server, looks_mcp)
        if name is None:
            self.skipped_requests += 1
            return
        version, mcp_method, mcp_name = h.get("mcp-protocol-version"), h.get("mcp-method"), h.get("mcp-name")
        if plain is not None:
            declared, body_name, init_version = "", plain[1], ""  # no _meta, not an initialize
        else:
            declared, body_name, init_version = _body_facts(messages) if messages else ("", "", "")
        ex = Exchange(
            xid=rec.xid,
            conn=rec.conn,
            namespace=name,
            t=rec.t,
            method=rec.method,
            target=rec.target,
            frame=rec.frame,
            t_frame=rec.t_frame,
            server=server,
            session_id=session,
            rpc_methods=[m.method for m in messages if m.method],
            rpc_ids=[m.id for m in messages if m.kind == "request"],
            request_headers=() if self.compact else rec.headers,
            request_body="" if self.compact else rec.body,
            protocol=version or declared or init_version,
            mcp_method=mcp_method or "",
            mcp_name=mcp_name or body_name,
        )
        if mcp_method is not None or mcp_name is not None or declared:
            self.conformance.request(server, rec.t, ex.rpc_methods[0] if ex.rpc_methods else "", mcp_method, mcp_name, body_name, version, declared)
        self.open[rec.xid] = ex
        conn = self.conns[rec.conn]
        conn.xids.append(rec.xid)
        conn.last_request_t = rec.t
        self.clients.request(name, rec.conn, conn.client, rec.method, rec.headers, messages)
        if self.hops.wants(server):
            self.hops.add(server, rec.t, fingerprint(rec.method, rec.target, session, rec.body))
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = NamespaceLifecycle(name=name)
        ns.exchanges.append(ex)

    def _check_valid(self, messages: tuple[jsonrpc.RpcMessage, ...], where: str) -> None:
        """Warn (a bounded number of times) about JSON-RPC that could not be read."""
        for msg in messages:
            if msg.kind == jsonrpc.INVALID:
                self.invalid_jsonrpc += 1
                if self.invalid_jsonrpc <= MAX_INVALID_WARNINGS:
                    self.warnings.append(f"{where}: {msg.reason[:160]}")
                elif self.invalid_jsonrpc == MAX_INVALID_WARNINGS + 1:
                    self.warnings.append("more invalid JSON-RPC messages follow; not all are listed")
                return

    def _response(self, rec: R.Response) -> None:
        ex = self.open.get(rec.xid)
        if ex is None:
            return
        ex.status = rec.status
        ex.t_response = rec.t
        if rec.status < 500:
            self.restarts.good_response(ex.server, rec.t)
        ex.stream = rec.stream
        ex.new_session_id = R.header(rec.headers, "mcp-session-id")
        if ex.new_session_id and ex.new_session_id not in self.minted and len(self.minted) < 100_000:
            self.minted[ex.new_session_id] = rec.t
        if not self.compact:
            ex.response_headers = rec.headers
            ex.response_body = rec.body
        messages: tuple[jsonrpc.RpcMessage, ...] = ()
        if not rec.stream:
            ex.t_end = rec.t_end if rec.t_end is not None else rec.t
            body = rec.body
            if not body or rec.status == 202 or rec.status < 400 and "tools/list" not in ex.rpc_methods and _plain_result(body):
                messages = ()  # a routine answer, as on an SSE stream: below a 400 no error or tool list to learn
            else:
                messages = jsonrpc.parse(body).messages
            self._payload(ex, body, messages)
            if "server/discover" in ex.rpc_methods and 400 <= rec.status < 500 and not _modern_refusal(messages):
                ex.error = PROBE_REJECTED  # a 2026-07-28 probe an older server does not know: the client falls back
            if ex.error == "session-not-found" and ex.session_id and ex.session_id not in self.rejected:
                # Only a session's first rejection says the server lost it then: a client that
                # keeps re-sending a dead id (a 404 loop) is not a new restart at every retry.
                if len(self.rejected) < 100_000:
                    self.rejected.add(ex.session_id)
                self.restarts.session_lost(ex.server, rec.t, self.minted.get(ex.session_id))
            if ex.error == "upstream-unavailable":  # a reverse proxy answering for a server that is down
                self.restarts.refused(ex.server, ex.t, "proxy")
                self.last_refusal = ex.t
        if rec.status >= 400 or (ex.protocol and ex.protocol[:5] not in _SESSION_ERA) or "initialize" in ex.rpc_methods:
            self.conformance.response(ex.server, rec.t, ex.method, ex.rpc_methods, ex.session_id, ex.protocol, rec.status, ex.new_session_id, any(m.kind == "error" for m in messages))

    def _payload(self, ex: Exchange, body: str, messages: tuple[jsonrpc.RpcMessage, ...]) -> None:
        """Learn what a response body or SSE data says: errors, tool counts."""
        error, detail = classify_error(ex.status, body, messages)
        if error and not ex.error:
            ex.error, ex.error_detail = error, detail
        for msg in messages:
            if msg.kind == "response" and "tools/list" in ex.rpc_methods:
                catalog = jsonrpc.tool_catalog(msg.result)
                if catalog is not None:
                    ex.tool_count, ex.tools = len(msg.result["tools"]), catalog

    def _sse(self, rec: R.SseEvent) -> None:
        ex = self.open.get(rec.xid)
        if ex is None:
            return
        data = rec.data
        if rec.event == R.SSE_COMMENT:  # a keep-alive comment: evidence that the stream was alive
            if not self.compact or len(ex.events) < MAX_TICKS_COMPACT:
                ex.events.append(SseTick(t=rec.t, rpc="", data="" if self.compact else data, event=rec.event))
            return
        messages: tuple[jsonrpc.RpcMessage, ...]
        if _plain_result(data) and "tools/list" not in ex.rpc_methods:
            rpc, messages = "response", ()  # the hot path: a routine answer, nothing in it to learn
        elif rpc := jsonrpc.plain_notification(data):
            messages = ()  # e.g. progress: one valid notification, its method is all there is to learn
        else:
            messages = jsonrpc.parse(data).messages if data else ()
            self._check_valid(messages, f"{rec.xid} ({ex.method} {ex.target}) SSE event data")
            rpc = ",".join(m.method or m.kind for m in messages) if messages else ("priming" if rec.id is not None else "")
        if not self.compact or len(ex.events) < MAX_TICKS_COMPACT:
            ex.events.append(SseTick(t=rec.t, rpc=rpc, data="" if self.compact else rec.data, id=rec.id, event=rec.event, retry=rec.retry))
        if rpc == "response" or any(m.kind in ("response", "error") for m in messages):
            if messages:
                self._payload(ex, data, messages)
            if ex.method == "POST" and ex.t_end is None:
                ex.t_end = rec.t  # the answer arrived; the stream may linger

    def _end(self, rec: R.End) -> None:
        ex = self.open.pop(rec.xid, None)
        if ex is None:
            return
        if rec.outcome == R.REFUSED:  # proxy path: the attempt's own time marks the refusal
            self.restarts.refused(ex.server, ex.t)
            self.last_refusal = ex.t
        ex.outcome = rec.outcome
        if rec.outcome == R.COMPLETE or ex.t_end is None:
            ex.t_end = rec.t
        if rec.outcome != R.COMPLETE and ex.status is None and not ex.error:
            ex.error = rec.outcome
        if self.compact:
            self._merge_routine(ex)

    def _merge_routine(self, ex: Exchange) -> None:
        """Fold a routine successful call into the identical one just before it (compact mode).

        Whether an exchange is routine is decided once, at its end (it cannot change
        after that), and remembered in ``_routine`` for the exchanges that stay.
        """
        if not _routine(ex):
            return
        exchanges = self.namespaces[ex.namespace].exchanges
        prev = exchanges[-2] if len(exchanges) > 1 and exchanges[-1] is ex else None
        if prev is not None and prev.xid in self._routine and prev.rpc_methods == ex.rpc_methods and prev.session_id == ex.session_id:
            if self.last_refusal is None or self.last_refusal < (prev.t_response or prev.t):  # never merge across a downtime
                prev.count += ex.count
                prev.t_response, prev.t_end = ex.t_response, ex.t_end
                exchanges.pop()
                return
        self._routine.add(ex.xid)

    # -- results --------------------------------------------------------------
    def finish(self) -> None:
        for ex in self.open.values():  # exchanges the records never ended (e.g. killed proxy run)
            ex.outcome = ex.outcome or R.OPEN_AT_END
            if ex.status is None and not ex.error:
                ex.error = R.OPEN_AT_END
        self.open.clear()
        self._keep_server_hops()
        for ns in self.namespaces.values():
            ns.exchanges.sort(key=lambda e: e.t)
            ns.generations = build_generations(ns.exchanges)

    def _keep_server_hops(self) -> None:
        """A capture of both hops of a proxy: set the client hop aside (hops.py says why)."""
        relays = self.hops.relays()
        for client_hop, server_hop in relays:
            self.set_aside.append(client_hop)
            self.warnings.append(f"the capture holds both hops of a proxy: requests to {client_hop} are relayed to {server_hop}; the server hop {server_hop} is analysed (use --port to pick the other)")
        if not relays:
            return
        aside = set(self.set_aside)
        for name in list(self.namespaces):
            ns = self.namespaces[name]
            ns.exchanges = [ex for ex in ns.exchanges if ex.server not in aside]
            if not ns.exchanges:
                del self.namespaces[name]
        self.restarts.forget(aside)
        self.unattributed = [u for u in self.unattributed if u["server"] not in aside]


_SESSION_ERA: Final = ("2024-", "2025-")  # protocol versions of the session transport: nothing to check on a 2xx
_MCP_HEADERS: Final = frozenset({"mcp-session-id", "accept", "mcp-protocol-version", "mcp-method", "mcp-name"})


def _mcp_headers(headers: R.Headers) -> dict[str, str]:
    """The request headers the analysis reads, by lower-case name (the first of each), in one pass."""
    out: dict[str, str] = {}
    for key, value in headers:
        if key in _MCP_HEADERS:  # written in lower case (most clients): no new string
            low = key
        elif key[:1] in "mMaA" and not key.islower():  # the names wanted all start with m or a
            low = key.lower()
            if low not in _MCP_HEADERS:
                continue
        else:
            continue
        if low not in out:
            out[low] = value
    return out


def _body_facts(messages: tuple[jsonrpc.RpcMessage, ...]) -> tuple[str, str, str]:
    """(version in params._meta, tool/prompt name or resource URI, initialize's protocolVersion) of a
    request body, in one look at its first message (the one of every real request)."""
    msg = messages[0] if len(messages) == 1 else None
    if msg is None:
        return meta_version(messages), rpc_name(messages), ""
    params = msg.params
    if type(params) is not dict:
        return "", "", ""
    meta = params.get("_meta")
    declared = meta_version(messages) if type(meta) is dict else ""
    name = rpc_name(messages) if msg.method in ("tools/call", "prompts/get", "resources/read") else ""
    init = params["protocolVersion"][:40] if msg.method == "initialize" and isinstance(params.get("protocolVersion"), str) else ""
    return declared, name, init


def _modern_refusal(messages: tuple[jsonrpc.RpcMessage, ...]) -> bool:
    """-32022 naming only newer versions: a modern server refusing the version, not an old one."""
    return any(m.kind == "error" and m.error_code == -32022 for m in messages)


def _plain_result(data: str) -> bool:
    """A single JSON-RPC result with no error or method in it: parsing it would teach nothing
    (outside a 4xx/5xx answer or a tools/list).

    Checked by substring so the hot path of huge captures skips ``json.loads``.
    """
    return data[:1] == "{" and data[-1:] == "}" and '"result"' in data and '"error"' not in data and '"method"' not in data


def _routine(ex: Exchange) -> bool:
    return ex.method == "POST" and ex.outcome == R.COMPLETE and ex.ok and answered(ex) and bool(ex.rpc_methods) and not SETUP_METHODS.intersection(ex.rpc_methods) and "tools/list" not in ex.rpc_methods


def answered(ex: Exchange) -> bool:
    """A POST request got its JSON-RPC answer (or a non-2xx status), a GET got its status."""
    if ex.status is None:
        return False
    if ex.method != "POST" or not ex.rpc_ids or ex.status >= 300:
        return True
    if not ex.stream or ex.error or ex.tool_count is not None:
        return True
    for tick in ex.events:  # a loop, not any(): this runs for every exchange of a huge capture
        if tick.rpc == "response" or tick.rpc == "error":
            return True
    return False


def build_generations(exchanges: list[Exchange]) -> list[Generation]:
    """Split a namespace's exchanges into MCP sessions, one per successful initialize."""
    gens: list[Generation] = []
    by_sid: dict[str, Generation] = {}
    for ex in exchanges:
        gen: Generation | None = None
        if "initialize" in ex.rpc_methods and ex.ok and (ex.new_session_id or not ex.session_id):
            gen = Generation(index=len(gens) + 1, session_id=ex.new_session_id, t_start=ex.t, initialize_xid=ex.xid)
            gens.append(gen)
            if ex.new_session_id:
                by_sid[ex.new_session_id] = gen
        elif ex.session_id is not None:
            gen = by_sid.get(ex.session_id)
        elif gens and gens[-1].session_id is None:
            gen = gens[-1]  # a stateless server: no session ids at all
        if gen is None:
            continue
        ex.generation = gen.index
        gen.t_last = max(gen.t_last or ex.t, ex.t_end or ex.t)
        if "notifications/initialized" in ex.rpc_methods and gen.initialized_xid is None:
            gen.initialized_xid, gen.initialized_status = ex.xid, ex.status
        elif "tools/list" in ex.rpc_methods and ex.ok and gen.tools_list_xid is None:
            gen.tools_list_xid, gen.tool_count = ex.xid, ex.tool_count
        elif ex.method == "GET" and ex.status == 200:
            gen.streams.append((ex.t_response or ex.t, ex.t_end, ex.xid))
        if ex.ok and ex.method == "POST" and not SETUP_METHODS.intersection(ex.rpc_methods) and gen.first_ok_call_t is None and gen.tools_list_xid:
            gen.first_ok_call_t = ex.t_end or ex.t_response
    return gens


def connection_summary(builder: LifecycleBuilder) -> dict[str, dict[str, Any]]:
    return {cid: {"client": c.client, "server": c.server, "events": [list(e) for e in c.events], "exchanges": len(c.xids)} for cid, c in builder.conns.items()}
