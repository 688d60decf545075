"""The demo's MCP server: four namespaces on one port, each a stateful FastMCP server.

``python -m mcpsniff.demo.server --port 5076`` serves ``/tasks/mcp``,
``/dev-agents/mcp``, ``/sprint/mcp`` and ``/ci-infra/mcp`` behind uvicorn until
SIGTERM or Ctrl-C, and prints ``ready <port> <boot>`` on stdout once it accepts
connections (the orchestrator waits for that line instead of probing the port,
which would add connections to the capture; a ``starting <port> <epoch>`` line
before it says when it began to bind).  Every start has a new ``boot`` id
and no sessions, so a restart makes every old session id unknown (404), as with
any real server process.  ``--stateless`` serves the same namespaces with the
SDK's ``stateless_http=True`` (no session ids at all).

Tools of every namespace: ``ping`` (namespace and boot id), ``work(steps)`` (log and
progress notifications on the call's SSE stream), ``hang`` (never answers: it
sleeps ``HANG_SECONDS``, the SDK sends ``: ping`` SSE comments meanwhile), and a
few canned namespace-specific ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from starlette.applications import Starlette
from starlette.routing import Mount

from . import NAMESPACES

HOST = "127.0.0.1"
HANG_SECONDS = 600.0  # the ``hang`` tool's bound: far longer than any demo run

# A few namespace-specific tools (name -> canned answer), on top of ping and work.
_EXTRA_TOOLS: dict[str, dict[str, str]] = {
    "tasks": {"list_tasks": "3 open tasks", "next_task": "write the release notes"},
    "dev-agents": {"list_agents": "planner, coder, reviewer", "agent_status": "all agents idle"},
    "sprint": {"sprint_status": "day 6 of 10, 21 points left", "burndown": "on track"},
    "ci-infra": {"pipeline_status": "main: green", "runners": "4 runners online"},
}


def namespace_server(ns: str, boot: str, stateless: bool = False) -> FastMCP:
    """One MCP server; stateful unless ``stateless`` (the SDK's session manager keeps a session per client)."""
    srv = FastMCP(f"demo-{ns}", host=HOST, stateless_http=stateless, log_level="WARNING")

    @srv.tool()
    async def ping() -> str:
        """Answer with the namespace and the boot id of this server process."""
        return f"{ns} pong boot={boot}"

    @srv.tool()
    async def work(steps: int, ctx: Context) -> str:
        """Do a small job, sending a log and a progress notification per step on the SSE stream."""
        steps = max(1, min(steps, 5))
        for i in range(steps):
            await ctx.info(f"{ns}: step {i + 1}/{steps}")
            await ctx.report_progress(i + 1, steps)
            await asyncio.sleep(0.01)
        return f"{ns} did {steps} steps"

    @srv.tool()
    async def hang() -> str:
        """Never answer (bounded: sleeps HANG_SECONDS); the call's SSE stream only carries pings."""
        await asyncio.sleep(HANG_SECONDS)
        return f"{ns} hang ended after {HANG_SECONDS:g} s"

    for name, answer in _EXTRA_TOOLS.get(ns, {}).items():
        srv.add_tool(_canned(answer), name=name, description=f"{ns}: {name.replace('_', ' ')}")
    return srv


def _canned(answer: str) -> Callable[[], Awaitable[str]]:
    async def tool() -> str:
        return answer

    return tool


def build_app(namespaces: tuple[str, ...] = NAMESPACES, boot: str = "", stateless: bool = False) -> Starlette:
    """All namespaces mounted at ``/<ns>`` (endpoint ``/<ns>/mcp``) on one Starlette app.

    Starlette does not run the lifespans of mounted apps, so the parent's lifespan
    runs every namespace's session manager.
    """
    return mount_servers({ns: namespace_server(ns, boot, stateless) for ns in namespaces})


def mount_servers(servers: dict[str, FastMCP]) -> Starlette:
    """FastMCP servers mounted at ``/<ns>`` on one app whose lifespan runs their session managers."""
    mounts = [Mount(f"/{ns}", app=srv.streamable_http_app()) for ns, srv in servers.items()]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for srv in servers.values():
                await stack.enter_async_context(srv.session_manager.run())
            yield

    return Starlette(routes=mounts, lifespan=lifespan)


async def serve(port: int, namespaces: tuple[str, ...] = NAMESPACES, start_at: float | None = None, stateless: bool = False) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn's handlers); say ``ready`` once listening.

    ``start_at`` (epoch seconds): import and build everything now, listen only then.
    The demo starts the replacement process while the old one is still going down,
    so the downtime is what it asked for, not that plus Python's start-up time.
    """
    boot = secrets.token_hex(4)
    app = build_app(namespaces, boot, stateless)
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,  # open SSE streams would otherwise hold the shutdown
    )
    server = uvicorn.Server(config)
    print(f"starting {port} {time.time():.6f}", flush=True)  # when it begins to bind (the demo's truth.json)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        print(f"ready {port} {boot}", flush=True)
    await task
    if not server.started:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the demo's four MCP namespaces on one port until SIGTERM/Ctrl-C.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ns", action="append", default=[], help="namespace (repeatable; default: all four)")
    parser.add_argument("--start-at", type=float, metavar="EPOCH", help="start listening at this time (prepared before)")
    parser.add_argument("--stateless", action="store_true", help="stateless_http=True: no session ids, every request stands alone")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, tuple(args.ns) or NAMESPACES, args.start_at, args.stateless))


if __name__ == "__main__":
    main()
