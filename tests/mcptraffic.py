"""MCP streamable-HTTP traffic on top of tests/pcapbuilder.py: a server and its clients.

Copies what the real captures in /work/shared/captures show, byte for byte where it
matters: uvicorn + the official Python SDK server (headers, SSE chunks, 202, 404 bodies,
409, sse-starlette pings), Node fetch clients (one keep-alive pool shared by every namespace
of a host) and httpx clients (a connection per request, reset after the answer).  Client
methods return ``Sent`` records with the frame number of the request they wrote.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pcapbuilder import Capture, Process, Tcp

NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")
PROTOCOL = "2025-11-25"
PROXY_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}


# --------------------------------------------------------------------------- HTTP bytes


def http_head(start_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [start_line, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def sse_event(data: str, event: str | None = "message", id: str | None = None, retry: int | None = None) -> bytes:
    """One SSE event as sse-starlette encodes it (CRLF lines, blank line at the end)."""
    out = ""
    if id is not None:
        out += f"id: {id}\r\n"
    if event is not None:
        out += f"event: {event}\r\n"
    for line in data.split("\n"):
        out += f"data: {line}\r\n"
    if retry is not None:
        out += f"retry: {retry}\r\n"
    return (out + "\r\n").encode()


def compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class Sent:
    """A request the builder wrote (or tried to), and what came of it."""

    ns: str
    method: str
    target: str
    rpc_method: str
    frame: int  # first segment of the request, or the SYN of a refused connection
    t: float
    result: str = ""  # "200", "202", "404", ..., "refused", "reset", "no response", "closed"
    session_id: str | None = None  # id the response assigned
    conn: Tcp | None = None

    @property
    def ok(self) -> bool:
        return self.result.startswith("2")


# --------------------------------------------------------------------------- server


def _tool_defs(ns: str, count: int) -> list[dict[str, object]]:
    def tool(name: str, description: str, props: dict[str, object]) -> dict[str, object]:
        out_schema = {"properties": {"result": {"title": "Result", "type": "string"}}, "required": ["result"], "title": f"{name}Output", "type": "object"}
        return {"name": name, "description": description, "inputSchema": {"properties": props, "title": f"{name}Arguments", "type": "object"}, "outputSchema": out_schema}

    tools = [
        tool("ping", f"Cheap liveness call for namespace {ns}; returns the server boot id.", {}),
        tool("slow_tool", "A tool that is slow (or hangs forever when the server runs with --hang NS:slow_tool).", {"seconds": {"default": 0.2, "title": "Seconds", "type": "number"}}),
    ]
    for verb in ("list", "add", "complete", "delete", "get", "update", "archive")[: max(count - 2, 0)]:
        noun = ns.split("-")[0].rstrip("s")
        tools.append(tool(f"{verb}_{noun}", f"{ns}: {verb} {noun}", {"arg": {"default": "", "title": "Arg", "type": "string"}}))
    return tools


class Server:
    """The official Python SDK server (stateful, uvicorn) serving several namespaces on one port."""

    def __init__(self, cap: Capture, port: int = 18201, namespaces: Iterable[str] = NAMESPACES, *, json_response: Iterable[str] = (), tools: int = 7, ping_interval: float = 15.0, down_status: int | None = None) -> None:
        self.cap, self.port = cap, port
        self.up = True
        self.mounted = set(namespaces)
        self.json_response = set(json_response)
        self.tool_count = tools
        self.ping_interval = ping_interval
        self.down_status = down_status  # 502/503: a reverse proxy answers while the app is down
        self.stream_lifetime: dict[str, float] = {}  # ns -> seconds before a GET stream is ended cleanly
        self.stream_retry: dict[str, int] = {}  # ns -> "retry:" (ms) of a priming event opening each GET stream
        self.hang: set[tuple[str, str]] = set()  # (ns, tool) calls that never get a response
        self.sessions: dict[str, str] = {}  # session id -> ns
        self.conns: list[Tcp] = []
        self._assigned: str | None = None
        self._boot()

    def _boot(self) -> None:
        self.boot = f"{self.cap.rng.getrandbits(32):08x}"
        self.pid = self.cap.rng.randint(20000, 40000)
        self.calls: dict[str, int] = {}
        self.sessions.clear()

    # lifecycle
    def stop(self, unnoticed: Iterable[Tcp] = ()) -> None:
        """SIGTERM: uvicorn closes idle keep-alive connections, then the open streams (FIN).

        Behind a proxy (``down_status``) the client's idle connections to the proxy stay open.
        ``unnoticed``: connections whose FIN the client only ACKs (they stay in its pool).
        """
        unnoticed = set(map(id, unnoticed))
        idle = [] if self.down_status else [c for c in self.conns if c.server_open and not c.busy_streaming]
        for conn in idle:
            conn.close(by_client=False, peer_closes=id(conn) not in unnoticed)
            self.cap.advance(self.cap.rng.uniform(0.0001, 0.0005))
        self.cap.advance(0.11)
        for conn in [c for c in self.conns if c.server_open and c.busy_streaming]:
            conn.close(by_client=False)
            self.cap.advance(self.cap.rng.uniform(0.00005, 0.0002))
        self.conns = [c for c in self.conns if c.server_open]
        self.up = False

    def start(self) -> None:
        """The new process listens: every old session id is now unknown."""
        self._boot()
        self.up = True

    def accepts(self) -> bool:
        return self.up or self.down_status is not None

    # answering
    def _date(self) -> str:
        return email.utils.formatdate(self.cap.now, usegmt=True)

    def _send_json(self, conn: Tcp, status: int, reason: str, body: str, sid: str | None = None) -> str:
        headers = [("date", self._date()), ("server", "uvicorn")]
        if sid is None:
            headers += [("content-length", str(len(body))), ("content-type", "application/json")]
        else:
            headers += [("content-type", "application/json"), ("mcp-session-id", sid), ("content-length", str(len(body)))]
        conn.send(False, http_head(f"HTTP/1.1 {status} {reason}", headers))
        if body:
            conn.send(False, body.encode())
        return str(status)

    def _sse_head(self, conn: Tcp, sid: str) -> None:
        headers = [("date", self._date()), ("server", "uvicorn"), ("cache-control", "no-cache, no-transform"), ("connection", "keep-alive"), ("content-type", "text/event-stream"), ("mcp-session-id", sid), ("x-accel-buffering", "no"), ("Transfer-Encoding", "chunked")]
        conn.send(False, http_head("HTTP/1.1 200 OK", headers))

    def _error(self, message: str, code: int = -32600) -> str:
        return compact({"jsonrpc": "2.0", "id": "server-error", "error": {"code": code, "message": message}})

    def handle(self, conn: Tcp, method: str, target: str, headers: dict[str, str], rpc: dict[str, object] | None) -> tuple[str, str | None]:
        """Write the server's answer to one request on ``conn``: (result, session id it assigned)."""
        result = self._answer(conn, method, target, headers, rpc)
        return result, self._assigned

    def _answer(self, conn: Tcp, method: str, target: str, headers: dict[str, str], rpc: dict[str, object] | None) -> str:
        self._assigned = None
        self.cap.advance(self.cap.rng.uniform(0.0005, 0.004))
        if not self.up:  # the reverse proxy answers for the app (nginx's own error page)
            status = f"{self.down_status} {PROXY_REASONS[self.down_status or 502]}"
            html = f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n<center><h1>{status}</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
            headers = [("Server", "nginx/1.24.0"), ("Date", self._date()), ("Content-Type", "text/html"), ("Content-Length", str(len(html))), ("Connection", "keep-alive")]
            conn.send(False, http_head(f"HTTP/1.1 {status}", headers) + html.encode())
            return str(self.down_status)
        ns = target.strip("/").split("/")[0]
        if ns not in self.mounted or target != f"/{ns}/mcp":
            return self._send_json(conn, 404, "Not Found", '{"detail":"Not Found"}')
        sid = headers.get("mcp-session-id")
        if sid is not None and self.sessions.get(sid) != ns:
            return self._send_json(conn, 404, "Not Found", self._error("Session not found"))
        rpc_method = str(rpc.get("method", "")) if rpc else ""
        if sid is None:
            if method != "POST" or rpc_method != "initialize":
                return self._send_json(conn, 400, "Bad Request", self._error("Bad Request: Missing session ID"))
            sid = self._assigned = f"{self.cap.rng.getrandbits(128):032x}"
            self.sessions[sid] = ns
        if method == "GET":
            return self._open_stream(conn, ns, sid)
        if method == "DELETE":
            del self.sessions[sid]
            return self._send_json(conn, 200, "OK", "null", sid)
        assert rpc is not None
        if "id" not in rpc:  # notifications only
            return self._send_json(conn, 202, "Accepted", "", sid)
        self.cap.advance(self.cap.rng.uniform(0.002, 0.02))
        result = self._result(ns, rpc)
        if result is None:  # a hung tool: the stream opens, the response never comes
            self._sse_head(conn, sid)
            conn.busy_streaming = True
            return "no response"
        body = compact({"jsonrpc": "2.0", "id": rpc["id"], "result": result})
        if ns in self.json_response:
            return self._send_json(conn, 200, "OK", body, sid)
        self._sse_head(conn, sid)
        conn.send(False, chunk(sse_event(body)))
        conn.send(False, LAST_CHUNK)
        return "200"

    def _result(self, ns: str, rpc: dict[str, object]) -> dict[str, object] | None:
        method = rpc["method"]
        if method == "initialize":
            params = rpc.get("params") or {}
            assert isinstance(params, dict)
            caps = {"experimental": {}, "prompts": {"listChanged": False}, "resources": {"subscribe": False, "listChanged": False}, "tools": {"listChanged": False}}
            return {"protocolVersion": params.get("protocolVersion", PROTOCOL), "capabilities": caps, "serverInfo": {"name": f"lab-{ns}", "version": "1.30.0"}}
        if method == "tools/list":
            return {"tools": _tool_defs(ns, self.tool_count)}
        if method == "tools/call":
            params = rpc.get("params") or {}
            assert isinstance(params, dict)
            if (ns, params.get("name")) in self.hang:
                return None
            self.calls[ns] = self.calls.get(ns, 0) + 1
            text = json.dumps({"ns": ns, "boot": self.boot, "pid": self.pid, "n": self.calls[ns]})
            return {"content": [{"type": "text", "text": text}], "structuredContent": {"result": text}, "isError": False}
        return {}

    def _open_stream(self, conn: Tcp, ns: str, sid: str) -> str:
        held = [c for c in self.conns if c.stream_of == sid and c.server_open and c.busy_streaming]
        if held:
            return self._send_json(conn, 409, "Conflict", self._error("Conflict: Only one SSE stream is allowed per session"), sid)
        self._sse_head(conn, sid)
        conn.busy_streaming = True
        conn.stream_of = sid
        if ns in self.stream_retry:  # 2025-11-25 priming event: an id, empty data, retry
            conn.last_event_id = f"{sid[:8]}-{self.cap.rng.getrandbits(16)}"
            conn.send(False, chunk(sse_event("", event=None, id=conn.last_event_id, retry=self.stream_retry[ns])))
        self.cap.spawn(self._stream_keeper(conn, ns))
        return "200"

    def _stream_keeper(self, conn: Tcp, ns: str) -> Process:
        """sse-starlette pings every 15 s; a configured lifetime ends the stream cleanly."""
        opened, last_ping = self.cap.now, self.cap.now
        end = self.stream_lifetime.get(ns)
        while True:
            next_ping = last_ping + self.ping_interval
            if end is not None and opened + end <= next_ping:
                yield opened + end - self.cap.now
                if conn.busy_streaming and conn.server_open:
                    conn.send(False, LAST_CHUNK)
                    conn.busy_streaming = False
                    conn.stream_of = None
                    conn.idle, conn.idle_since = True, self.cap.now
                return
            yield next_ping - self.cap.now
            last_ping = self.cap.now
            if not (conn.busy_streaming and conn.server_open):
                return
            stamp = datetime.fromtimestamp(self.cap.now, UTC)
            conn.send(False, chunk(f": ping - {stamp}\r\n\r\n".encode()))

    def notify(self, ns: str, method: str, params: dict[str, object]) -> int | None:
        """Send a server notification on every open GET stream of ``ns``; returns the first frame."""
        first = None
        for conn in self.conns:
            if conn.busy_streaming and conn.server_open and conn.stream_of and self.sessions.get(conn.stream_of) == ns:
                frame = conn.send(False, chunk(sse_event(compact({"method": method, "params": params, "jsonrpc": "2.0"}))))
                first = first or frame
        return first


