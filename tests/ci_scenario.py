"""A restart scenario to run under `mcpsniff ci` (and the pytest plugin tests): real SDK server and clients.

``python tests/ci_scenario.py --port P [--stale sprint] [--exit N]``: serves the
namespaces tasks and sprint on 127.0.0.1:P (tests/mcp_lab.py: FastMCP, uvicorn),
connects an SDK client to each (through ``$MCPSNIFF_URL`` when set, e.g. the
proxy of ``mcpsniff ci --via proxy``), restarts the server once, waits (bounded)
until the healthy clients made a call in a new session, then exits with N. A
namespace named by ``--stale`` gets a client that keeps its old session id after
the restart (stale-session-loop).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcp_lab import ClientLog, LabServer, healthy_client, stale_client

NAMESPACES = ("tasks", "sprint")


async def wait_until(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def scenario(port: int, stale: set[str], down: float, base: str | None) -> bool:
    lab = LabServer(NAMESPACES, port=port).start()
    stop = asyncio.Event()
    logs = {ns: ClientLog() for ns in NAMESPACES}
    clients = [asyncio.create_task((stale_client if ns in stale else healthy_client)(lab.url(ns, base), stop, logs[ns])) for ns in NAMESPACES]
    ok = False
    try:
        if not await wait_until(lambda: all(log.ok for log in logs.values()), 20):
            print("scenario: clients did not connect", file=sys.stderr)
            return False
        await asyncio.sleep(0.7)
        print("scenario: restarting the server", file=sys.stderr, flush=True)
        await asyncio.to_thread(lab.restart, down)
        back = time.time()
        healthy = [logs[ns] for ns in NAMESPACES if ns not in stale]
        ok = await wait_until(lambda: all(log.ok_since(back) for log in healthy), 20)
        await asyncio.sleep(1.0)  # a few more calls: the stale client's 404 loop, the healthy ones' new sessions
        print(f"scenario: healthy clients rebound: {ok}", file=sys.stderr, flush=True)
    finally:
        stop.set()
        await asyncio.wait(clients, timeout=10)
        # No lab.stop(): it probes the port until refused, and that probe would be in the
        # capture as one more refused connection after the rebind. The process exit frees the port.
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MCPSNIFF_PORT", "0")))
    parser.add_argument("--stale", action="append", default=[], choices=NAMESPACES)
    parser.add_argument("--down", type=float, default=1.0, help="seconds the server stays down")
    parser.add_argument("--exit", type=int, default=0, help="exit code when the scenario ran")
    args = parser.parse_args()
    if not args.port:
        parser.error("--port (or MCPSNIFF_PORT) is required")
    logging.disable(logging.INFO)  # the SDK logs every request at INFO: keep CI logs readable
    ran = asyncio.run(scenario(args.port, set(args.stale), args.down, os.environ.get("MCPSNIFF_URL")))
    sys.exit(args.exit if ran else 99)


if __name__ == "__main__":
    main()
