"""A 2.x-SDK (``mcp==2.3.0``) MCP server: four namespaces on one port, both protocol eras.

    <mcp 2.x env>/bin/python mcpsniff/demo/modern/server.py --port 5076
    # the env: mcpsniff/demo/sdk2.py (or: uv run --no-project --with mcp==2.3.0 --with uvicorn python ...)

serves ``/tasks/mcp``, ``/dev-agents/mcp``, ``/sprint/mcp`` and ``/ci-infra/mcp`` behind
uvicorn until SIGTERM or Ctrl-C, prints ``starting <port> <epoch>`` when it begins to bind
and ``ready <port> <boot>`` on stdout once it accepts connections (like
``mcpsniff.demo.server``, the 1.x one).  It imports nothing of mcpsniff.

Every namespace is an ``MCPServer`` (the 2.x name of FastMCP) mounted with
``streamable_http_app()``; the parent Starlette app's lifespan runs all their session
managers, exactly as with 1.x.  The SDK's session manager routes each request by its
``MCP-Protocol-Version`` header alone: a 2026+ (or unknown) value goes to the sessionless
2026-07-28 entry (``mcp/server/_streamable_http_modern.py``); no header or a handshake-era
value (2024-11-05 .. 2025-11-25) goes to the 2025-era stateful transport (``initialize``,
``Mcp-Session-Id``, GET stream, DELETE).  So one process serves both eras on the same path;
there is no switch for it (``--stateless`` only changes the 2025-era path).

Tools in every namespace:
- ``ping``: answers at once (sessionless: a plain ``application/json`` 200).
- ``work(steps)``: a progress notification per step; ``steps`` carries ``x-mcp-header``
  so a 2026 client mirrors it into ``Mcp-Param-Steps`` (sessionless: the first
  notification commits the answer to ``text/event-stream``).
- ``hang``: never answers (sessionless: ``: ping`` comments every 15 s once the SDK's
  15 s JSON deferral window has passed).
- ``bump``: publishes ``tools/list_changed`` to ``subscriptions/listen`` streams.
- ``needs_ext``: requires the client extension ``com.example/lab`` (-32021 otherwise).
- a few canned namespace tools.

At SIGTERM uvicorn closes its listener at once, FINs idle keep-alive connections, and cuts
open SSE streams (listen streams, hung calls) after ``timeout_graceful_shutdown`` = 1 s with a
bare FIN (no terminating chunk); ``--graceful-listen-close`` instead ends listen streams with
their ``SubscriptionsListenResult`` first (the spec's graceful close).
"""

from __future__ import annotations

import argparse
import warnings
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.server import require_client_extension
from pydantic import Field
from starlette.applications import Starlette
from starlette.routing import Mount

HOST = "127.0.0.1"
# ctx.info() is the deprecated logging feature at 2026-07-28; keep the lab output quiet.
warnings.filterwarnings("ignore", message=".*deprecated as of 2026-07-28.*")
NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")

_EXTRA_TOOLS: dict[str, dict[str, str]] = {
    "tasks": {"list_tasks": "3 open tasks", "next_task": "write the release notes"},
    "dev-agents": {"list_agents": "planner, coder, reviewer", "agent_status": "all agents idle"},
    "sprint": {"sprint_status": "day 6 of 10, 21 points left", "burndown": "on track"},
    "ci-infra": {"pipeline_status": "main: green", "runners": "4 runners online"},
}


