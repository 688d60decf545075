"""A real MCP lab on loopback: SDK servers (several namespaces on one port) and SDK clients.

Used by the capture tests (and reusable by the demo): every namespace is its own
``FastMCP`` server from the official ``mcp`` SDK with stateful sessions, mounted at
``/<ns>/mcp`` on one Starlette app served by uvicorn in a background thread.
``restart()`` builds fresh server objects on the same port, so old session ids are
unknown afterwards (404 "Session not found"), as with a real restarted process.

Tools of every namespace:
  ``echo(text)``          returns "<ns>:<text>"
  ``hold(message)``       sends ``message`` as a log notification on the request's SSE
                          stream, then waits (bounded) until ``LabServer.gate`` is set;
                          returns "released" or "timeout". Proves that a notification
                          reached the client while the tool was still running.
  ``tick(count, every)``  sends ``count`` log notifications ``every`` seconds apart,
                          each carrying ``time.time()`` at sending; returns "done".

Run standalone (subprocess use): ``python tests/mcp_lab.py --port 5076 --ns tasks --ns sprint``
serves until SIGTERM/Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import LoggingMessageNotificationParams, TextContent
from starlette.applications import Starlette

from mcpsniff.demo.server import mount_servers

HOST = "127.0.0.1"
HOLD_TIMEOUT = 20.0  # s a ``hold`` tool waits for the gate before giving up


def raw_sockets_refused() -> bool:
    """True where a live capture cannot run (no root or CAP_NET_RAW): its tests are skipped then."""
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW):
            return False
    except PermissionError:
        return True


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_port(port: int, host: str = HOST, timeout: float = 10.0, open_: bool = True) -> None:
    """Wait (bounded) until ``host:port`` accepts connections (or refuses them if not ``open_``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                accepting = True
        except OSError:
            accepting = False
        if accepting == open_:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} still {'closed' if open_ else 'open'} after {timeout}s")


def build_app(namespaces: Iterable[str], gate: threading.Event, host: str = HOST, without: frozenset[str] = frozenset()) -> Starlette:
    """One Starlette app with a stateful FastMCP server mounted per namespace (``without``: tools left out)."""
    return mount_servers({ns: _namespace_server(ns, gate, host, without) for ns in namespaces})


def _namespace_server(ns: str, gate: threading.Event, host: str, without: frozenset[str] = frozenset()) -> FastMCP:
    srv = FastMCP(ns, host=host, stateless_http=False, log_level="WARNING")

    @srv.tool()
    async def echo(text: str) -> str:
        """Echo the text back, prefixed with the namespace."""
        return f"{ns}:{text}"

    @srv.tool()
    async def hold(message: str, ctx: Context) -> str:
        """Send a log notification, then wait until the lab's gate opens."""
        await ctx.info(message)
        deadline = time.monotonic() + HOLD_TIMEOUT
        while not gate.is_set():
            if time.monotonic() > deadline:
                return "timeout"
            await asyncio.sleep(0.01)
        return "released"

    @srv.tool()
    async def tick(count: int, every: float, ctx: Context) -> str:
        """Send ``count`` log notifications carrying their send time."""
        for i in range(count):
            if i:
                await asyncio.sleep(every)
            await ctx.info(f"{time.time():.6f}")
        return "done"

    for name in without:
        srv.remove_tool(name)
    return srv


