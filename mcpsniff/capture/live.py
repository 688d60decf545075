"""Live capture with scapy: packets of some TCP ports -> a pcapng file, written as they come.

Why it looks the way it does:
- On Linux, an AF_PACKET socket on ``lo`` sees every packet twice (the outgoing and
  the incoming copy).  The socket here drops the copy the kernel marks
  ``PACKET_OUTGOING``, exactly as libpcap/tcpdump do, so the file has each packet once.
- ``any`` is what ``tcpdump -i any`` does: one cooked (SOCK_DGRAM) socket on every
  interface, each packet written as Linux cooked v2 (link type 276, the header built
  from the socket address: protocol, interface index, ARPHRD type, packet type,
  link address); the outgoing copy is dropped on ``lo`` only (elsewhere it is the
  packet this host sent).
- The filter runs in the kernel (BPF compiled by libpcap) when libpcap is present:
  the port filter, and/or the user's expression (``-f``), combined as
  ``(tcp port A or tcp port B) and (EXPR)``.  Without libpcap a port filter cannot
  be compiled, so every packet is read and filtered here by port instead; an
  expression cannot be applied without it at all.
- Frames are not dissected by scapy (too slow): headers are read by
  ``wire.packet.PacketDecoder``, which also feeds the live status counters.
- Each packet is written as one pcapng block (``pcapng_writer``, with the interface's
  name, the filter and the application in the file's options) to an unbuffered file,
  so the file is readable by tshark and mcpsniff at any moment, even after SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import BadInputError, CaptureError
from ..wire.packet import ACK, RST, SYN, PacketDecoder
from .pcapng_writer import PcapngWriter

SNAPLEN = 262144  # loopback segments can be 64 KiB and more (GSO): never truncate them
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2 = 1, 276
DLT_RAW = 12  # what a filter for ``any`` is compiled for: a cooked socket's filter sees the packet from its IP header on
ANY = "any"
ETH_P_ALL, SO_TIMESTAMPNS, SO_ATTACH_FILTER = 0x0003, 35, 26
_SLL2 = struct.Struct("!HHIHBB8s")  # protocol, reserved, ifindex, ARPHRD type, packet type, address length, address
_ARPHRD_LINKTYPES = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET}  # Ethernet, loopback (zeroed Ethernet header)
_METHODS = (b"GET ", b"POST ", b"DELETE ", b"PUT ", b"PATCH ", b"HEAD ", b"OPTIONS ")
SOL_PACKET, PACKET_STATISTICS, PACKET_IGNORE_OUTGOING = 263, 6, 23  # linux/if_packet.h
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RCVBUF = 32 << 20  # bytes of socket buffer for bursts while Python is busy (scapy sets 64 KiB)


def bpf_filter(ports: Iterable[int], expr: str = "") -> str:
    """The capture filter: ``tcp port A or tcp port B``, ANDed with the user's ``expr`` (tcpdump's syntax)."""
    by_port = " or ".join(f"tcp port {p}" for p in sorted(set(ports)))
    expr = expr.strip()
    if by_port and expr:
        return f"({by_port}) and ({expr})"
    return by_port or expr


def check_filter(expr: str, iface: str = "lo", user_expr: str = "") -> bool:
    """Compile ``expr`` with libpcap for ``iface``'s link type: True if it compiles, False without libpcap.

    A bad ``user_expr`` (the -f part of ``expr``) is bad input, in libpcap's own words,
    found before any socket is opened (no root needed for that).
    """
    from scapy.arch.common import compile_filter, free_filter
    from scapy.error import Scapy_Exception

    for candidate in ([user_expr] if user_expr else []) + [expr]:
        try:
            program = compile_filter(candidate, linktype=DLT_RAW if iface == ANY else LINKTYPE_ETHERNET)
        except ImportError:
            return False
        except Scapy_Exception as exc:
            said, prefix = str(exc), f"Failed to compile filter expression {candidate!r} ("
            reason = said[len(prefix) : -1] if said.startswith(prefix) and said.endswith(")") else said
            raise BadInputError(f"bad filter expression {user_expr or candidate!r}: {reason}") from None
        free_filter(program)
    return True


@dataclass
class LiveStats:
    """Cheap counters for the status line, fed one frame at a time (no reassembly).

    A "restart" is a server port that refused connections (SYN answered by RST)
    after accepting some, and then accepted one again.
    """

    ports: frozenset[int]  # empty: a capture by filter expression alone; server ports are learnt from SYNs
    packets: int = 0  # packets written
    duplicates: int = 0  # outgoing loopback copies dropped
    filtered: int = 0  # other traffic dropped by the in-process filter
    connections: int = 0  # SYNs to a watched port
    refused: int = 0  # SYNs answered by RST
    mcp_messages: int = 0  # JSON-RPC objects seen in payloads (requests, responses, SSE events)
    restarts: int = 0
    paths: set[str] = field(default_factory=set)
    _learned: set[int] = field(default_factory=set)  # with no ports given: ports SYNs were sent to
    _accepted: set[tuple[bytes, int, bytes, int]] = field(default_factory=set)
    _port_state: dict[int, str] = field(default_factory=dict)  # port -> "up" | "down"
    _decoder: PacketDecoder = field(default_factory=PacketDecoder)

    @property
    def namespaces(self) -> set[str]:
        """``/sprint/mcp`` -> ``sprint``; a single-segment path stands for itself."""
        out = set()
        for path in self.paths:
            parts = [p for p in path.split("/") if p]
            out.add(parts[0] if len(parts) > 1 else path)
        return out

    def feed(self, linktype: int, frame: bytes) -> bool:
        """Count one frame; False if it is not TCP to or from a watched port."""
        seg = self._decoder.decode(linktype, frame)
        if seg is None:
            self.filtered += 1
            return False
        src, dst, sport, dport, _seq, _ack, flags, payload = seg
        ports = self.ports
        if not ports:  # the kernel filter chose the packets; a SYN says which side is the server
            if flags & SYN and not flags & ACK:
                self._learned.add(dport)
            ports = self._learned  # type: ignore[assignment]
        elif sport not in ports and dport not in ports:
            self.filtered += 1
            return False
        self.packets += 1
        if flags & SYN and not flags & ACK and dport in ports:
            self.connections += 1
        elif flags & SYN and flags & ACK and sport in ports:
            self._accepted.add((dst, dport, src, sport))
            if self._port_state.get(sport) == "down":
                self.restarts += 1
            self._port_state[sport] = "up"
        elif flags & RST and sport in ports and (dst, dport, src, sport) not in self._accepted:
            self.refused += 1
            if self._port_state.get(sport) == "up":
                self._port_state[sport] = "down"
        if payload:
            if dport in ports and payload.startswith(_METHODS):
                parts = payload[:2048].split(b" ", 2)
                if len(parts) > 2:
                    self.paths.add(parts[1].split(b"?", 1)[0].decode("latin-1")[:200])
            self.mcp_messages += payload.count(b'"jsonrpc"')
        return True

    def line(self) -> str:
        refused = f" ({self.refused} refused)" if self.refused else ""
        return (
            f"{_n(self.packets, 'packet')}, {_n(self.connections, 'connection')}{refused}, {_n(len(self.namespaces), 'namespace')}, "
            f"{_n(self.mcp_messages, 'MCP message')}, {_n(self.restarts, 'restart')} seen"
        )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _grow_buffer(sock: socket.socket) -> None:
    """A 32 MiB receive buffer (root may exceed net.core.rmem_max), else as much as allowed."""
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RCVBUF)
            return
        except OSError:
            continue


def _open_socket(iface: str, bpf: str | None) -> Any:
    """An AF_PACKET listening socket on ``iface`` that drops the outgoing loopback copies."""
    from scapy.arch.linux import L2ListenSocket
    from scapy.config import conf

    class LoopbackSocket(L2ListenSocket):  # type: ignore[misc]
        desc = "AF_PACKET listener keeping one copy of each loopback packet, undissected"
        duplicates = 0

        def recv_raw(self, x: int = SNAPLEN) -> tuple[Any, bytes | None, float | None]:
            pkt, sa_ll, ts = self._recv_raw(self.ins, SNAPLEN)
            if sa_ll[2] == socket.PACKET_OUTGOING:
                self.duplicates += 1
                return None, None, None
            return conf.raw_layer, pkt, ts if ts is not None else time.time()

    runtime_log = logging.getLogger("scapy.runtime")
    level = runtime_log.level
    runtime_log.setLevel(logging.ERROR)  # scapy warns it cannot guess a layer for lo; we want raw bytes anyway
    try:
        return LoopbackSocket(iface=iface, filter=bpf)
    finally:
        runtime_log.setLevel(level)


def _open_any_socket(bpf: str | None) -> Any:
    """A cooked AF_PACKET socket on every interface, as libpcap opens for ``-i any``.

    Frames come back as Linux cooked v2: the 20-byte header is built from the socket
    address of each packet.  The filter is attached before any packet is read, and
    what queued before it is drained.
    """
    from scapy.config import conf
    from scapy.supersocket import SuperSocket

    class CookedAnySocket(SuperSocket):  # type: ignore[misc]
        desc = "AF_PACKET cooked listener on every interface, frames as Linux cooked v2, undissected"
        duplicates = 0

        def __init__(self) -> None:
            self.ins = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
            self.outs = None
            self.iface = ANY
            self._indexes: dict[str, int] = {}
            self._lo = _ifindex("lo")
            try:
                if bpf:
                    _attach_filter(self.ins, bpf)
                self.ins.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.ins.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while True:  # packets of every kind that queued before the filter was on
                        self.ins.recv(1)
                self.ins.setblocking(True)
            except BaseException:
                self.ins.close()
                raise

        def recv_raw(self, x: int = SNAPLEN) -> tuple[Any, bytes | None, float | None]:
            data, ancillary, _flags, (ifname, proto, pkttype, hatype, addr) = self.ins.recvmsg(SNAPLEN, socket.CMSG_SPACE(16))
            index = self._indexes.get(ifname)
            if index is None:
                index = self._indexes.setdefault(ifname, _ifindex(ifname))
            if pkttype == socket.PACKET_OUTGOING and index == self._lo:
                self.duplicates += 1
                return None, None, None
            ts = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    ts = sec + nsec * 1e-9
            header = _SLL2.pack(proto, 0, index, hatype, pkttype, len(addr), addr[:8])
            return conf.raw_layer, header + data, ts if ts is not None else time.time()

    return CookedAnySocket()


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def _attach_filter(sock: socket.socket, bpf: str) -> None:
    """Compile ``bpf`` for a cooked socket (its filter sees packets from the IP header on) and attach it."""
    from scapy.arch.common import compile_filter, free_filter
    from scapy.libs.structures import sock_fprog

    program = compile_filter(bpf, linktype=DLT_RAW)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, sock_fprog(program.bf_len, program.bf_insns))  # type: ignore[call-overload]
    finally:
        free_filter(program)


class LiveCapture:
    """Capture TCP ``ports`` (and/or what ``expr`` selects) on ``iface`` into ``output`` (pcapng) in a background thread.

    ``with LiveCapture([5076], Path("run.pcapng")) as cap: ...`` or ``start()``/``stop()``.
    ``iface="any"`` captures every interface (Linux cooked v2, as ``tcpdump -i any``).
    ``stats`` is readable while it runs; ``kernel_filter`` says whether BPF is in use
    (``bpf=False`` filters by port in-process, as happens without libpcap).
    """

    def __init__(self, ports: Iterable[int], output: Path, iface: str = "lo", bpf: bool = True, ignore_outgoing: bool = False, expr: str = "") -> None:
        self.ignore_outgoing = ignore_outgoing  # have the kernel not deliver the outgoing loopback copies at all (half the reads; Linux 4.20+; not on any)
        self.kernel_packets = 0  # what the kernel counted for the socket (PACKET_STATISTICS), loopback copies included
        self.kernel_drops = 0  # packets the kernel dropped because the socket's buffer was full
        self.ports = frozenset(ports)
        self.expr = expr.strip()
        if not self.ports and not self.expr:
            raise CaptureError("no port to capture (give --port, or a filter expression with -f)")
        self.output = Path(output)
        self.iface = iface
        self.stats = LiveStats(self.ports)
        self.bpf = bpf
        self.kernel_filter = False
        self.filter = bpf_filter(self.ports, self.expr)  # what the file's if_filter says was applied
        self.error: str | None = None
        self._sock: Any = None
        self._sniffer: Any = None
        self._writer: PcapngWriter | None = None
        self._linktype = LINKTYPE_ETHERNET

    def start(self) -> LiveCapture:
        """Open the socket (packets queue from here on), the file, and the sniffer thread."""
        from scapy.sendrecv import AsyncSniffer

        if self.iface != ANY:
            try:
                socket.if_nametoindex(self.iface)
            except OSError:
                raise CaptureError(f"no such interface {self.iface!r} (any: every interface)") from None
        compiled = self.bpf and check_filter(self.filter, self.iface, self.expr)  # a bad -f expression: one line, before any socket
        if self.expr and not compiled:
            raise CaptureError("-f needs libpcap to compile the filter expression (Debian: apt-get install libpcap0.8)")
        bpf = self.filter if compiled else None
        try:
            self._sock = _open_any_socket(bpf) if self.iface == ANY else _open_socket(self.iface, bpf)
        except PermissionError:
            raise CaptureError("raw sockets not permitted (run as root or grant CAP_NET_RAW)") from None
        except OSError as exc:
            raise CaptureError(f"cannot capture on {self.iface!r}: {exc.strerror or exc}") from None
        self.kernel_filter = bool(compiled)
        if self.iface == ANY:
            self._linktype = LINKTYPE_LINUX_SLL2
        else:
            hatype = self._sock.ins.getsockname()[3]
            if hatype not in _ARPHRD_LINKTYPES:
                self._sock.close()
                raise CaptureError(f"cannot capture on {self.iface!r}: unsupported link type (ARPHRD {hatype}); use lo, an Ethernet interface or any")
            self._linktype = _ARPHRD_LINKTYPES[hatype]
        try:
            # the header now: a capture killed before any packet is still a valid file; no folder is made for it
            self._writer = PcapngWriter(self.output.open("wb", buffering=0), self._linktype, self.iface, self.filter, SNAPLEN)
        except OSError as exc:
            self._sock.close()
            raise CaptureError(f"cannot write {self.output}: {exc.strerror or exc}") from None
        _grow_buffer(self._sock.ins)
        if self.ignore_outgoing and self.iface != ANY:  # on any it would drop what this host sends on other interfaces
            with contextlib.suppress(OSError):  # an older kernel: the copies come and are dropped here
                self._sock.ins.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        self.kernel_counts()  # reading resets them: drops while scapy set the socket up (a 0-byte buffer until the filter is on) are not the capture's
        self.kernel_packets = self.kernel_drops = 0
        self._sniffer = AsyncSniffer(opened_socket=self._sock, prn=self._on_packet, store=False)
        self._sniffer.start()
        return self

    def _on_packet(self, pkt: Any) -> None:
        if self.error:
            return
        try:
            frame = bytes(pkt)
            if self.stats.feed(self._linktype, frame) and self._writer is not None:
                self._writer.write(frame, float(pkt.time))
        except Exception as exc:  # noqa: BLE001 - scapy would silently drop the socket; keep the reason
            self.error = f"capture stopped: {exc}"

    def stop(self) -> LiveStats:
        """Stop the thread, close socket and file; returns the final counters."""
        if self._sniffer is not None:
            try:
                if self._sniffer.running:
                    self._sniffer.stop()
            finally:
                self._sniffer = None
        if self._sock is not None:
            for _ in range(100_000):  # what arrived before stop() belongs in the file too
                if not self._sock.select([self._sock], 0):
                    break
                pkt = self._sock.recv()
                if pkt is not None:
                    self._on_packet(pkt)
            self.stats.duplicates = self._sock.duplicates
            self.kernel_counts()
            self._sock.close()
            self._sock = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.stats

    def kernel_counts(self) -> tuple[int, int]:
        """(packets, drops) the kernel counted for the socket so far (PACKET_STATISTICS; reading resets them, so they are summed here)."""
        if self._sock is not None:
            try:
                got, dropped = struct.unpack("II", self._sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            except OSError:
                got = dropped = 0
            self.kernel_packets += got
            self.kernel_drops += dropped
        return self.kernel_packets, self.kernel_drops

    def __enter__(self) -> LiveCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_capture(
    ports: Iterable[int],
    output: Path,
    iface: str = "lo",
    duration: float | None = None,
    status: IO[str] | None = sys.stderr,
    status_every: float | None = None,
    bpf: bool = True,
    expr: str = "",
) -> LiveStats:
    """Capture until Ctrl-C, SIGTERM or ``duration`` seconds, showing a status line.

    On a terminal the line is redrawn 4 times a second; otherwise a line is printed
    every ``status_every`` seconds (default 10) and at the end.
    """
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tty = bool(status is not None and status.isatty())
    every = 0.25 if tty else (status_every or 10.0)
    cap = LiveCapture(ports, output, iface, bpf=bpf, expr=expr)
    try:
        cap.start()
        if status is not None:
            how = "kernel BPF filter" if cap.kernel_filter else "filtering by port in-process"
            status.write(f"capturing {cap.filter} on {iface} -> {output} ({how}); Ctrl-C to stop\n")
            status.flush()
        deadline = time.monotonic() + duration if duration is not None else None
        next_line = time.monotonic() + every
        while not stop.is_set() and cap.error is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = next_line - now if deadline is None else min(next_line, deadline) - now
            if stop.wait(max(0.0, wait)):
                break
            if status is not None and time.monotonic() >= next_line:
                status.write(("\r\x1b[K" if tty else "") + cap.stats.line() + ("" if tty else "\n"))
                status.flush()
                next_line += every
    except KeyboardInterrupt:
        pass
    finally:
        stats = cap.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if status is not None:
        status.write(("\r\x1b[K" if tty else "") + stats.line() + "\n")
        status.flush()
    if cap.error:
        raise CaptureError(cap.error)
    return stats