def namespace_server(ns: str, boot: str) -> MCPServer:
    srv = MCPServer(f"demo-{ns}", version="2.3.0-lab", log_level="WARNING")

    @srv.tool()
    async def ping() -> str:
        """Answer with the namespace and the boot id of this server process."""
        return f"{ns} pong boot={boot}"

    @srv.tool()
    async def work(
        steps: Annotated[int, Field(json_schema_extra={"x-mcp-header": "Steps"})],
        ctx: Context,
    ) -> str:
        """Do a small job: a log message (if the client opted in) and a progress notification per step."""
        steps = max(1, min(steps, 5))
        for i in range(steps):
            await ctx.info(f"{ns}: step {i + 1}/{steps}")
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
            await asyncio.sleep(0.01)
        return f"{ns} did {steps} steps boot={boot}"

    @srv.tool()
    async def hang() -> str:
        """Never answers (until the server stops)."""
        await asyncio.Event().wait()
        return "unreachable"

    @srv.tool()
    async def bump(ctx: Context) -> str:
        """Tell subscriptions/listen streams that the tool list changed."""
        await ctx.notify_tools_changed()
        return f"{ns} bumped"

    @srv.tool()
    async def needs_ext(ctx: Context) -> str:
        """Requires the client extension com.example/lab (-32021 otherwise)."""
        require_client_extension(ctx.request_context, "com.example/lab")
        return "ok"

    for name, answer in _EXTRA_TOOLS.get(ns, {}).items():
        srv.add_tool(_canned(answer), name=name, description=f"{ns}: {name.replace('_', ' ')}")
    return srv


def _canned(answer: str) -> Callable[[], Awaitable[str]]:
    async def tool() -> str:
        return answer

    return tool


def build_app(namespaces: tuple[str, ...] = NAMESPACES, boot: str = "", stateless: bool = False, json_response: bool = False) -> Starlette:
    """All namespaces mounted at ``/<ns>`` (endpoint ``/<ns>/mcp``); the parent lifespan runs their managers."""
    servers = {ns: namespace_server(ns, boot) for ns in namespaces}
    mounts = [
        Mount(f"/{ns}", app=srv.streamable_http_app(stateless_http=stateless, json_response=json_response))
        for ns, srv in servers.items()
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for srv in servers.values():
                await stack.enter_async_context(srv.session_manager.run())
            yield

    app = Starlette(routes=mounts, lifespan=lifespan)
    entries = (srv._lowlevel_server.get_request_handler("subscriptions/listen") for srv in servers.values())
    app.state.listen_handlers = [entry.handler for entry in entries if entry is not None]
    return app


class _GracefulListenServer(uvicorn.Server):
    """uvicorn that, on SIGTERM/SIGINT, first ends every subscriptions/listen stream gracefully.

    ``ListenHandler.close()`` makes each stream send its ``SubscriptionsListenResult`` as the
    final SSE event (the spec's graceful close); without it uvicorn cancels the streams after
    ``timeout_graceful_shutdown`` and they end with a bare FIN.
    """

    listen_handlers: list[Any] = []

    def handle_exit(self, sig: int, frame: Any) -> None:
        for handler in self.listen_handlers:
            handler.close()
        super().handle_exit(sig, frame)


def listen_handlers(app: Starlette) -> list[Any]:
    return list(app.state.listen_handlers)


async def serve(port: int, namespaces: tuple[str, ...], start_at: float | None, stateless: bool, json_response: bool, graceful_listen_close: bool = False) -> None:
    boot = secrets.token_hex(4)
    app = build_app(namespaces, boot, stateless, json_response)
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", timeout_graceful_shutdown=1)
    if graceful_listen_close:
        server: uvicorn.Server = _GracefulListenServer(config)
        server.listen_handlers = listen_handlers(app)  # type: ignore[attr-defined]
    else:
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
    parser = argparse.ArgumentParser(description="Serve four MCP namespaces with the mcp 2.x SDK (both eras) until SIGTERM/Ctrl-C.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ns", action="append", default=[], help="namespace (repeatable; default: all four)")
    parser.add_argument("--start-at", type=float, metavar="EPOCH", help="start listening at this time (prepared before)")
    parser.add_argument("--stateless", action="store_true", help="2025-era path without sessions (stateless_http=True)")
    parser.add_argument("--json-response", action="store_true", help="JSON instead of SSE answers (listen stays SSE)")
    parser.add_argument("--graceful-listen-close", action="store_true", help="at SIGTERM end listen streams with their result (default: cut after 1 s)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, tuple(args.ns) or NAMESPACES, args.start_at, args.stateless, args.json_response, args.graceful_listen_close))


if __name__ == "__main__":
    main()
