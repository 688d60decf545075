"""Benchmark (not a test): `mcpsniff watch` capturing live under 2,000 MCP requests/s on loopback.

What runs, all on 127.0.0.1:
- a light MCP streamable-HTTP server (benchmarks/watch_load.mjs, plain Node: stateful sessions,
  initialize / notifications/initialized / tools/list / tools/call answered on SSE streams,
  404 "Session not found" for an unknown session id), four namespaces on one port;
- a paced load client (the same file): one MCP session per namespace, 4 keep-alive connections
  each, tools/call at --rate requests/s in all for --seconds; after a failure tasks, dev-agents
  and ci-infra re-initialize (1, 2, 4, 8 s), sprint keeps its old session id (a 404 loop);
- the server restarted once (--restart-at, down --down s): a new process, no sessions;
- `mcpsniff watch --port P -o load.pcapng --view lines` capturing it live (the process measured),
  and beside it `tcpdump -i lo -w` of the same port as an independent count of the packets.

Reported: requests sent and answered, the watch process's CPU (mean over the load and the
busiest second), packets it wrote vs tcpdump's, kernel drops (PACKET_STATISTICS of its socket,
tcpdump's own), frames the analysis did not get (backlog full) and the peak backlog, snapshot
times, the state lines it printed per namespace, and whether its final report equals
`mcpsniff analyze load.pcapng --port P` (and the analysis of tcpdump's file).

    uv run python benchmarks/watch_load.py [--rate 2000] [--seconds 60] [--restart-at 30] [--down 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mcpsniff.api import analyze_files  # noqa: E402
from mcpsniff.report.text import render_text  # noqa: E402

NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("watch_load.mjs")
NAMESPACES = "tasks,dev-agents,sprint,ci-infra"
POLICIES = "tasks=healthy,dev-agents=healthy,sprint=stale,ci-infra=healthy"
TICK = os.sysconf("SC_CLK_TCK")
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} +\+[\d.]+s (\S+) +(connected|disrupted|retrying|rebound|stalled) +(.*)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int, reaped: bool = True) -> float:
    """utime + stime of a process (all its threads), and with ``reaped`` of its children it has
    waited for (the snapshots the watch takes in forked children once they get slow)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if reaped else 13]) / TICK


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def read_until(proc: subprocess.Popen[bytes], stream: str, marker: str, timeout: float) -> str:
    pipe = getattr(proc, stream)
    fd, seen, deadline = pipe.fileno(), b"", time.monotonic() + timeout
    while marker.encode() not in seen:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{marker!r} not seen: {seen.decode(errors='replace')[-500:]}")
        if select.select([fd], [], [], 0.2)[0]:
            seen += os.read(fd, 65536)
    return seen.decode(errors="replace")


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([NODE, str(SCRIPT), "server", str(port), NAMESPACES], stdout=subprocess.PIPE, stderr=log.open("ab"), start_new_session=True)
    read_until(proc, "stdout", "ready", 30)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=2000.0, help="MCP requests per second in all")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--restart-at", type=float, default=30.0, help="seconds into the load (0: no restart)")
    ap.add_argument("--down", type=float, default=2.0, help="seconds the server stays down")
    ap.add_argument("--per-ns", type=int, default=4, help="keep-alive connections per namespace")
    ap.add_argument("--keep", type=Path, help="keep the captures in this folder")
    args = ap.parse_args()
    if NODE is None:
        print("needs node (Debian: apt-get install nodejs)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="mcpsniff-watch-load-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    pcapng, reference = work / "load.pcapng", work / "tcpdump.pcap"
    logs = {name: work / f"{name}.log" for name in ("server", "tcpdump", "client")}
    from mcpsniff.demo import tcpdump

    server = start_server(port, logs["server"])
    dump = tcpdump.start(port, reference, logs["tcpdump"])
    watch = subprocess.Popen([sys.executable, "-m", "mcpsniff", "watch", "--port", str(port), "-o", str(pcapng), "--view", "lines"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    client = None
    try:
        read_until(watch, "stderr", "mcpsniff: watching", 60)
        capture_pid = children(watch.pid)[0]  # the capture process (python -m mcpsniff.watch capture ...)
        cpu0, t0 = cpu_seconds(watch.pid), time.monotonic()
        ccpu0 = cpu_seconds(capture_pid)
        scpu0 = cpu_seconds(server.pid)
        client = subprocess.Popen([NODE, str(SCRIPT), "client", str(port), str(args.rate), str(args.seconds), POLICIES, str(args.per_ns)], stdout=subprocess.PIPE, stderr=logs["client"].open("ab"))
        samples, restarted, server_cpu = [], False, float("nan")
        while client.poll() is None:
            time.sleep(1.0)
            samples.append((time.monotonic(), cpu_seconds(watch.pid, reaped=False) + cpu_seconds(capture_pid)))  # (a child's CPU counts when reaped: not per second)
            if args.restart_at and not restarted and time.monotonic() - t0 >= args.restart_at:
                restarted = True
                server_cpu = cpu_seconds(server.pid) - scpu0
                stop(server)
                time.sleep(args.down)
                server = start_server(port, logs["server"])
        cpu1, t1, ccpu1 = cpu_seconds(watch.pid), time.monotonic(), cpu_seconds(capture_pid)
        load = json.loads(client.stdout.read().decode() or "{}")  # type: ignore[union-attr]
        time.sleep(3.0)  # the last snapshots
        stop(watch)
        out, err = (b.decode() for b in watch.communicate())
    finally:
        for proc in (client, watch, server):
            if proc is not None:
                stop(proc, timeout=10)
        counts = dump.stop()
    busiest = max((c2 - c1) / (s2 - s1) for (s1, c1), (s2, c2) in zip(samples, samples[1:])) if len(samples) > 1 else float("nan")
    summary = next((line for line in err.splitlines() if line.startswith("mcpsniff watch:")), "")
    print(f"load: {load.get('sent', 0)} tools/call sent in {load.get('seconds', 0):.1f} s ({load.get('rate', 0):.0f}/s), {load.get('ok', 0)} answered, "
          f"{load.get('failed', 0)} failed ({load.get('refused', 0)} refused, {load.get('notFound', 0)} 404), {load.get('reinitialized', 0)} re-initializations")
    per = [n or 0 for n in load.get("perSecond", [])]
    steady = per[1 : int(args.restart_at)] if args.restart_at else per[1:-1]
    if steady:
        print(f"  requests/s before the restart (seconds 1..{len(steady)}): mean {sum(steady) / len(steady):.0f}, min {min(steady)}, max {max(steady)}; after it: mean {sum(per[int(args.restart_at) + 5:]) / max(1, len(per[int(args.restart_at) + 5:])):.0f}")
    span, parent, capture = t1 - t0, cpu1 - cpu0, ccpu1 - ccpu0
    sent = max(1, load.get("sent", 0))
    print(f"watch CPU over the load ({span:.1f} s): analysis process (and its snapshot children) {parent / span:.2f} cores ({parent:.1f} s), capture process {capture / span:.2f} cores ({capture:.1f} s), "
          f"together {(parent + capture) / span:.2f} cores, busiest second {busiest:.2f} (snapshot children aside); per 1,000 requests: {1000 * parent / sent:.2f} + {1000 * capture / sent:.2f} CPU s")
    print(f"  (the server used {server_cpu:.1f} CPU s before the restart; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(summary)
    m = re.search(r"(\d+) packets analyzed", summary)
    written = int(m.group(1)) if m else -1
    print(f"tcpdump (reference): {counts.get('captured', '?')} packets captured, {counts.get('received', '?')} received by filter, {counts.get('dropped', '?')} dropped by kernel; watch wrote and analyzed {written}")
    seqs: dict[str, list[str]] = {}
    for line in out.splitlines():
        hit = LINE.match(line)
        if hit and (not seqs.get(hit.group(1)) or seqs[hit.group(1)][-1] != hit.group(2)):
            seqs.setdefault(hit.group(1), []).append(hit.group(2))
    for ns, states in seqs.items():
        print(f"  {ns:<11} {' -> '.join(states)}")
    print("state lines:", sum(1 for line in out.splitlines() if LINE.match(line)))
    started = time.monotonic()
    analysis = analyze_files([pcapng], ports=[port], full=False)
    took = time.monotonic() - started
    expected = render_text(analysis, color=False)
    shown = out.split("\n\n", 1)[1].rstrip("\n") if "\n\n" in out else ""
    same = shown == expected.rstrip("\n")
    reference_same = [(ns.name, ns.diagnosis.verdict) for ns in analyze_files([reference], ports=[port], full=False).namespaces] == [(ns.name, ns.diagnosis.verdict) for ns in analysis.namespaces]
    print(f"final report of the watch == analyze of load.pcapng --port {port} (took {took:.1f} s): {same}; same verdicts from tcpdump's capture: {reference_same}")
    print("  " + ", ".join(f"{ns.name} {ns.diagnosis.verdict}" + (f" [{ns.diagnosis.signature}]" if ns.diagnosis.signature else "") for ns in analysis.namespaces))
    if not same:
        (work / "watch-report.txt").write_text(shown)
        (work / "analyze-report.txt").write_text(expected)
        print(f"  reports differ: see {work}/watch-report.txt and analyze-report.txt")
    if args.keep is None and same:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"files in {work}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