# --------------------------------------------------------------------------- clients


class NodePool:
    """Node fetch (undici) keep-alive pool for one origin, shared by every namespace of a host."""

    def __init__(self, cap: Capture, server: Server, keep_alive: float = 4.0) -> None:
        self.cap, self.server, self.keep_alive = cap, server, keep_alive
        self.conns: list[Tcp] = []

    def acquire(self) -> Tcp | int:
        """The first idle connection the client believes open, else a new one (or the refused SYN's frame)."""
        self.conns = [c for c in self.conns if c.client_open]
        for conn in self.conns:
            if conn.idle:
                conn.idle = False
                return conn
        if not self.server.accepts():
            return self.cap.refused(self.server.port)
        conn = self.cap.connect(self.server.port)
        self.server.conns.append(conn)
        self.conns.append(conn)
        return conn

    def release(self, conn: Tcp) -> None:
        if not conn.alive:
            return
        conn.idle, conn.idle_since = True, self.cap.now
        self.cap.spawn(self._expire(conn, conn.idle_since))

    def _expire(self, conn: Tcp, since: float) -> Process:
        yield self.keep_alive
        if conn.idle and conn.idle_since == since and conn.alive:
            conn.close(by_client=True)


class Client:
    """One namespace's MCP client: ``style`` "node" (TS SDK over fetch) or "httpx" (Python SDK)."""

    def __init__(self, cap: Capture, server: Server, ns: str, *, style: str = "node", pool: NodePool | None = None) -> None:
        self.cap, self.server, self.ns, self.style = cap, server, ns, style
        self.pool = pool if pool is not None else (NodePool(cap, server) if style == "node" else None)
        self.session_id: str | None = None
        self.protocol: str | None = None
        self.next_id = 0
        self.stream: Tcp | None = None
        self.sent: list[Sent] = []

    @property
    def target(self) -> str:
        return f"/{self.ns}/mcp"

    @property
    def stream_open(self) -> bool:
        return self.stream is not None and self.stream.busy_streaming and self.stream.alive

    def request_headers(self, method: str, body: bytes, session: bool = True, last_event_id: str | None = None) -> list[tuple[str, str]]:
        host = ("host", f"127.0.0.1:{self.server.port}")
        mcp = []
        if session and self.session_id:
            mcp.append(("mcp-session-id", self.session_id))
            if self.protocol:
                mcp.append(("mcp-protocol-version", self.protocol))
        if last_event_id is not None:
            mcp.append(("last-event-id", last_event_id))
        if self.style == "node":
            tail = [("accept-language", "*"), ("sec-fetch-mode", "cors"), ("user-agent", "node"), ("accept-encoding", "gzip, deflate")]
            if method == "GET":
                return [host, ("connection", "keep-alive"), *mcp, ("Accept", "text/event-stream"), *tail]
            return [host, ("connection", "keep-alive"), *mcp, ("content-type", "application/json"), ("accept", "application/json, text/event-stream"), *tail, ("content-length", str(len(body)))]
        head = [("Host", host[1]), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"), ("User-Agent", "python-httpx/0.28.1")]
        accept = [("accept", "application/json, text/event-stream"), ("content-type", "application/json")]
        if method == "GET":
            return [*head, ("Cache-Control", "no-store"), *accept, *mcp]
        return [*head, *accept, *mcp, ("Content-Length", str(len(body)))]

    def _acquire(self) -> Tcp | int:
        if self.pool is not None:
            return self.pool.acquire()
        if not self.server.accepts():
            return self.cap.refused(self.server.port)
        conn = self.cap.connect(self.server.port)
        self.server.conns.append(conn)
        return conn

    def request(self, method: str, rpc: dict[str, object] | None = None, *, session: bool = True, last_event_id: str | None = None) -> Sent:
        """One HTTP exchange as this client writes it; the server answers at once."""
        rpc_method = str(rpc["method"]) if rpc else ""
        conn = self._acquire()
        if isinstance(conn, int):
            return self._record(Sent(self.ns, method, self.target, rpc_method, conn, self.cap.now, "refused"))
        body = compact(rpc).encode() if rpc is not None else b""
        headers = self.request_headers(method, body, session, last_event_id)
        head = http_head(f"{method} {self.target} HTTP/1.1", headers)
        t = self.cap.now
        gone = not conn.server_open  # the server side is gone: its kernel answers the data with RST
        if self.style == "node":
            frame = conn.send(True, head + body, acked=not gone)
        else:  # httpx writes the head and the body separately
            frame = conn.send(True, head, acked=not gone)
            if body and not gone:
                conn.send(True, body)
        sent = Sent(self.ns, method, self.target, rpc_method, frame, t, conn=conn)
        if gone:
            self.cap.advance(0.00003)
            conn.reset(by_client=False, flags="R", opts="", win=0)
            sent.result = "reset"
            return self._record(sent)
        sent.result, sent.session_id = self.server.handle(conn, method, self.target, {k.lower(): v for k, v in headers}, rpc)
        if conn.busy_streaming:
            if method == "GET":
                self.stream = conn
        elif self.pool is not None:
            self.pool.release(conn)
        else:
            self.cap.advance(self.cap.rng.uniform(0.0003, 0.004))
            conn.reset(by_client=True)
        return self._record(sent)

    def _record(self, sent: Sent) -> Sent:
        self.sent.append(sent)
        return sent

    def _rpc(self, method: str, params: dict[str, object] | None = None, notification: bool = False) -> dict[str, object]:
        msg: dict[str, object] = {"method": method}
        if params is not None:
            msg["params"] = params
        msg["jsonrpc"] = "2.0"
        if not notification:
            msg["id"] = self.next_id
            self.next_id += 1
        return msg

    # MCP steps
    def initialize(self, *, stale_header: bool = False) -> Sent:
        """POST initialize; a fresh one carries no session id, ``stale_header`` keeps the old one."""
        if not stale_header:  # a fresh transport: no session, request ids from 0
            self.session_id = self.protocol = None
            self.next_id = 0
        name = "lab-ts-client" if self.style == "node" else "mcp"
        sent = self.request("POST", self._rpc("initialize", {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": name, "version": "0.1.0"}}), session=stale_header)
        if sent.session_id:
            self.session_id, self.protocol = sent.session_id, PROTOCOL
        return sent

    def initialized(self) -> Sent:
        return self.request("POST", self._rpc("notifications/initialized", notification=True))

    def open_stream(self, last_event_id: str | None = None) -> Sent:
        return self.request("GET", last_event_id=last_event_id)

    def list_tools(self) -> Sent:
        return self.request("POST", self._rpc("tools/list"))

    def call(self, tool: str = "ping", arguments: dict[str, object] | None = None) -> Sent:
        return self.request("POST", self._rpc("tools/call", {"name": tool, "arguments": arguments or {}}))

    def setup(self, *, stream: bool = True) -> list[Sent]:
        """initialize -> initialized -> GET stream -> tools/list, stopping at the first failure."""
        steps: list[Callable[[], Sent]] = [self.initialize, self.initialized, *([self.open_stream] if stream else []), self.list_tools]
        done = []
        for step in steps:
            done.append(step())
            if not done[-1].ok:
                break
            self.cap.advance(self.cap.rng.uniform(0.001, 0.004))
        return done

    def drop_stream(self) -> None:
        """The client aborts its GET stream (RST), e.g. a fetch AbortController."""
        if self.stream is not None and self.stream.alive:
            self.stream.reset(by_client=True)
        self.stream = None
