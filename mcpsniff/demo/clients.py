"""The demo's MCP clients: one official-SDK client per namespace, each with a reconnect policy.

``python -m mcpsniff.demo.clients --base http://127.0.0.1:5077 --policy sprint=stale
--log clients.jsonl`` connects to every namespace, calls a tool about every 700 ms,
and on errors reconnects the way its policy says, until SIGTERM/Ctrl-C.  It writes
its own JSON-lines log (what the client saw: connects, calls, errors, give-ups;
the same shape as the shared real captures' ``client.log``), which the demo uses
as ground truth for the verdicts mcpsniff derives from the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from . import NAMESPACES

GetSessionId = Callable[[], str | None]
CALL_INTERVAL = 0.7  # s between tool calls
REQUEST_TIMEOUT = 3.0  # s bound on every request: a call cut by the restart hangs in the SDK until then


@dataclass(frozen=True)
class Policy:
    """How a client reacts to an error (refused/502, 404 "Session not found", timeout...)."""

    name: str
    delays: tuple[float, ...]  # wait before reconnect attempt n (1-based: delays[n-1])
    forever: bool = False  # after the schedule, keep retrying with the last delay
    reinitialize: bool = True  # False: resume the old session id, never send initialize
    relist: bool = True  # call tools/list in every new session (False: keep the old catalogue)
    calls: bool = True  # False: connect, list the tools once, then no tool calls at all (idle)
    description: str = ""


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("healthy", (1, 2, 4, 8, 16), description="fresh transport + initialize, backoff 1,2,4,8,16 s (like Claude Code)"),
        Policy("stale", (1,), forever=True, reinitialize=False, description="keeps resuming the old session id without initialize (404 loop)"),
        Policy("give-up", (1, 1), description="two tries 1 s apart, then gives up (while the server is still down)"),
        Policy("no-relist", (1, 2, 4, 8, 16), relist=False, description="re-initializes but never calls tools/list again (dead catalogue)"),
        Policy("idle", (), calls=False, description="connects and lists its tools once, then makes no calls: only the SDK's own GET-stream retries run"),
    )
}


class EventLog:
    """JSON lines ``{"t", "ns", "event", "detail"}``, flushed per line (a killed run stays readable)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, ns: str, event: str, **detail: Any) -> None:
        line = {"t": round(time.time(), 6), "ns": ns, "event": event, "detail": detail}
        self._stream.write(json.dumps(line, default=str) + "\n")
        self._stream.flush()


class SdkLogBridge(logging.Handler):
    """The SDK transport's own GET-stream log records as ``sdk_log`` events of the namespace.

    The Python SDK retries its GET stream silently (``GET stream error: ...``,
    ``GET stream disconnected, reconnecting in 1000ms...``, ``... max reconnection
    attempts (2) exceeded``, all at DEBUG/INFO); this makes them part of the client's
    own log, like the TypeScript host's ``sdk_error`` lines.  The namespace comes from
    the asyncio task that logged (every namespace runs in its own task group).
    """

    PREFIX = "GET stream"

    def __init__(self, log: EventLog) -> None:
        super().__init__(logging.DEBUG)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(self.PREFIX):
            return
        ns = _CURRENT_NS.get()
        self._log(ns or "*", "sdk_log", level=record.levelname.lower(), message=message, gen=_CURRENT_GEN.get())

    @classmethod
    def install(cls, log: EventLog) -> None:
        logger = logging.getLogger("mcp.client.streamable_http")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(cls(log))


_CURRENT_NS: contextvars.ContextVar[str | None] = contextvars.ContextVar("mcpsniff_demo_ns", default=None)
_CURRENT_GEN: contextvars.ContextVar[int | None] = contextvars.ContextVar("mcpsniff_demo_gen", default=None)


