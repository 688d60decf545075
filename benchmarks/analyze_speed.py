"""Speed and memory of `mcpsniff analyze` on a big pcap, side by side with tshark.

Not a test: prints numbers.  It writes a realistic MCP capture with ``struct``
(Ethernet/IPv4/TCP on loopback, like `tcpdump -i lo`) in one of three traffic shapes
(``--shape``, one parameterised generator):

  keepalive  40 namespaces, TS SDK-like clients: keep-alive POSTs answered with chunked
             SSE (every fifth with 3 progress events), standalone GET streams
  sse        4 namespaces, each call answered with 24 progress events before its result
             (an event per packet), a busy GET stream, a Date header that changes each second
  python     12 namespaces, Python SDK-like clients: a connection per request (head and
             body in two segments), the client resets it after the answer, JSON and SSE
             answers, a changing Date header

Every shape has server restarts with refused SYNs, 404 on the stale session and
re-initialize.  Then, in one run, it times

  uv run mcpsniff analyze FILE --format json
  tshark -r FILE -Y http -T fields -e frame.time_epoch -e http.request.method ...

and prints packets/s of both (wall and CPU: the machine may be shared), both ratios
and each one's peak RSS.  The layers below ``analyze`` are timed too (``--levels``),
so a slow part shows itself.  ``--scale K`` runs again on a K times larger file to
show whether memory stays flat.

  uv run python benchmarks/analyze_speed.py                    # 1,000,000 packets, then x4
  uv run python benchmarks/analyze_speed.py --shape all --scale 0 --levels analyze
  uv run python benchmarks/analyze_speed.py --shape all --scale 0 --levels analyze,serial --repeat 3
  uv run python benchmarks/analyze_speed.py --packets 100000 --scale 0
  uv run python benchmarks/analyze_speed.py --levels layers    # reading + packet decode + TCP only
  uv run python benchmarks/analyze_speed.py --write FILE --shape sse   # only write the capture
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_PORT = 18300
LO = b"\x7f\x00\x00\x01"
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
TOOLS = json.dumps({"tools": [{"name": f"tool_{i}", "description": f"Tool number {i} of this namespace", "inputSchema": {"type": "object", "properties": {"arg": {"type": "string"}}}} for i in range(7)]})


class PcapWriter:
    """Writes Ethernet/IPv4/TCP frames between 127.0.0.1 ports, with TCP timestamp options."""

    def __init__(self, path: Path) -> None:
        self.f = path.open("wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.count = 0
        self._rec = struct.Struct("<IIII").pack
        self._ip = struct.Struct("!14xBBHHHBBH4s4sHHIIBBHHH4sII").pack_into

    def packet(self, t: float, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        frame = bytearray(66)
        self._ip(frame, 0, 0x45, 0, 52 + len(payload), self.count & 0xFFFF, 0x4000, 64, 6, 0, LO, LO, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x80, flags, 512, 0, 0, b"\x01\x01\x08\x0a", int(t * 1000) & 0xFFFFFFFF, 0)
        frame[12:14] = b"\x08\x00"
        sec = int(t)
        self.f.write(self._rec(sec, int((t - sec) * 1e6), 66 + len(payload), 66 + len(payload)))
        self.f.write(frame)
        self.f.write(payload)
        self.count += 1

    def close(self) -> None:
        self.f.close()


class Conn:
    """One client connection to the server; every data segment is ACKed by the peer."""

    def __init__(self, w: PcapWriter, port: int) -> None:
        self.w, self.port = w, port
        self.cseq, self.sseq = (port * 7919) & 0xFFFFFFF, (port * 104729) & 0xFFFFFFF

    def open(self, t: float) -> float:
        w, p = self.w, self.port
        w.packet(t, p, SERVER_PORT, self.cseq, 0, SYN)
        w.packet(t + 1e-5, SERVER_PORT, p, self.sseq, self.cseq + 1, SYN | ACK)
        self.cseq += 1
        self.sseq += 1
        w.packet(t + 2e-5, p, SERVER_PORT, self.cseq, self.sseq, ACK)
        return t + 3e-5

    def refused(self, t: float) -> float:
        self.w.packet(t, self.port, SERVER_PORT, self.cseq, 0, SYN)
        self.w.packet(t + 1e-5, SERVER_PORT, self.port, 0, self.cseq + 1, RST | ACK)
        return t + 2e-5

    def send(self, t: float, from_client: bool, data: bytes) -> float:
        w, p = self.w, self.port
        if from_client:
            w.packet(t, p, SERVER_PORT, self.cseq, self.sseq, PSH | ACK, data)
            self.cseq += len(data)
            w.packet(t + 2e-5, SERVER_PORT, p, self.sseq, self.cseq, ACK)
        else:
            w.packet(t, SERVER_PORT, p, self.sseq, self.cseq, PSH | ACK, data)
            self.sseq += len(data)
            w.packet(t + 2e-5, p, SERVER_PORT, self.cseq, self.sseq, ACK)
        return t + 4e-5

    def reset(self, t: float) -> float:
        """The client aborts the connection (RST), as httpx does after a Python SDK 1.x request."""
        self.w.packet(t, self.port, SERVER_PORT, self.cseq, self.sseq, RST | ACK)
        return t + 1e-5

    def close(self, t: float, by_client: bool) -> float:
        w, p = self.w, self.port
        a, b = (p, SERVER_PORT) if by_client else (SERVER_PORT, p)
        sa, sb = (self.cseq, self.sseq) if by_client else (self.sseq, self.cseq)
        w.packet(t, a, b, sa, sb, FIN | ACK)
        w.packet(t + 1e-5, b, a, sb, sa + 1, FIN | ACK)
        w.packet(t + 2e-5, a, b, sa + 1, sb + 1, ACK)
        return t + 3e-5


@dataclass(frozen=True)
class Shape:
    """One traffic shape: what the clients and the server of the generated capture do."""

    namespaces: int
    notify: int  # progress events before the result of every ``notify_every``-th call
    notify_every: int
    get_every: int  # a notification on the GET stream after every ``get_every``-th call
    per_request: bool  # a connection per request, reset by the client after the answer (Python SDK 1.x)
    python_headers: bool  # httpx's request heads (Host, Accept-Encoding, User-Agent python-httpx) instead of Node fetch's
    dates: bool  # a Date header that changes every second (False: one fixed head, as the first benchmark had)
    json_every: int  # every n-th answer is plain JSON instead of an SSE stream (0: never)
    retries: tuple[float, ...]  # s after the server went down at which each namespace's connection is refused


SHAPES = {
    "keepalive": Shape(40, 3, 5, 4, False, False, False, 0, (1.0, 2.5)),
    "sse": Shape(4, 24, 1, 1, False, False, True, 0, (1.0, 2.5)),
    "python": Shape(12, 0, 1, 6, True, True, True, 3, (1.0, 2.0)),
}


def _http_date(t: float, shape: Shape) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t)) if shape.dates else "Tue, 24 Nov 2026 01:47:57 GMT"


def _post(ns: str, body: dict, session: str | None, shape: Shape | None = None) -> tuple[bytes, bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    if shape is not None and shape.python_headers:
        head = f"POST /{ns}/mcp HTTP/1.1\r\nHost: 127.0.0.1:{SERVER_PORT}\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nUser-Agent: python-httpx/0.28.1\r\n"
        if session:
            head += f"mcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25\r\n"
        head += f"accept: application/json, text/event-stream\r\ncontent-type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        return head.encode(), data
    head = f"POST /{ns}/mcp HTTP/1.1\r\nhost: 127.0.0.1:{SERVER_PORT}\r\nconnection: keep-alive\r\n"
    if session:
        head += f"mcp-session-id: {session}\r\nmcp-protocol-version: 2025-11-25\r\n"
    head += f"content-type: application/json\r\naccept: application/json, text/event-stream\r\nuser-agent: node\r\ncontent-length: {len(data)}\r\n\r\n"
    return head.encode(), data


def _sse_head(session: str, date: str = "Tue, 24 Nov 2026 01:47:57 GMT") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ndate: {date}\r\nserver: uvicorn\r\ncache-control: no-cache, no-transform\r\n"
        f"connection: keep-alive\r\ncontent-type: text/event-stream\r\nmcp-session-id: {session}\r\nx-accel-buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


def _json_answer(session: str, date: str, event: dict) -> bytes:
    body = json.dumps(event, separators=(",", ":")).encode()
    head = f"HTTP/1.1 200 OK\r\ndate: {date}\r\nserver: uvicorn\r\ncontent-type: application/json\r\nmcp-session-id: {session}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _chunk(event: dict) -> bytes:
    data = b"event: message\r\ndata: " + json.dumps(event, separators=(",", ":")).encode() + b"\r\n\r\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


class Namespace:
    """One MCP client/namespace: a POST connection (keep-alive, or one per request) and a GET SSE stream."""

    def __init__(self, w: PcapWriter, name: str, ports: Iterator[int], shape: Shape = SHAPES["keepalive"]) -> None:
        self.w, self.name, self.ports, self.shape = w, name, ports, shape
        self.session = ""
        self.rpc_id = 0
        self.generation = 0
        self.post: Conn | None = None
        self.get: Conn | None = None
        self.calls = 0
        self.answers = 0

    def _conn(self, t: float) -> tuple[Conn, float]:
        """The connection for the next request: the keep-alive one, or a new one per request."""
        if self.post is None or self.shape.per_request:
            self.post = Conn(self.w, next(self.ports))
            t = self.post.open(t)
        return self.post, t

    def _done(self, c: Conn, t: float) -> float:
        """After an answer: a Python SDK 1.x client resets its connection."""
        if self.shape.per_request:
            t = c.reset(t + 2e-4)
            self.post = None
        return t

    def _call(self, t: float, method: str, params: dict | None, result: dict, notify: int = 0, session: str | None = None) -> float:
        c, t = self._conn(t)
        self.rpc_id += 1
        body = {"method": method, "jsonrpc": "2.0", "id": self.rpc_id}
        if params is not None:
            body["params"] = params
        head, data = _post(self.name, body, self.session if session is None else session, self.shape)
        t = c.send(t, True, head)
        t = c.send(t + 1e-4, True, data)
        answer = {"jsonrpc": "2.0", "id": self.rpc_id, "result": result}
        date = _http_date(t, self.shape)
        self.answers += 1
        if self.shape.json_every and not notify and self.answers % self.shape.json_every == 0:
            t = c.send(t + 2e-3, False, _json_answer(self.session, date, answer))
            return self._done(c, t)
        t = c.send(t + 2e-3, False, _sse_head(self.session, date))
        for i in range(notify):
            t = c.send(t + 1e-3, False, _chunk({"method": "notifications/progress", "params": {"progressToken": self.rpc_id, "progress": i + 1, "total": notify}, "jsonrpc": "2.0"}))
        t = c.send(t + 1e-3, False, _chunk(answer))
        return self._done(c, c.send(t + 1e-4, False, b"0\r\n\r\n"))

    def initialize(self, t: float) -> float:
        self.generation += 1
        self.session = hashlib.md5(f"{self.name}/{self.generation}".encode()).hexdigest()
        t = self._call(t, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}, {"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": False}}, "serverInfo": {"name": self.name, "version": "1.30.0"}}, session="")
        head, data = _post(self.name, {"method": "notifications/initialized", "jsonrpc": "2.0"}, self.session, self.shape)
        c, t = self._conn(t + 1e-3)
        t = c.send(t, True, head + data)
        t = self._done(c, c.send(t + 1e-3, False, b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"))
        self.get = Conn(self.w, next(self.ports))
        t = self.get.open(t + 1e-3)
        get = f"GET /{self.name}/mcp HTTP/1.1\r\nhost: 127.0.0.1:{SERVER_PORT}\r\naccept: text/event-stream\r\nmcp-session-id: {self.session}\r\n\r\n"
        t = self.get.send(t, True, get.encode())
        t = self.get.send(t + 1e-3, False, _sse_head(self.session, _http_date(t, self.shape)))
        return self._call(t + 1e-3, "tools/list", None, json.loads(TOOLS))

    def tick(self, t: float) -> float:
        """One tools/call (some with progress events), sometimes a notification on the GET stream."""
        shape = self.shape
        self.calls += 1
        if self.post is not None and not shape.per_request and self.calls % 150 == 0:  # the keep-alive connection is recycled
            self.post.close(t, by_client=False)
            self.post = None
            t += 1e-3
        text = json.dumps({"ns": self.name, "n": self.calls})
        t = self._call(t, "tools/call", {"name": "tool_1", "arguments": {"arg": "x" * (self.calls % 40)}}, {"content": [{"type": "text", "text": text}], "isError": False}, notify=shape.notify if self.calls % shape.notify_every == 0 else 0)
        if self.get is not None and self.calls % shape.get_every == 0:
            t = self.get.send(t + 1e-3, False, _chunk({"method": "notifications/message", "params": {"level": "info", "data": f"tick {self.calls}"}, "jsonrpc": "2.0"}))
        return t

    def server_down(self, t: float) -> float:
        for c in (self.get, self.post):
            if c is not None:
                t = c.close(t, by_client=False) + 1e-4
        self.get = self.post = None
        return t

    def refused(self, t: float) -> None:
        Conn(self.w, next(self.ports)).refused(t)

    def reconnect(self, t: float) -> float:
        """After the restart: 404 on the old session, then a new session."""
        c, t = self._conn(t)
        self.rpc_id += 1
        head, data = _post(self.name, {"method": "tools/call", "params": {"name": "tool_1", "arguments": {}}, "jsonrpc": "2.0", "id": self.rpc_id}, self.session, self.shape)
        t = c.send(t, True, head + data)
        err = b'{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Session not found"}}'
        t = self._done(c, c.send(t + 1e-3, False, b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(err), err)))
        return self.initialize(t + 1e-3)


def _ports() -> Iterator[int]:
    while True:
        yield from range(32768, 61000)


def generate(path: Path, packets: int, namespaces: int | None = None, restarts: int = 3, shape: str = "keepalive") -> int:
    """Write a capture of ``shape`` with at least ``packets`` packets; returns the exact count.

    ``namespaces`` overrides the shape's number of namespaces.
    """
    spec = SHAPES[shape]
    w = PcapWriter(path)
    ports = _ports()
    nss = [Namespace(w, f"ns{i:02d}", ports, spec) for i in range(namespaces or spec.namespaces)]
    t = 1_795_000_000.0
    for ns in nss:
        t = ns.initialize(t + 0.01)
    restart_every = packets // (restarts + 1) if restarts else packets * 2
    next_restart = restart_every
    while w.count < packets:
        start = t
        for i, ns in enumerate(nss):
            t = max(t, start + 0.7 * i / len(nss))
            t = ns.tick(t)
        t = max(t, start + 0.7)
        if w.count >= next_restart and w.count < packets * 0.95:
            next_restart += restart_every
            down = t
            for ns in nss:
                t = ns.server_down(t)
            attempts = sorted((down + 0.01 * i + delay, i) for delay in spec.retries for i in range(len(nss)))
            for at, i in attempts:  # refused while the server is down
                nss[i].refused(at)
            t = down + 5.0
            for ns in nss:
                t = ns.reconnect(t + 0.01)
    w.close()
    return w.count


# ---------------------------------------------------------------- measuring
@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds (the machine is shared: this one is steadier)
    rss_mib: float  # peak resident set size, children included
    code: int


def run_timed(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> Run:
    """Run cmd with stdout to ``out``; wall and CPU time and peak RSS from wait4 (this child only)."""
    errpath = out.with_suffix(".err")
    start = time.perf_counter()
    with out.open("wb") as f, errpath.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=f, stderr=err, cwd=ROOT, env={**os.environ, **env} if env else None)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # already reaped by wait4
    if code not in (0, 1):
        print(f"  ! {' '.join(cmd[:5])} ... exited {code}: {errpath.read_text(errors='replace').strip()[-500:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)


LAYERS = """
import sys
from pathlib import Path
from mcpsniff.capture.pcap import FrameReader
from mcpsniff.wire.packet import PacketDecoder
from mcpsniff.wire.tcp import TcpReassembler
decode = PacketDecoder().decode; tcp = TcpReassembler(); feed = tcp.feed; events = 0; t = 0.0
with FrameReader(Path(sys.argv[1])) as frames:
    for t, num, lt, data in frames:
        seg = decode(lt, data)
        if seg is not None:
            events += len(feed(t, num, seg))
