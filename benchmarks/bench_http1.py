"""HTTP layer speed: h11 (as the architecture doc suggests) vs mcpsniff.wire.http1, and the
whole HttpAssembler, on the TCP events of real MCP captures.

    uv run python benchmarks/bench_http1.py [--rounds N] [PCAP ...]

The TCP events are computed once with mcpsniff.wire.packet/tcp (that time is printed too,
as a reference measured at the same moment: the machine is shared), then replayed
``rounds`` times through each contender.  Rates are given per captured packet (ACK-only
packets included, as `mcpsniff analyze` must go through them too) so they compare with
the >= 75k packets/s goal of the whole analyze, and per data packet.
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11

from mcpsniff.wire.exchanges import HttpAssembler
from mcpsniff.wire.http1 import Http1Parser, RequestHead
from mcpsniff.wire.packet import PacketDecoder
from mcpsniff.wire.tcp import TcpReassembler
from mcpsniff.wire.tcpevents import TcpData, TcpEvent

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = sorted((ROOT / "tests" / "data" / "real").glob("*/capture.pcap"))


def read_pcap(path: Path) -> tuple[int, list[tuple[float, bytes]]]:
    """Classic pcap only (enough for the sample captures)."""
    raw = path.read_bytes()
    magic = raw[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", raw, 20)[0]
    rec = struct.Struct(endian + "IIII")
    out, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, incl, _ = rec.unpack_from(raw, off)
        off += 16
        out.append((sec + frac / (1e9 if nano else 1e6), raw[off : off + incl]))
        off += incl
    return linktype, out


def tcp_events(captures: list[tuple[int, list[tuple[float, bytes]]]]) -> list[TcpEvent]:
    """Packet decoding + TCP reassembly (the layers below the one measured here)."""
    events: list[TcpEvent] = []
    for linktype, frames in captures:
        decoder, tcp = PacketDecoder(), TcpReassembler()
        for n, (t, frame) in enumerate(frames, 1):
            seg = decoder.decode(linktype, frame)
            if seg is not None:
                events.extend(tcp.feed(t, n, seg))
        events.extend(tcp.finish(frames[-1][0]))
    return events


def run_mine(events: list[TcpEvent]) -> int:
    parsers: dict[str, tuple[Http1Parser, Http1Parser]] = {}
    count = 0
    for ev in events:
        if type(ev) is not TcpData:
            continue
        pair = parsers.get(ev.conn)
        if pair is None:
            pair = parsers[ev.conn] = (Http1Parser(True), Http1Parser(False))
        if ev.from_client:
            for hev in pair[0].feed(ev.data, ev.t, ev.frame):
                if type(hev) is RequestHead:
                    pair[1].expect(hev.method)
                count += 1
        else:
            count += len(pair[1].feed(ev.data, ev.t, ev.frame))
    return count


def run_h11(events: list[TcpEvent]) -> int:
    """Client bytes into Connection(SERVER), server bytes into Connection(CLIENT), mirrored."""
    conns: dict[str, tuple[h11.Connection, h11.Connection]] = {}
    count = 0
    for ev in events:
        if type(ev) is not TcpData:
            continue
        pair = conns.get(ev.conn)
        if pair is None:
            pair = conns[ev.conn] = (h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT))
        src, mirror = pair if ev.from_client else (pair[1], pair[0])
        src.receive_data(ev.data)
        while True:
            try:
                hev = src.next_event()
            except h11.RemoteProtocolError:
                break
            if hev is h11.NEED_DATA or hev is h11.PAUSED:
                break
            count += 1
            if isinstance(hev, h11.Request | h11.Response | h11.Data | h11.EndOfMessage):
                mirror.send(hev)
            if pair[0].our_state is h11.DONE and pair[0].their_state is h11.DONE:
                pair[0].start_next_cycle()
                pair[1].start_next_cycle()
    return count


def run_assembler(events: list[TcpEvent]) -> int:
    asm = HttpAssembler()
    count = 0
    for ev in events:
        count += len(asm.feed(ev))
    return count + len(asm.finish())


def measure(name: str, fn: Callable[[Any], object], arg: Any, rounds: int, packets: int, data_packets: int) -> float:
    fn(arg)  # warm up
    start = time.process_time()  # CPU time: less sensitive to other load on a shared machine
    for _ in range(rounds):
        fn(arg)
    elapsed = (time.process_time() - start) / rounds
    print(f"{name:<28} {packets / elapsed / 1000:9.0f}k packets/s  {elapsed / data_packets * 1e6:6.2f} us/data packet")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcaps", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    captures = [read_pcap(path) for path in args.pcaps]
    packets = sum(len(frames) for _, frames in captures)
    events = tcp_events(captures)
    data_packets = sum(1 for ev in events if type(ev) is TcpData)
    print(f"{len(args.pcaps)} capture(s): {packets} packets, {data_packets} data events, {len(events)} TCP events; {args.rounds} round(s) each, CPU time")
    t_tcp = measure("(reference) packet+TCP", tcp_events, captures, args.rounds, packets, data_packets)
    t_h11 = measure("h11 pair (mirrored)", run_h11, events, args.rounds, packets, data_packets)
    t_mine = measure("wire.http1 parsers", run_mine, events, args.rounds, packets, data_packets)
    t_all = measure("wire.exchanges (records)", run_assembler, events, args.rounds, packets, data_packets)
    print(f"http1 parsers vs h11: {t_h11 / t_mine:.1f}x faster")
    print(f"HTTP layer (exchanges) costs {t_all / t_tcp:.2f}x the packet+TCP layers below it")


if __name__ == "__main__":
    main()
