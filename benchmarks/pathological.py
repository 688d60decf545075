"""Pathological captures: memory and speed of `mcpsniff analyze` on many connections that carry nothing.

    uv run python benchmarks/pathological.py [--connections 1000000] [--kinds handshake,closed,refused] [--workers 1] [--tree DIR ...]

Writes (with ``struct``, into a temporary folder) a classic pcap of N TCP connections to
one server port, 50 µs apart, each a bare handshake that is never used nor closed
(SYN, SYN-ACK, ACK: "handshake"), a handshake closed at once (plus FIN-ACK both ways and
the last ACK: "closed") or a refused attempt (SYN, RST-ACK: "refused"), then runs
``mcpsniff analyze --format json`` on it in a subprocess (``MCPSNIFF_WORKERS`` as
given) and prints wall and CPU time, packets/s and the peak RSS of the process.  ``--tree``
runs the mcpsniff of other checkouts too (a ``git worktree`` of an older commit), on
the same file right after this one's, for a before/after comparison in one run.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = bytes([127, 0, 0, 1])
PORT = 5076
ETH = b"\x00" * 12 + b"\x08\x00"


def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    return ETH + ip + tcp


def write(path: Path, kind: str, count: int) -> int:
    """The capture; returns its number of packets."""
    packets = 0
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_795_490_000.0
        out = []
        for i in range(count):
            client = bytes([10, (i >> 16) & 255, (i >> 8) & 255, 1 + (i % 250)])
            sport = 1024 + (i % 60000)
            isn, sisn = (i * 7919) & 0xFFFFFFFF, (i * 104729) & 0xFFFFFFFF
            frames = [frame(client, SERVER, sport, PORT, isn, 0, 0x02)]
            if kind in ("handshake", "closed"):
                frames += [frame(SERVER, client, PORT, sport, sisn, isn + 1, 0x12), frame(client, SERVER, sport, PORT, isn + 1, sisn + 1, 0x10)]
            if kind == "closed":
                frames += [frame(client, SERVER, sport, PORT, isn + 1, sisn + 1, 0x11), frame(SERVER, client, PORT, sport, sisn + 1, isn + 2, 0x11),
                           frame(client, SERVER, sport, PORT, isn + 2, sisn + 2, 0x10)]
            if kind == "refused":
                frames.append(frame(SERVER, client, PORT, sport, 0, isn + 1, 0x14))
            for n, data in enumerate(frames):
                ts = t + n * 1e-5
                sec = int(ts)
                out.append(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(data)) + data)
            packets += len(frames)
            t += 5e-5
            if len(out) > 30000:
                fh.write(b"".join(out))
                out.clear()
        fh.write(b"".join(out))
    return packets


def measure(path: Path, packets: int, workers: str, tree: Path = ROOT) -> tuple[float, float, int]:
    """(wall s, CPU s, peak RSS MiB) of `mcpsniff analyze --format json` (of checkout ``tree``) on ``path``."""
    env = {**os.environ, "MCPSNIFF_WORKERS": workers, "PYTHONPATH": str(tree)}
    # a wrapper process per run, so that its RUSAGE_CHILDREN peak is this run's alone
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
               "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(time.monotonic() - t, r.ru_utime + r.ru_stime, r.ru_maxrss, p.returncode); print(p.stderr[-500:], file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "mcpsniff", "analyze", "--format", "json", str(path)], cwd=tree, env=env, capture_output=True, text=True, check=True)
    wall_text, cpu_text, peak_kib, code = proc.stdout.split()
    if code not in ("0", "1"):
        print(f"  analyze failed ({code}): {proc.stderr.strip()}", file=sys.stderr)
    return float(wall_text), float(cpu_text), int(peak_kib) // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=1_000_000)
    parser.add_argument("--kinds", default="handshake,closed,refused")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to measure on the same files (repeatable)")
    parser.add_argument("--workers", default="1", help="MCPSNIFF_WORKERS for the analysis (default 1: the serial reader)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcpsniff-patho-") as tmp:
        for kind in args.kinds.split(","):
            path = Path(tmp) / f"{kind}.pcap"
            packets = write(path, kind, args.connections)
            size = path.stat().st_size / 1e6
            for tree in [ROOT, *args.tree]:
                wall, cpu, rss = measure(path, packets, args.workers, tree.resolve())
                print(f"{kind:9} {args.connections:>9,} connections {packets:>10,} packets {size:7.1f} MB: {wall:6.1f} s wall ({packets / wall / 1000:5.1f}k packets/s), "
                      f"{cpu:6.1f} s CPU ({packets / cpu / 1000:5.1f}k packets/s), peak RSS {rss} MiB (workers={args.workers}, {tree})", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