class LabServer:
    """MCP servers for ``namespaces`` on one port, in a uvicorn thread; restartable.

    ``with LabServer(("tasks", "sprint")) as lab: lab.url("tasks")``
    """

    def __init__(self, namespaces: Iterable[str] = ("tasks", "sprint"), port: int = 0, host: str = HOST) -> None:
        self.namespaces = tuple(namespaces)
        self.without: frozenset[str] = frozenset()  # tools the next start leaves out (a server upgraded across a restart)
        self.host = host
        self.port = port or free_port(host)
        self.gate = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, ns: str, base: str | None = None) -> str:
        """Endpoint of a namespace, on this server or on ``base`` (e.g. a proxy in front)."""
        return f"{base or self.base_url}/{ns}/mcp"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LabServer:
        """Serve fresh server objects (no sessions) and wait until the port accepts."""
        if self.running:
            return self
        config = uvicorn.Config(
            build_app(self.namespaces, self.gate, self.host, self.without),
            host=self.host,
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"mcp-lab:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"lab server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop like a SIGTERM'd uvicorn: close streams, forget sessions, free the port."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._server = self._thread = None
        wait_port(self.port, self.host, open_=False)

    def restart(self, down: float = 0.0, without: Iterable[str] = ()) -> None:
        self.stop()
        time.sleep(down)
        self.without = frozenset(without)
        self.start()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- clients -------------------------------------------------------------------------

LogCallback = Callable[[LoggingMessageNotificationParams], Awaitable[None]]


@contextlib.asynccontextmanager
async def lab_session(
    url: str,
    on_log: LogCallback | None = None,
    timeout: float = 15.0,
    session_id: str | None = None,
) -> AsyncIterator[ClientSession]:
    """An SDK ``ClientSession`` on ``url`` (streamable HTTP, real httpx client).

    Normally initialized. With ``session_id`` it is NOT initialized and every request
    carries that (old) id: the buggy client that resumes a dead session after a restart.
    ``timeout`` bounds every request, so a broken run fails instead of hanging.
    """
    headers = {"mcp-session-id": session_id} if session_id else None
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), headers=headers) as http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=session_id is None) as (read, write, get_id):
            async with ClientSession(read, write, logging_callback=on_log) as session:
                if session_id is None:
                    await asyncio.wait_for(session.initialize(), timeout)
                session.lab_session_id = get_id() or session_id  # type: ignore[attr-defined]
                yield session


def text_of(result: Any) -> str:
    """The text of a CallToolResult (joined text contents)."""
    return "".join(c.text for c in result.content if isinstance(c, TextContent))


async def call_text(session: ClientSession, tool: str, timeout: float = 15.0, **args: Any) -> str:
    """Call a tool and return its text; raises RuntimeError on a tool error."""
    result = await asyncio.wait_for(session.call_tool(tool, args), timeout)
    if result.isError:
        raise RuntimeError(f"{tool} failed: {text_of(result)}")
    return text_of(result)


@dataclass
class ClientLog:
    """What a lab client saw: (time, session id) of successful calls, and errors."""

    ok: list[tuple[float, str]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)

    def ok_since(self, t: float) -> int:
        return sum(1 for when, _ in self.ok if when >= t)

    def errors_since(self, t: float) -> int:
        return sum(1 for when, _ in self.errors if when >= t)


async def healthy_client(url: str, stop: asyncio.Event, log: ClientLog, every: float = 0.3, retry_delay: float = 0.5) -> None:
    """Calls ``echo`` every ``every`` s; on any error starts over with a fresh session
    (initialize, tools/list), like a host that reconnects properly."""
    while not stop.is_set():
        try:
            async with lab_session(url, timeout=5) as session:
                await asyncio.wait_for(session.list_tools(), 5)
                while not stop.is_set():
                    await call_text(session, "echo", timeout=5, text="ping")
                    log.ok.append((time.time(), session.lab_session_id))  # type: ignore[attr-defined]
                    await _sleep_or_stop(stop, every)
        except Exception as exc:  # noqa: BLE001 - 502s, 404s, resets: all mean "start over"
            log.errors.append((time.time(), _describe(exc)))
            await _sleep_or_stop(stop, retry_delay)


async def stale_client(url: str, stop: asyncio.Event, log: ClientLog, every: float = 0.3) -> None:
    """Like ``healthy_client`` until its first error; from then on it keeps calling
    with the old session id and never initializes again (stale-session-loop)."""
    old_id: str | None = None
    while not stop.is_set():
        try:
            async with lab_session(url, timeout=5, session_id=old_id) as session:
                if old_id is None:
                    await asyncio.wait_for(session.list_tools(), 5)
                while not stop.is_set():
                    await call_text(session, "echo", timeout=5, text="ping")
                    log.ok.append((time.time(), session.lab_session_id))  # type: ignore[attr-defined]
                    old_id = old_id or session.lab_session_id  # type: ignore[attr-defined]
                    await _sleep_or_stop(stop, every)
        except Exception as exc:  # noqa: BLE001
            log.errors.append((time.time(), _describe(exc)))
            await _sleep_or_stop(stop, every)


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:200]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Serve MCP lab namespaces on one port until SIGTERM/Ctrl-C.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ns", action="append", default=[], help="namespace (repeatable; default tasks, sprint)")
    args = parser.parse_args()
    app = build_app(args.ns or ["tasks", "sprint"], threading.Event())
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
