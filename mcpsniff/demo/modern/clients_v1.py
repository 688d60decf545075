"""1.x-SDK (``mcp<2``) client host for the mixed-era lab: 2025-era sessions only.

    uv run python mcpsniff/demo/modern/clients_v1.py --base http://127.0.0.1:5076 --ns sprint --log c.log
    # (the project venv has mcp 1.x; or: uv run --no-project --with 'mcp<2' python ...)

The same log shape and policies (``rebuild``, ``dies``) as ``clients.py`` (the 2.x host), so a
capture can put 2025-era and 2026-07-28 clients on one port, one namespace each.  A
generation is a fresh ``streamable_http_client`` + ``ClientSession``: ``initialize``,
``notifications/initialized``, the SDK's GET stream, ``tools/list``, then a call every 0.7 s.
On any error (refused connection, 404 "Session not found" -> "Session terminated", timeout)
``rebuild`` waits 1, 2, 4, 8, 16 s and starts a new session; ``dies`` stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from datetime import timedelta
from importlib.metadata import version as _dist_version
from typing import IO, Any

import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")
DELAYS = {"rebuild": (1, 2, 4, 8, 16), "dies": ()}
REQUEST_TIMEOUT = 3.0


class EventLog:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, ns: str, event: str, **detail: Any) -> None:
        self._stream.write(json.dumps({"t": round(time.time(), 6), "ns": ns, "event": event, "detail": detail}, default=str) + "\n")
        self._stream.flush()


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, McpError):
        return f"McpError: {exc.error.message}"
    return f"{type(exc).__name__}: {exc}"[:240]


async def _ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


async def run_namespace(url: str, ns: str, policy: str, log: EventLog, interval: float, summary: dict[str, Any]) -> None:
    gen = failures = attempts = 0
    state = summary[ns] = {"state": "failing", "policy": policy, "gen": 0, "session_id": None, "last_ok_gen": 0, "last_ok_boot": None, "calls_ok": 0, "reconnect_attempts": 0}
    while True:
        gen += 1
        state["gen"] = gen
        log(ns, "connecting", gen=gen)
        try:
            timeout = httpx.Timeout(REQUEST_TIMEOUT, read=60.0)
            async with httpx.AsyncClient(timeout=timeout) as http:
                async with streamable_http_client(url, http_client=http, terminate_on_close=False) as (read, write, get_id):
                    async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=REQUEST_TIMEOUT)) as session:
                        init = await asyncio.wait_for(session.initialize(), REQUEST_TIMEOUT)
                        state["session_id"] = get_id()
                        log(ns, "connected", gen=gen, session_id=get_id(), server=init.serverInfo.name, protocol_version=str(init.protocolVersion), era="2025-era sessions")
                        listed = await session.list_tools()
                        log(ns, "tools_listed", gen=gen, count=len(listed.tools))
                        n = 0
                        while True:
                            n += 1
                            tool, args = ("work", {"steps": 2}) if n % 4 == 0 else ("ping", {})
                            started = time.monotonic()
                            try:
                                req = types.ClientRequest(types.CallToolRequest(params=types.CallToolRequestParams(name=tool, arguments=args)))
                                result = await session.send_request(req, types.CallToolResult, progress_callback=_ignore_progress)
                                if result.isError:
                                    raise RuntimeError(f"tool error: {result.content}")
                            except Exception as exc:
                                log(ns, "call_error", tool=tool, gen=gen, error=describe(exc), ms=round((time.monotonic() - started) * 1000))
                                raise
                            text = result.content[0].text if result.content and isinstance(result.content[0], types.TextContent) else ""
                            boot = text.rpartition("boot=")[2] or None
                            failures = 0
                            state.update(state="bound", last_ok_gen=gen, last_ok_boot=boot, last_ok_call_time=time.time())
                            state["calls_ok"] += 1
                            log(ns, "call_ok", tool=tool, gen=gen, session_id=get_id(), boot=boot, ms=round((time.monotonic() - started) * 1000))
                            await asyncio.sleep(interval)
        except Exception as exc:  # noqa: BLE001
            state["state"] = "failing"
            log(ns, "session_ended", gen=gen, error=describe(exc))
        delays = DELAYS[policy]
        if failures >= len(delays):
            state["state"] = "gave-up" if delays else "dead"
            log(ns, "gave_up", attempts=failures, policy=policy)
            return
        failures += 1
        attempts += 1
        state["reconnect_attempts"] = attempts
        log(ns, "reconnect_attempt", attempt=failures, delay_s=delays[failures - 1])
        await asyncio.sleep(delays[failures - 1])


async def amain(base: str, policies: dict[str, str], log: EventLog, interval: float) -> None:
    client = f"py-sdk {_dist_version('mcp')}"
    log("*", "start", base=base, client=client, policies=policies)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reason: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (reason.append(signal.Signals(s).name), stop.set()))
    summary: dict[str, Any] = {}

    async def one(ns: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await run_namespace(f"{base}/{ns}/mcp", ns, policies[ns], log, interval, summary)

    tasks = [asyncio.create_task(one(ns, i * 0.05)) for i, ns in enumerate(policies)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    log("*", "summary", reason=reason[0] if reason else "end", client=client, namespaces=summary)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="mcp 1.x (2025-era) clients, one per namespace, until SIGTERM/Ctrl-C.")
    ap.add_argument("--base", required=True)
    ap.add_argument("--ns", action="append", default=[], help="namespaces (repeatable; default all four)")
    ap.add_argument("--policy", action="append", default=[], metavar="NS=POLICY", help="rebuild (default) or dies")
    ap.add_argument("--log")
    ap.add_argument("--interval", type=float, default=0.7)
    args = ap.parse_args(argv)
    policies = {ns: "rebuild" for ns in (args.ns or NAMESPACES)}
    for spec in args.policy:
        ns, _, p = spec.partition("=")
        if ns not in policies or p not in DELAYS:
            raise SystemExit(f"bad --policy {spec!r}")
        policies[ns] = p
    with open(args.log, "a", encoding="utf-8") if args.log else contextlib.nullcontext(sys.stdout) as out:
        asyncio.run(amain(args.base, policies, EventLog(out), args.interval))


if __name__ == "__main__":
    main()
