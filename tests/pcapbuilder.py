"""Realistic synthetic loopback captures, TCP layer: a clock, connections, pcap/pcapng files.

Why: the analysis must be held to every stall signature, and real captures of most of them
cannot be made on demand.  This module writes TCP the way Linux does on ``lo`` (handshake
with MSS/SACK/timestamps/window scale, seq/ack, an ACK per segment, FIN/RST, SYNs refused
with RST-ACK) and writes it with scapy in any link type (Ethernet, Linux SLL/SLL2, BSD NULL,
raw IP), IPv4 or IPv6, pcap or pcapng, optionally with the duplicate copy AF_PACKET shows on
``lo``.  tests/mcptraffic.py puts MCP streamable-HTTP traffic on top.

Frame numbers are the 1-based index in ``Capture.segs`` (``file_frame`` maps them into a file
written with loopback duplicates), so a scenario can name the frame of its stall point.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

T0 = 1795490000.0  # capture start (epoch seconds), close to the real captures
LOOPBACK_MSS = 65483
LINKS = {"ether": 1, "null": 0, "raw": 101, "sll": 113, "sll2": 276}  # name -> LINKTYPE_*

Process = Generator[float, None, None]  # yields seconds to sleep


# --------------------------------------------------------------------------- TCP


@dataclass(slots=True)
class Seg:
    """One TCP segment as it crossed ``lo`` (addresses are chosen when writing)."""

    t: float
    sport: int
    dport: int
    flags: str  # scapy flag letters: "S", "SA", "A", "PA", "FA", "RA", "R"
    seq: int
    ack: int
    payload: bytes = b""
    win: int = 64
    opts: str = "ts"  # "syn", "ts" or "" (RST of a refused SYN carries none)
    tsval: int = 0
    tsecr: int = 0


class Tcp:
    """One TCP connection; seq/ack follow the bytes each side really sent."""

    def __init__(self, cap: Capture, client_port: int, server_port: int) -> None:
        self.cap, self.cport, self.sport = cap, client_port, server_port
        rng = cap.rng
        self.next_seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}  # key: from_client
        self._ts_off = {True: rng.getrandbits(31), False: rng.getrandbits(31)}
        self._last_ts = {True: 0, False: 0}
        self.client_open = True  # the client still uses the socket
        self.server_open = True  # the server process still has the socket
        self.idle = False  # a keep-alive connection waiting for its next request
        self.idle_since = 0.0
        self.stream_of: str | None = None  # session id whose GET stream this connection carries
        self.last_event_id: str | None = None  # last SSE id the server sent on it
        self.busy_streaming = False  # a streamed response (GET or POST SSE) is still open

    def _ts(self, from_client: bool) -> int:
        return (int(self.cap.now * 1000) + self._ts_off[from_client]) & 0xFFFFFFFF

    def emit(self, from_client: bool, flags: str, payload: bytes = b"", opts: str = "ts", win: int = 64) -> int:
        """Write one segment; returns its frame number."""
        seq = self.next_seq[from_client]
        ack = self.next_seq[not from_client] if "A" in flags else 0
        tsval = self._ts(from_client)
        seg = Seg(
            t=0.0,
            sport=self.cport if from_client else self.sport,
            dport=self.sport if from_client else self.cport,
            flags=flags,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF,
            payload=payload,
            win=win,
            opts=opts,
            tsval=tsval,
            tsecr=self._last_ts[not from_client],
        )
        self._last_ts[from_client] = tsval
        self.next_seq[from_client] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        return self.cap.emit(seg)

    def handshake(self) -> int:
        frame = self.emit(True, "S", opts="syn", win=65495)
        self.emit(False, "SA", opts="syn", win=65483)
        self.emit(True, "A")
        return frame

    def send(self, from_client: bool, data: bytes, acked: bool = True) -> int:
        """Send bytes in segments of at most ``cap.mss``, each ACKed by the peer if ``acked``; returns the first frame."""
        first = 0
        for start in range(0, len(data), self.cap.mss):
            frame = self.emit(from_client, "PA", data[start : start + self.cap.mss])
            first = first or frame
            if acked:
                self.emit(not from_client, "A")
        return first

    def close(self, by_client: bool, peer_closes: bool = True) -> int:
        """FIN from one side; the peer answers with its own FIN (or only ACKs, half-open)."""
        frame = self.emit(by_client, "FA")
        if peer_closes:
            self.cap.advance(self.cap.rng.uniform(0.0002, 0.0015))
            self.emit(not by_client, "FA")
            self.emit(by_client, "A")
            self.client_open = self.server_open = False
        else:
            self.emit(not by_client, "A")
            if by_client:
                self.client_open = False
            else:
                self.server_open = False
        self.busy_streaming = False
        return frame

    def reset(self, by_client: bool, flags: str = "RA", opts: str = "ts", win: int = 64) -> int:
        """RST by one side; a kernel answering data for a socket it no longer has sends a bare "R"."""
        frame = self.emit(by_client, flags, opts=opts, win=win)
        self.client_open = self.server_open = self.busy_streaming = self.idle = False
        return frame

    @property
    def alive(self) -> bool:
        return self.client_open and self.server_open


# --------------------------------------------------------------------------- capture


class Capture:
    """Packets in time order, a clock, and a tiny scheduler of generator processes."""

    def __init__(self, t0: float = T0, seed: int = 1, mss: int = LOOPBACK_MSS) -> None:
        self.t0 = self.now = t0
        self.rng = random.Random(seed)
        self.mss = mss
        self.segs: list[Seg] = []
        self._ip_cache: dict[bool, list[bytes]] = {}  # ipv6 -> IP packet bytes of every segment
        self._queue: list[tuple[float, int, Process]] = []
        self._n = 0
        self._port = 33000 + 2 * self.rng.randrange(4000)

    # clock and scheduling
    @property
    def rel(self) -> float:
        """Seconds since the capture started."""
        return self.now - self.t0

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def spawn(self, proc: Process, at: float | None = None) -> None:
        """Run a process from ``at`` seconds after t0 (default: now)."""
        t = self.now if at is None else self.t0 + at
        self._n += 1
        heapq.heappush(self._queue, (t, self._n, proc))

    def run(self, until: float) -> None:
        """Run processes in time order until ``until`` seconds after t0; later steps are dropped."""
        end = self.t0 + until
        while self._queue and self._queue[0][0] <= end:
            t, _, proc = heapq.heappop(self._queue)
            self.now = max(self.now, t)
            try:
                delay = next(proc)
            except StopIteration:
                continue
            self._n += 1
            heapq.heappush(self._queue, (self.now + max(delay, 0.0), self._n, proc))
        self._queue.clear()

    # packets
    def emit(self, seg: Seg) -> int:
        seg.t = self.now
        self.segs.append(seg)
        self.now += self.rng.uniform(15e-6, 60e-6)
        return len(self.segs)

    def next_port(self) -> int:
        self._port += 2 * self.rng.randint(1, 8)
        if self._port > 60990:
            self._port = 32768 + self._port % 1000
        return self._port

    def connect(self, server_port: int) -> Tcp:
        conn = Tcp(self, self.next_port(), server_port)
        conn.handshake()
        return conn

    def refused(self, server_port: int) -> int:
        """A SYN answered by RST-ACK (nothing listening); returns the SYN's frame."""
        conn = Tcp(self, self.next_port(), server_port)
        frame = conn.emit(True, "S", opts="syn", win=65495)
        conn.emit(False, "RA", opts="", win=0)
        return frame

    # files
    def write(self, path: str | Path, *, link: str = "ether", ipv6: bool = False, fmt: str = "pcap", lo_dup: bool = False) -> Path:
        """Write the capture; ``lo_dup`` writes every packet twice as AF_PACKET on ``lo`` shows it."""
        from scapy.utils import RawPcapNgWriter, RawPcapWriter

        path = Path(path)
        linktype = LINKS[link]
        if fmt == "pcapng":
            writer = RawPcapNgWriter(str(path))
            writer.linktype = linktype
        else:
            writer = RawPcapWriter(str(path), linktype=linktype, snaplen=262144)
            writer.linktype = linktype  # scapy ignores a falsy linktype (DLT_NULL is 0)
        writer.write_header(None)
        copies = (4, 0) if lo_dup else (0,)  # SLL pkttype: outgoing, then host
        cache = self._ip_cache.setdefault(ipv6, [])
        cache.extend(_ip_bytes(seg, ipv6) for seg in self.segs[len(cache) :])
        try:
            for seg, ip in zip(self.segs, cache):
                for pkttype in copies:
                    data = _link_header(link, ipv6, pkttype) + ip
                    if fmt == "pcapng":
                        writer.write_packet(data, sec=seg.t)
                    else:
                        sec, usec = divmod(round(seg.t * 1e6), 1_000_000)
                        writer.write_packet(data, sec=sec, usec=usec)
        finally:
            writer.close()
        return path


