"""2.x-SDK (``mcp==2.3.0``) MCP client host: one ``mcp.Client`` per namespace, each with a policy.

    <mcp 2.x env>/bin/python mcpsniff/demo/modern/clients.py --base http://127.0.0.1:5076 \\
        --policy sprint=dies --log client.log
    # the env: mcpsniff/demo/sdk2.py (``mcpsniff demo --scenario sessionless...`` runs it)

Every namespace gets a ``Client(url, mode=...)`` (``auto`` by default: ``server/discover``
first, ``initialize`` fallback on a 2025-era server).  On a 2026-07-28 connection it
holds a ``subscriptions/listen`` stream (``tools_list_changed``) next to its calls; it
calls a tool every 0.7 s (``work`` with progress every 4th call, else ``ping``).

The SDK has no retry of its own: a refused connection on any POST ends the whole
``Client`` (its transport task group fails, the pending call is cancelled), and a broken
listen stream raises ``SubscriptionLost``.  What happens next is the host's policy:

- ``rebuild``: on any error wait 1, 2, 4, 8, 16 s (reset after a good call) and build a
  new ``Client`` (new probe, tools/list, listen); after five failed attempts: gave_up.
- ``dies``: no host reconnect; the first error ends the namespace for good.
- ``listen-only``: no calls, only the listen stream; when it ends (lost, or closed
  gracefully by the server) it rebuilds like ``rebuild``.
- ``listen-dies``: only the listen stream, never re-opened after it ended.

The JSON-lines log (``{"t", "ns", "event", "detail"}``, flushed per line) has the same
shape as the shared captures' ``client.log``: start, connecting, connected, tools_listed,
listen_open, listen_event, listen_lost, call_ok, call_error, session_ended,
reconnect_attempt, gave_up, summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version as _dist_version
from typing import IO, Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")
CALL_INTERVAL = 0.7
REQUEST_TIMEOUT = 3.0
CLIENT_NAME = "mcpsniff-lab-py"
STOPPING: anyio.Event  # created in run_clients (needs a running event loop)


@dataclass(frozen=True)
class Policy:
    name: str
    delays: tuple[float, ...]  # wait before host reconnect attempt n (1-based: delays[n-1]); () = never
    calls: bool = True
    listen: bool = True
    description: str = ""


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("rebuild", (1, 2, 4, 8, 16), description="on error: wait 1,2,4,8,16 s and build a new Client"),
        Policy("dies", (), description="no host reconnect: the first error ends the namespace"),
        Policy("listen-only", (1, 2, 4, 8, 16), calls=False, description="only a subscriptions/listen stream; rebuilt on loss"),
        Policy("listen-dies", (), calls=False, description="only a subscriptions/listen stream; never re-opened"),
    )
}


class EventLog:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, ns: str, event: str, **detail: Any) -> None:
        line = {"t": round(time.time(), 6), "ns": ns, "event": event, "detail": detail}
        self._stream.write(json.dumps(line, default=str) + "\n")
        self._stream.flush()


@dataclass
class NamespaceState:
    ns: str
    policy: Policy
    gen: int = 0
    protocol_version: str | None = None
    era: str | None = None
    tools: int = 0
    last_ok: float | None = None
    last_ok_gen: int = 0
    last_ok_boot: str | None = None
    first_boot: str | None = None
    listen_ok_gen: int = 0
    failures: int = 0
    attempts: int = 0
    gave_up: bool = False
    dead: bool = False
    last_error: dict[str, Any] | None = None
    calls_ok: int = 0
    call_errors: int = 0
    gens: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        bound = self.gen > 0 and (self.last_ok_gen == self.gen if self.policy.calls else self.listen_ok_gen == self.gen)
        if self.dead:
            state = "dead"
        elif self.gave_up:
            state = "gave-up"
        else:
            state = "bound" if bound else "failing"
        return {
            "state": state,
            "policy": self.policy.name,
            "gen": self.gen,
            "protocol_version": self.protocol_version,
            "era": self.era,
            "tools_known": self.tools,
            "last_ok_call_time": self.last_ok,
            "last_ok_gen": self.last_ok_gen,
            "listen_ok_gen": self.listen_ok_gen,
            "first_boot": self.first_boot,
            "last_ok_boot": self.last_ok_boot,
            "calls_ok": self.calls_ok,
            "call_errors": self.call_errors,
            "reconnect_attempts": self.attempts,
            "gave_up": self.gave_up,
            "dead": self.dead,
            "last_error": self.last_error,
        }


def describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping the SDK's task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return f"MCPError {exc.error.code}: {exc.error.message}"
    return f"{type(exc).__name__}: {exc}"[:240]


def era_of(mode: str, protocol_version: str) -> str:
    if protocol_version in MODERN_PROTOCOL_VERSIONS:
        return "2026-07-28 sessionless"
    return "negotiated fallback" if mode == "auto" else "2025-era sessions"


async def run_generation(url: str, st: NamespaceState, log: EventLog, mode: str, interval: float) -> None:
    """One Client from connect to its first error (raised), or forever."""
    ns = st.ns
    async with Client(
        url,
        mode=mode,
        read_timeout_seconds=REQUEST_TIMEOUT,
        client_info=types.Implementation(name=CLIENT_NAME, version=_dist_version("mcp")),
    ) as client:
        st.protocol_version = client.protocol_version
        st.era = era_of(mode, client.protocol_version)
        server = client.server_info.name if client.server_info else None
        log(ns, "connected", gen=st.gen, protocol_version=st.protocol_version, era=st.era, server=server)
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        if st.policy.calls:
            listed = await client.list_tools()
            st.tools = len(listed.tools)
            log(ns, "tools_listed", gen=st.gen, count=st.tools)
        async with anyio.create_task_group() as tg:
            if st.policy.listen and modern:
                tg.start_soon(hold_listen, client, st, log)
            if st.policy.calls:
                tg.start_soon(call_loop, client, st, log, interval)
            elif not modern:
                log(ns, "listen_unavailable", gen=st.gen, protocol_version=client.protocol_version)


async def hold_listen(client: Client, st: NamespaceState, log: EventLog) -> None:
    ns, gen = st.ns, st.gen
    async with client.listen(tools_list_changed=True) as sub:
        st.listen_ok_gen = gen
        log(ns, "listen_open", gen=gen, subscription_id=sub.subscription_id, honored=sub.honored.model_dump(exclude_none=True, by_alias=True))
        try:
            async for event in sub:
                log(ns, "listen_event", gen=gen, event=type(event).__name__)
        except SubscriptionLost as exc:
            log(ns, "listen_lost", gen=gen, error=describe(exc), cause=describe(exc.__cause__) if exc.__cause__ else None)
            raise
    log(ns, "listen_closed", gen=gen, reason="graceful")
    raise RuntimeError("listen stream closed by the server")


async def _ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


async def call_loop(client: Client, st: NamespaceState, log: EventLog, interval: float) -> None:
    ns, gen = st.ns, st.gen
    n = 0
    while True:
        n += 1
        tool, args = ("work", {"steps": 2}) if n % 4 == 0 else ("ping", {})
        started = time.monotonic()
        try:
            result = await client.call_tool(tool, args, progress_callback=_ignore_progress if tool == "work" else None)
        except anyio.get_cancelled_exc_class():
            # The SDK ends the whole Client on a transport error (a refused connection on any
            # POST fails its task group), which cancels the pending call rather than failing it.
            if not STOPPING.is_set():
                st.call_errors += 1
                log(ns, "call_error", tool=tool, gen=gen, error="cancelled: the Client's transport failed", ms=round((time.monotonic() - started) * 1000))
            raise
        except Exception as exc:
            st.call_errors += 1
            log(ns, "call_error", tool=tool, gen=gen, error=describe(exc), ms=round((time.monotonic() - started) * 1000))
            raise
        if result.is_error:
            st.call_errors += 1
            log(ns, "call_error", tool=tool, gen=gen, error=f"tool error: {result.content}")
            raise RuntimeError("tool error")
        text = result.content[0].text if result.content and isinstance(result.content[0], types.TextContent) else ""
        boot = text.rpartition("boot=")[2] or None
        st.first_boot = st.first_boot or boot
        st.last_ok, st.last_ok_gen, st.last_ok_boot, st.failures = time.time(), gen, boot, 0
        st.calls_ok += 1
        log(ns, "call_ok", tool=tool, gen=gen, boot=boot, ms=round((time.monotonic() - started) * 1000))
        await anyio.sleep(interval)


async def run_namespace(url: str, st: NamespaceState, log: EventLog, mode: str, interval: float) -> None:
    ns, policy = st.ns, st.policy
    while True:
        st.gen += 1
        log(ns, "connecting", gen=st.gen, mode=mode)
        try:
            await run_generation(url, st, log, mode, interval)
            error = "client ended"
        except Exception as exc:  # every failure (ExceptionGroup of the transport included) goes through the policy
            error = describe(exc)
        if not policy.calls and st.listen_ok_gen == st.gen:
            st.failures = 0  # the listen was up in this generation: a fresh start of the schedule
        st.last_error = {"t": time.time(), "message": error}
        log(ns, "session_ended", gen=st.gen, error=error)
        if not policy.delays:
            st.dead = True
            log(ns, "gave_up", attempts=0, policy=policy.name, reason="no host reconnect")
            return
        if st.failures >= len(policy.delays):
            st.gave_up = True
            log(ns, "gave_up", attempts=st.failures, policy=policy.name)
            return
        delay = policy.delays[st.failures]
        st.failures += 1
        st.attempts += 1
        log(ns, "reconnect_attempt", attempt=st.failures, delay_s=delay)
        await anyio.sleep(delay)


def parse_policies(specs: list[str], default: str) -> dict[str, Policy]:
    policies = {ns: POLICIES[default] for ns in NAMESPACES}
    for spec in specs:
        ns, _, name = spec.partition("=")
        if ns not in policies or name not in POLICIES:
            raise SystemExit(f"bad --policy {spec!r}: namespaces {', '.join(NAMESPACES)}; policies {', '.join(POLICIES)}")
        policies[ns] = POLICIES[name]
    return policies


async def run_clients(base: str, policies: dict[str, Policy], log: EventLog, mode: str, interval: float, stagger: float = 0.05) -> None:
    global STOPPING
    STOPPING = anyio.Event()
    states = {ns: NamespaceState(ns, p) for ns, p in policies.items()}
    log("*", "start", base=base, client=f"py-sdk {_dist_version('mcp')}", mode=mode, policies={ns: p.name for ns, p in policies.items()})
    reason = "end"
    async with anyio.create_task_group() as tg:

        async def one(ns: str, delay: float) -> None:
            await anyio.sleep(delay)
            await run_namespace(f"{base}/{ns}/mcp", states[ns], log, mode, interval)

        async def stop_on_signal() -> None:
            nonlocal reason
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for sig in signals:
                    reason = signal.Signals(sig).name
                    STOPPING.set()
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(stop_on_signal)
        for i, ns in enumerate(states):
            tg.start_soon(one, ns, i * stagger)
    log("*", "summary", reason=reason, client=f"py-sdk {_dist_version('mcp')}", namespaces={ns: st.summary() for ns, st in states.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One mcp 2.x Client per namespace, calls every 0.7 s, until SIGTERM/Ctrl-C.")
    parser.add_argument("--base", required=True, help="server base URL, e.g. http://127.0.0.1:5076")
    parser.add_argument("--policy", action="append", default=[], metavar="NS=POLICY", help=f"per-namespace policy ({', '.join(POLICIES)})")
    parser.add_argument("--default-policy", default="rebuild", choices=sorted(POLICIES))
    parser.add_argument("--ns", action="append", default=[], help="only these namespaces (repeatable)")
    parser.add_argument("--mode", default="auto", help="Client mode: auto (default), legacy, or 2026-07-28")
    parser.add_argument("--log", help="JSON-lines log (default: stdout)")
    parser.add_argument("--interval", type=float, default=CALL_INTERVAL)
    args = parser.parse_args(argv)
    policies = parse_policies(args.policy, args.default_policy)
    if args.ns:
        policies = {ns: p for ns, p in policies.items() if ns in args.ns}
    with open(args.log, "a", encoding="utf-8") if args.log else contextlib.nullcontext(sys.stdout) as out:
        anyio.run(run_clients, args.base, policies, EventLog(out), args.mode, args.interval)


if __name__ == "__main__":
    main()