@dataclass
class NamespaceState:
    """What one client knows; its final form goes into the log's summary line."""

    ns: str
    policy: Policy
    gen: int = 0
    session_id: str | None = None
    protocol_version: str | None = None
    tools: tuple[str, ...] = ()
    tools_gen: int = 0  # generation whose tools/list the catalogue came from
    last_ok_call: float | None = None
    last_ok_gen: int = 0
    failures: int = 0  # consecutive failed attempts
    gave_up: bool = False

    def summary(self) -> dict[str, Any]:
        state = "gave-up" if self.gave_up else ("bound" if self.last_ok_gen == self.gen and self.gen else "failing")
        if not self.policy.calls and not self.gave_up:
            state = "idle"  # no calls: nothing the client itself saw says bound or not
        return {
            "state": state,
            "policy": self.policy.name,
            "gen": self.gen,
            "session_id": self.session_id,
            "last_ok_call_time": self.last_ok_call,
            "last_ok_gen": self.last_ok_gen,
            "tools_known": len(self.tools),
            "tools_gen": self.tools_gen,
        }


@contextlib.asynccontextmanager
async def open_session(url: str, resume: tuple[str, str | None] | None) -> AsyncIterator[tuple[ClientSession, GetSessionId]]:
    """A fresh SDK transport and ClientSession (not initialized), with the transport's session-id getter.

    ``resume=(session_id, protocol_version)`` makes every request carry the old
    session headers, which is what a client that "resumes" instead of
    re-initializing sends.
    """
    headers: dict[str, str] = {}
    if resume is not None:
        headers["mcp-session-id"] = resume[0]
        if resume[1]:
            headers["mcp-protocol-version"] = resume[1]
    timeout = httpx.Timeout(REQUEST_TIMEOUT, read=60.0)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as (read, write, get_id):
            async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=REQUEST_TIMEOUT)) as session:
                yield session, get_id


async def call_tool(session: ClientSession, name: str, args: dict[str, Any]) -> types.CallToolResult:
    """tools/call without the SDK's output-schema check (which would send tools/list on its own).

    A progress callback makes the request carry a progress token, so the ``work``
    tool's progress notifications arrive on the call's SSE stream.
    """
    request = types.ClientRequest(types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=args)))
    return await session.send_request(request, types.CallToolResult, progress_callback=_ignore_progress)


async def _ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


async def run_namespace(url: str, state: NamespaceState, log: EventLog, interval: float = CALL_INTERVAL) -> None:
    """Connect, call tools forever, reconnect per policy; returns only when the policy gives up."""
    ns, policy = state.ns, state.policy
    _CURRENT_NS.set(ns)
    while True:
        state.gen += 1
        _CURRENT_GEN.set(state.gen)
        resume = None if policy.reinitialize or state.session_id is None else (state.session_id, state.protocol_version)
        log(ns, "connecting", gen=state.gen, resume_session_id=resume[0] if resume else None)
        established = False
        try:
            async with open_session(url, resume) as (session, get_session_id):
                if resume is None:
                    init = await asyncio.wait_for(session.initialize(), REQUEST_TIMEOUT)
                    state.session_id = get_session_id()
                    state.protocol_version = str(init.protocolVersion)
                    log(ns, "connected", gen=state.gen, session_id=state.session_id, server=init.serverInfo.name, protocol_version=state.protocol_version)
                    if policy.relist or not state.tools:
                        listed = await session.list_tools()
                        state.tools, state.tools_gen = tuple(t.name for t in listed.tools), state.gen
                        log(ns, "tools_listed", gen=state.gen, count=len(state.tools))
                else:
                    log(ns, "connected", gen=state.gen, session_id=state.session_id, resumed=True)
                established = True
                if not policy.calls:
                    await asyncio.Event().wait()  # idle: nothing more from the host, ever
                n = 0
                while True:
                    n += 1
                    tool, args = ("work", {"steps": 2}) if n % 4 == 0 else ("ping", {})
                    started = time.monotonic()
                    result = await call_tool(session, tool, args)
                    if result.isError:
                        raise RuntimeError(f"tool error: {result.content}")
                    state.last_ok_call, state.last_ok_gen, state.failures = time.time(), state.gen, 0
                    log(ns, "call_ok", tool=tool, gen=state.gen, session_id=state.session_id, ms=round((time.monotonic() - started) * 1000))
                    await asyncio.sleep(interval)
        except Exception as exc:  # noqa: BLE001 - every failure goes through the policy
            log(ns, "session_ended", gen=state.gen, error=_describe(exc), established=established)
        if state.failures >= len(policy.delays) and not policy.forever:
            state.gave_up = True
            log(ns, "gave_up", attempts=state.failures, policy=policy.name)
            return
        delay = policy.delays[min(state.failures, len(policy.delays) - 1)]
        state.failures += 1
        log(ns, "reconnect_attempt", attempt=state.failures, delay_s=delay, resume_session_id=None if policy.reinitialize else state.session_id)
        await asyncio.sleep(delay)


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping the task groups the SDK raises through."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpError):
        return f"McpError: {exc.error.message}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"[:200]


