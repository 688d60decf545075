"""Benchmark (not a test): what the mcpsniff addon costs on top of plain mitmdump.

In one run, against one real MCP SDK server (tests/mcp_lab.py in a subprocess):
1. per-request latency of ``tools/call`` (SSE response) through mitmdump with the addon
   and through plain mitmdump, requests alternating between the two (same machine
   noise for both); direct latency for reference. Target: ratio of medians <= 1.1.
2. the delay the proxy adds to an SSE event: the server sends notifications carrying
   their send time; arrival time minus send time, direct vs through the addon's proxy.
   (Plain mitmdump cannot take part: without an addon it buffers SSE until the stream
   ends.) Target: added median delay < 10 ms.

    uv run python benchmarks/proxy_latency.py [--requests 400] [--events 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from mcp_lab import free_port, wait_port  # noqa: E402

from mcpsniff.capture.proxy import find_mitmdump, start_proxy  # noqa: E402

HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def open_session(client: httpx.Client, url: str) -> dict[str, str]:
    """initialize + notifications/initialized by hand; returns the headers of the session."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    r = client.post(url, json=init, headers=HEADERS)
    r.raise_for_status()
    headers = {**HEADERS, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers).raise_for_status()
    return headers


def call(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> float:
    """One tools/call (echo); seconds until the whole SSE response was read."""
    body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    t = time.perf_counter()
    r = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - t
    if r.status_code != 200 or "tasks:x" not in r.text:
        raise RuntimeError(f"unexpected answer {r.status_code}: {r.text[:200]}")
    return elapsed


def sse_delays(client: httpx.Client, url: str, headers: dict[str, str], events: int) -> list[float]:
    """Arrival minus send time (s) of every notification of one ``tick`` call."""
    body = {"jsonrpc": "2.0", "id": 999, "method": "tools/call", "params": {"name": "tick", "arguments": {"count": events, "every": 0.02}}}
    delays = []
    with client.stream("POST", url, json=body, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                now = time.time()
                msg = json.loads(line[5:])
                if msg.get("method") == "notifications/message":
                    delays.append(now - float(msg["params"]["data"]))
    if len(delays) != events:
        raise RuntimeError(f"got {len(delays)} of {events} events")
    return delays


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"{name:<28} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="tools/call per path (bounded loop)")
    parser.add_argument("--events", type=int, default=100, help="SSE notifications per delay measurement")
    args = parser.parse_args()

    server_port, addon_port, plain_port = free_port(), free_port(), free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "mcp_lab.py"), "--port", str(server_port), "--ns", "tasks"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    upstream = f"http://127.0.0.1:{server_port}"
    tmp = Path(tempfile.mkdtemp(prefix="mcpsniff-bench-"))
    plain = None
    try:
        wait_port(server_port, timeout=30)
        addon = start_proxy(addon_port, upstream, tmp / "run.jsonl")
        plain = subprocess.Popen([find_mitmdump(), "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1", "-p", str(plain_port), "-q", "--set", "connection_strategy=lazy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(plain_port, timeout=30)
        paths = {"direct": server_port, "mitmdump + mcpsniff addon": addon_port, "plain mitmdump": plain_port}
        with httpx.Client(timeout=30) as client:
            sessions = {name: (f"http://127.0.0.1:{port}/tasks/mcp",) + (open_session(client, f"http://127.0.0.1:{port}/tasks/mcp"),) for name, port in paths.items()}
            for name, (url, headers) in sessions.items():  # warm up every path
                for i in range(20):
                    call(client, url, headers, i)
            times: dict[str, list[float]] = {name: [] for name in paths}
            for i in range(args.requests):  # interleaved: the same noise for every path
                for name, (url, headers) in sessions.items():
                    times[name].append(call(client, url, headers, 100 + i))
            direct_sse = sse_delays(client, *sessions["direct"], args.events)
            addon_sse = sse_delays(client, *sessions["mitmdump + mcpsniff addon"], args.events)
        addon.stop()
        records = sum(1 for _ in (tmp / "run.jsonl").open())
    finally:
        if plain is not None:
            plain.terminate()
            plain.wait(10)
        server.terminate()
        server.wait(10)

    print(f"per-request latency, tools/call with an SSE response, {args.requests} requests per path, interleaved:")
    for name, values in times.items():
        print("  " + summary(name, values))
    ratio = statistics.median(times["mitmdump + mcpsniff addon"]) / statistics.median(times["plain mitmdump"])
    print(f"  ratio addon / plain mitmdump (medians): {ratio:.3f}   target <= 1.1   {'OK' if ratio <= 1.1 else 'MISSED'}")
    print(f"  ({records} records written by the addon)")
    print(f"\nSSE event delay (server send -> client arrival), {args.events} events 20 ms apart:")
    print("  " + summary("direct", direct_sse))
    print("  " + summary("through the addon's proxy", addon_sse))
    added = (statistics.median(addon_sse) - statistics.median(direct_sse)) * 1000
    print(f"  added by the proxy (medians): {added:.2f} ms   target < 10 ms   {'OK' if added < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