print(events + len(tcp.finish(t)), "tcp events")
"""
RECORDS = """
import sys
from pathlib import Path
from mcpsniff.capture.pcap import read_capture
print(sum(1 for _ in read_capture(Path(sys.argv[1]))), "records")
"""
_MCPSNIFF = Path(sys.executable).with_name("mcpsniff")  # the venv's console script: no `uv run` start-up in the timing
_ANALYZE = [_MCPSNIFF.as_posix() if _MCPSNIFF.exists() else "mcpsniff", "analyze", "{}", "--format", "json", "--no-progress"]
LEVELS = {  # what is timed (label, command, environment): our layers alone, the records pipeline (+ HTTP/SSE), the whole analysis
    "layers": ("read+decode+tcp (python -c)", [sys.executable, "-c", LAYERS, "{}"], {}),
    "records": ("read_capture -> records (python -c)", [sys.executable, "-c", RECORDS, "{}"], {}),
    "analyze": ("mcpsniff analyze --format json", _ANALYZE, {}),
    "serial": ("  the same, MCPSNIFF_WORKERS=1", _ANALYZE, {"MCPSNIFF_WORKERS": "1"}),
}
TSHARK = ["tshark", "-r", "{}", "-Y", "http", "-T", "fields", "-e", "frame.time_epoch", "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code"]
GOAL_WALL, GOAL_CPU = 10.0, 5.0  # issue 14: at least this many times tshark's speed


def measure(label: str, template: list[str], cap: Path, packets: int, work: Path, env: dict[str, str] | None = None) -> Run:
    name = "".join(ch if ch.isalnum() else "-" for ch in label.split(" (")[0].strip())[:40]
    run = run_timed([cap.as_posix() if a == "{}" else a for a in template], work / f"{cap.stem}.{name}.out", env)
    print(f"{label:38s} {run.wall:7.1f} s wall {packets / run.wall:10,.0f} packets/s   {run.cpu:7.1f} s CPU {packets / run.cpu:10,.0f} packets/s   peak RSS {run.rss_mib:6.0f} MiB", flush=True)
    return run


def capture_file(work: Path, packets: int, namespaces: int | None, restarts: int, shape: str) -> tuple[Path, int]:
    cap = work / f"bench-{shape}-{packets}-{namespaces or SHAPES[shape].namespaces}-{restarts}.pcap"
    count = cap.with_suffix(".count")
    if cap.exists() and count.exists():  # kept from an earlier run (--keep)
        return cap, int(count.read_text())
    t0 = time.perf_counter()
    n = generate(cap, packets, namespaces, restarts, shape)
    count.write_text(str(n))
    print(f"generated {cap.name}: {n:,} packets, {cap.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s", flush=True)
    return cap, n


def bench_shape(shape: str, args: argparse.Namespace, levels: list[str], work: Path) -> None:
    """Time every level and tshark on one shape, back to back; print both ratios of each analyze level.

    With ``--repeat N`` the whole round (every level, then tshark) runs N times and each
    command's best wall and best CPU time count, the same for both tools: on a shared
    machine a run can be 30% slower than the next, and the best one is the least disturbed.
    """
    print(f"== shape {shape}: {SHAPES[shape]}", flush=True)
    cap, n = capture_file(work, args.packets, args.namespaces, args.restarts, shape)
    tshark = not args.no_tshark and shutil.which("tshark")
    rounds: list[dict[str, Run]] = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"-- round {i + 1} of {args.repeat}", flush=True)
        done = {level: measure(LEVELS[level][0], LEVELS[level][1], cap, n, work, LEVELS[level][2]) for level in levels}
        if tshark:
            done["tshark"] = measure("tshark -Y http -T fields", TSHARK, cap, n, work)
        rounds.append(done)
    best = {name: Run(min(r[name].wall for r in rounds), min(r[name].cpu for r in rounds), max(r[name].rss_mib for r in rounds), rounds[0][name].code) for name in rounds[0]}
    if args.repeat > 1:
        print(f"-- best of {args.repeat} rounds")
        for name, run in best.items():
            print(f"{(LEVELS[name][0] if name in LEVELS else 'tshark -Y http -T fields'):38s} {run.wall:7.1f} s wall   {run.cpu:7.1f} s CPU   (worst {max(r[name].wall for r in rounds):.1f} s wall)")
    runs = {level: best[level] for level in levels}
    if tshark:
        theirs = best["tshark"]
        for level, ours in runs.items():
            wall, cpu = theirs.wall / ours.wall, theirs.cpu / ours.cpu
            met = "goal met" if wall >= GOAL_WALL and cpu >= GOAL_CPU else f"goal {GOAL_WALL:.0f}x wall, {GOAL_CPU:.0f}x CPU"
            print(f"ratio {shape} {level}: {wall:.1f}x wall, {cpu:.1f}x CPU ({met}); peak RSS {ours.rss_mib:.0f} MiB vs tshark {theirs.rss_mib:.0f} MiB", flush=True)
    if args.scale > 1:
        big, m = capture_file(work, args.packets * args.scale, args.namespaces, args.restarts * args.scale, shape)
        for level in levels:
            run = measure(f"x{args.scale}: {LEVELS[level][0].strip()}", LEVELS[level][1], big, m, work, LEVELS[level][2])
            print(f"  memory: peak RSS x{run.rss_mib / runs[level].rss_mib:.2f} for x{m / n:.1f} packets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="keepalive", help=f"traffic shape: {', '.join(SHAPES)} or all (default keepalive)")
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets in the capture (default 1,000,000)")
    ap.add_argument("--namespaces", type=int, default=None, help="override the shape's number of namespaces")
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--scale", type=int, default=4, help="also run on a file this many times larger, to show memory stays flat (0: skip)")
    ap.add_argument("--levels", default="layers,records,analyze", help="what to time, comma-separated: " + ", ".join(f"{k} = {v[0].strip()}" for k, v in LEVELS.items()))
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="run every command this many times (interleaved) and count each one's best (default 1)")
    ap.add_argument("--keep", type=Path, help="directory to keep (and reuse) the generated captures in")
    ap.add_argument("--write", type=Path, metavar="FILE", help="only write the capture of --shape to FILE and print its packet count")
    args = ap.parse_args()
    shapes = list(SHAPES) if args.shape == "all" else [args.shape]
    if any(shape not in SHAPES for shape in shapes):
        ap.error(f"--shape: choose from {', '.join(SHAPES)} or all")
    if args.write is not None:
        if len(shapes) != 1:
            ap.error("--write: one --shape")
        print(generate(args.write, args.packets, args.namespaces, args.restarts, shapes[0]))
        return
    if args.repeat < 1:
        ap.error("--repeat: at least 1")
    levels = [level.strip() for level in args.levels.split(",") if level.strip()]
    if not levels or any(level not in LEVELS for level in levels):
        ap.error(f"--levels: choose from {', '.join(LEVELS)}")

    work = args.keep or Path(tempfile.mkdtemp(prefix="mcpsniff-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores", flush=True)
    try:
        for shape in shapes:
            bench_shape(shape, args, levels, work)
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} at the end")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