def parse_policies(specs: list[str], default: str = "healthy") -> dict[str, Policy]:
    """``["sprint=stale"]`` -> a policy for every namespace (the rest get ``default``)."""
    policies = {ns: POLICIES[default] for ns in NAMESPACES}
    for spec in specs:
        ns, _, name = spec.partition("=")
        if ns not in policies or name not in POLICIES:
            raise SystemExit(f"bad --policy {spec!r}: namespaces {', '.join(NAMESPACES)}; policies {', '.join(POLICIES)}")
        policies[ns] = POLICIES[name]
    return policies


async def run_clients(base: str, policies: dict[str, Policy], log: EventLog, stop: asyncio.Event, interval: float = CALL_INTERVAL, stagger: float = 0.05) -> dict[str, NamespaceState]:
    """All namespaces' clients until ``stop`` is set; then a summary line."""
    states = {ns: NamespaceState(ns, policy) for ns, policy in policies.items()}
    log("*", "start", base=base, client=f"py-sdk {_sdk_version()}", policies={ns: p.name for ns, p in policies.items()})

    async def one(ns: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await run_namespace(f"{base}/{ns}/mcp", states[ns], log, interval)

    tasks = [asyncio.create_task(one(ns, i * stagger)) for i, ns in enumerate(states)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    log("*", "summary", namespaces={ns: st.summary() for ns, st in states.items()})
    return states


def _sdk_version() -> str:
    from importlib.metadata import version

    return version("mcp")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one official-SDK MCP client per demo namespace until SIGTERM/Ctrl-C.")
    parser.add_argument("--base", required=True, help="server or proxy base URL, e.g. http://127.0.0.1:5077")
    parser.add_argument("--policy", action="append", default=[], metavar="NS=POLICY", help=f"per-namespace policy ({', '.join(POLICIES)}); default healthy")
    parser.add_argument("--ns", action="append", default=[], choices=NAMESPACES, help="only these namespaces (repeatable; default: all four)")
    parser.add_argument("--log", help="JSON-lines event log (default: stdout)")
    parser.add_argument("--interval", type=float, default=CALL_INTERVAL, help="seconds between tool calls (default %(default)s)")
    args = parser.parse_args(argv)
    policies = parse_policies(args.policy)
    if args.ns:
        policies = {ns: p for ns, p in policies.items() if ns in args.ns}
    with open(args.log, "a", encoding="utf-8") if args.log else contextlib.nullcontext(sys.stdout) as out:
        log = EventLog(out)
        SdkLogBridge.install(log)
        asyncio.run(_main(args.base, policies, log, args.interval))


async def _main(base: str, policies: dict[str, Policy], log: EventLog, interval: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_clients(base, policies, log, stop, interval)


if __name__ == "__main__":
    main()