def file_frame(frame: int | None, lo_dup: bool) -> int | None:
    """Frame number of a builder frame in a file written with or without loopback duplicates."""
    if frame is None or not lo_dup:
        return frame
    return 2 * frame - 1


def _ip_bytes(seg: Seg, ipv6: bool) -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw

    if seg.opts == "syn":
        options = [("MSS", 65476 if ipv6 else 65495), ("SAckOK", b""), ("Timestamp", (seg.tsval, seg.tsecr)), ("NOP", None), ("WScale", 10)]
    elif seg.opts == "ts":
        options = [("NOP", None), ("NOP", None), ("Timestamp", (seg.tsval, seg.tsecr))]
    else:
        options = []
    tcp = TCP(sport=seg.sport, dport=seg.dport, seq=seg.seq, ack=seg.ack, flags=seg.flags, window=seg.win, options=options)
    if seg.payload:
        tcp = tcp / Raw(seg.payload)
    if ipv6:
        return bytes(IPv6(src="::1", dst="::1", hlim=64) / tcp)
    return bytes(IP(src="127.0.0.1", dst="127.0.0.1", flags="DF", ttl=64, id=seg.tsval & 0xFFFF) / tcp)


_LINK_CACHE: dict[tuple[str, bool, int], bytes] = {}


def _link_header(link: str, ipv6: bool, pkttype: int) -> bytes:
    key = (link, ipv6, pkttype)
    if key not in _LINK_CACHE:
        from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether, Loopback

        proto = 0x86DD if ipv6 else 0x0800
        _LINK_CACHE[key] = {
            "ether": lambda: bytes(Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00", type=proto)),
            "sll": lambda: bytes(CookedLinux(pkttype=pkttype, lladdrtype=772, lladdrlen=6, src=b"\0" * 8, proto=proto)),
            "sll2": lambda: bytes(CookedLinuxV2(proto=proto, ifindex=1, lladdrtype=772, pkttype=pkttype, lladdrlen=6, src=b"\0" * 8)),
            "null": lambda: bytes(Loopback(type=30 if ipv6 else 2)),  # BSD/macOS, host byte order
            "raw": lambda: b"",
        }[link]()
    return _LINK_CACHE[key]
