"""Hand decoding of link/IP/TCP headers: one captured frame -> one TCP segment.

Full packet dissection (scapy) is about 20x too slow for captures of millions of
packets, and all we need is the 4-tuple, sequence numbers, flags and payload, so
the headers are read here with slicing and ``struct``.  Pure: bytes in, tuple out.

Addresses stay raw bytes (4 or 16) on the hot path; ``endpoint()`` formats them
once per connection.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable, Sized
from typing import Any, Final

try:  # only there while scripts/compile.py builds: plain Python needs no extra package
    from mypy_extensions import mypyc_attr
except ImportError:  # pragma: no cover - the usual case at run time

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:  # type: ignore[misc]  # (mypy_extensions returns an identity function)
        return lambda cls: cls

try:  # the C loop of decode_pcap (wire/_walk.c), built by scripts/compile.py; absent, the Python loop below runs
    from ._walk import walk as _c_walk
except ImportError:
    _c_walk = None

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10

# pcap LINKTYPE_* values we understand
LINK_RAW_ALIASES = (12, 14, 101, 228, 229)  # DLT_RAW spellings, LINKTYPE_IPV4/IPV6
LINK_NAMES = {0: "BSD loopback", 1: "Ethernet", 108: "OpenBSD loopback", 113: "Linux cooked", 276: "Linux cooked v2"}
LINK_NAMES.update({n: "raw IP" for n in LINK_RAW_ALIASES})

_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_IPV6_FRAG: Final = 44
_IPV6_AH: Final = 51
_TCP = struct.Struct("!HHIIH").unpack_from
_SEQ_ACK = struct.Struct("!II").unpack_from
# frames per decode_pcap() call: whether pure ACKs are wanted (a hole waits in the TCP layer,
# which sees the segments only after the call) is then at most this many frames old
WALK_FRAMES: Final = 256

# One TCP segment, as a plain tuple (a NamedTuple costs 200 ns more per packet):
# (src, dst, sport, dport, seq, ack, flags, payload); addresses are raw bytes (4 or 16).
Segment = tuple[bytes, bytes, int, int, int, int, int, bytes]
# The same tuple as the layers above hold it: typed loosely so that mypyc keeps the tuple object
# (a fixed-length tuple type is unpacked into C fields, and built again, with new int objects, each
# time it is used as an object: stored, compared, passed on).
AnySegment = tuple[Any, ...]


_ADDRESSES: Final[dict[bytes, str]] = {}  # address -> its text: a capture has few addresses, and two per connection are written


def endpoint(addr: bytes, port: int) -> str:
    """"ip:port", or "[v6]:port" for IPv6."""
    text = _ADDRESSES.get(addr)
    if text is None:
        text = f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}" if len(addr) == 4 else f"[{ipaddress.IPv6Address(addr).compressed}]"
        if len(_ADDRESSES) >= 4096:
            _ADDRESSES.clear()
        _ADDRESSES[addr] = text
    return f"{text}:{port}"


def owner(sport: int, dport: int, workers: int) -> int:
    """Which of ``workers`` handles a connection, from the low bytes of its two ports.

    Symmetric in the two ends (both directions land in one worker), stable across
    processes (no salted ``hash()``), cheap to compute from a frame's raw bytes
    (``decode_pcap``: two bytes, looked up in a table), and mixed so that ports
    handed out in sequence (a namespace's POST and GET connections) do not all land
    in one worker.
    """
    return _owners(workers)[(sport & 255) + (dport & 255)]


MAIN_SLICES: Final = 1  # worker 0 owns this many slices of the connections,
OTHER_SLICES: Final = 2  # every other worker this many


@functools.cache
def _owners(workers: int) -> tuple[int, ...]:
    """``owner`` by sum of the ports' low bytes (at most 2 * 255).

    Worker 0 owns ``MAIN_SLICES`` slices of the connections and every other worker
    ``OTHER_SLICES``: worker 0 is the parallel reader's main process, which also merges
    the others' records and runs the analysis.  1 to 2 (a third of the connections with two
    processes) balances the two processes' instructions while they read, within 2%, on every
    benchmark shape (``benchmarks/analyze_speed.py``, callgrind; README "Speed of analyze").
    """
    slices = MAIN_SLICES + (workers - 1) * OTHER_SLICES
    owners = []
    for x in range(2 * 255 + 1):
        s = (x * 2654435761 >> 20) % slices
        owners.append(0 if s < MAIN_SLICES else 1 + (s - MAIN_SLICES) // OTHER_SLICES)
    return tuple(owners)


@functools.cache
def _owner_bytes(workers: int) -> bytes:
    """``_owners`` as bytes, for the C loop (worker numbers below 256)."""
    return bytes(_owners(workers))


@functools.cache
def _pcap_structs(endian: str) -> tuple[Callable[[bytes, int], tuple[int, ...]], Callable[[bytes, int], tuple[int, ...]], tuple[int, int, int, int]]:
    """Unpackers of a pcap record header, and of the header plus the bytes ``decode_pcap``
    filters on, and the masks and values that say "decode()'s fast-path shape".

    The second one reads, after the header: frame bytes 12-15 as one integer (ethertype,
    IP version and header length), the IP total length (two bytes), bytes 20-23 as one
    integer (fragment bits and protocol), the four port bytes, and the TCP data offset
    and flags.  Single bytes read the same in either
    byte order; the two integers are compared under masks made for this byte order.
    """
    if endian == "<":
        shape = (0x00FFFFFF, 0x00450008, 0xFF00FF1F, 0x06000000)
    else:
        shape = (0xFFFFFF00, 0x08004500, 0x1FFF00FF, 0x00000006)
    return struct.Struct(endian + "IIII").unpack_from, struct.Struct(endian + "IIII12xIBB2xI10xBBBB8xBB").unpack_from, shape


@mypyc_attr(allow_interpreted_subclasses=True)  # tests count calls to decode() in a subclass
class PacketDecoder:
    """Decodes frames of any supported link type; counts what it had to skip.

    ``decode()`` returns None for anything that is not a readable TCP segment, or
    that a filter drops.  The counters say why a frame could not be read (and how
    many pure ACKs were dropped), so the pipeline can report it.
    The filters are applied before a segment is built, because on a big capture most
    frames are dropped by one of them:

    - ``ports``: only segments to or from one of these ports;
    - ``share=(k, workers)``: only the connections worker ``k`` owns (``owner``);
    - ``acks_wanted``: a container the consumer keeps non-empty while it needs pure
      ACKs (the TCP layer's connections with a hole waiting); while it is empty,
      segments with no payload and no SYN/FIN/RST (half the packets of a capture) are
      dropped and counted in ``pure_acks``.
    """

    __slots__ = ("fragments", "malformed", "non_tcp", "unsupported_links", "pure_acks", "_ports", "_k", "_workers", "_acks_wanted", "_filtering")

    def __init__(self, ports: frozenset[int] | None = None, share: tuple[int, int] | None = None, acks_wanted: Sized | None = None) -> None:
        self.fragments = 0  # non-first IP fragments (no TCP header in them)
        self.malformed = 0  # frames too short or with impossible header lengths
        self.non_tcp = 0  # ARP, UDP, ICMP, ...
        self.unsupported_links: dict[int, int] = {}  # link type -> frames
        self.pure_acks = 0  # dropped while ``acks_wanted`` was empty
        self._ports = ports
        self._k, self._workers = share if share is not None else (0, 1)
        self._acks_wanted = acks_wanted
        self._filtering = ports is not None or self._workers > 1 or acks_wanted is not None

    def decode(self, linktype: int, frame: bytes) -> Segment | None:
        try:
            # fast path, most packets of most captures: Ethernet, IPv4 without options, TCP, not a fragment
            if linktype == 1 and frame[12] == 8 and frame[13] == 0 and frame[14] == 0x45 and frame[23] == 6 and not (frame[20] & 0x1F or frame[21]):
                sport, dport, seq, ack, offflags = _TCP(frame, 34)
                doff = (offflags >> 12) * 4
                if doff >= 20:
                    total = (frame[16] << 8) | frame[17]
                    end = 14 + total if total else len(frame)  # total 0: TSO/GSO packets captured before segmentation
                    if self._filtering and not self._wanted(sport, dport, end - 34 - doff, offflags):
                        return None
                    return (frame[26:30], frame[30:34], sport, dport, seq, ack, offflags & 0xFF, frame[34 + doff : end] if 34 + doff < end else b"")
            return self._decode(linktype, frame)
        except (IndexError, struct.error):
            self.malformed += 1
            return None

    def _wanted(self, sport: int, dport: int, size: int, flags: int) -> bool:
        """Do the filters keep this segment?"""
        ports = self._ports
        if ports is not None and sport not in ports and dport not in ports:
            return False
        workers = self._workers
        if workers > 1 and owner(sport, dport, workers) != self._k:
            return False
        if size <= 0 and not flags & 7 and self._acks_wanted is not None and not self._acks_wanted:
            self.pure_acks += 1
            return False
        return True

    def decode_pcap(self, buf: bytes, pos: int, n: int, endian: str, hlen: int, unit: float, linktype: int, out: list[tuple[float, int, Segment]]) -> tuple[int, int, int]:
        """Decode the classic-pcap records that lie wholly in ``buf`` from ``pos`` on.

        Appends (t, frame number, segment) of the kept frames to ``out``, at most
        ``WALK_FRAMES`` frames per call.  Returns the position after the last record
        read, the frame count so far (``n`` before) and the position of the last
        record's header (-1: none).
        Reading and filtering share one loop because they run per frame and most
        frames of a big capture are dropped (another worker's, pure ACKs): one
        ``struct`` call reads a record's header together with the bytes the filters
        look at, so such frames are dropped before any decoding (and the kept ones of
        that shape are decoded right here, like ``decode()``'s fast path).
        """
        k, workers, acks = self._k, self._workers, self._acks_wanted
        quick = linktype == 1 and hlen == 16 and self._ports is None and (workers > 1 or acks is not None)
        if _c_walk is not None and workers < 256:
            pos, n, last, skipped = _c_walk(buf, pos, n, endian == "<", hlen, unit, linktype, out, quick, k, workers, _owner_bytes(workers), acks, self.decode, n + WALK_FRAMES)
            self.pure_acks += skipped
            return pos, n, last
        decode, keep = self.decode, out.append
        header, quick_fields, (mask12, ipv4, mask20, tcp) = _pcap_structs(endian)
        size, last, acks_skipped, limit = len(buf), -1, 0, n + WALK_FRAMES
        owners = _owners(workers)
        while pos + hlen <= size and n < limit:
            if quick and pos + 64 <= size:
                sec, frac, caplen, _, w12, t1, t2, w20, p1, p2, p3, p4, off, fl = quick_fields(buf, pos)
                # Ethernet, IPv4 without options, TCP, not a fragment, data offset >= 5: decode()'s fast path
                plain = caplen >= 54 and w12 & mask12 == ipv4 and w20 & mask20 == tcp and off >= 0x50
            else:
                sec, frac, caplen, _ = header(buf, pos)
                plain = False
            end = pos + hlen + caplen
            if end > size:
                break
            start = pos + hlen
            last, pos = pos, end
            n += 1
            if plain:
                if workers > 1 and owners[p2 + p4] != k:  # owner()
                    continue
                total, doff = t1 << 8 | t2, (off >> 4) * 4
                if acks is not None and not acks and not fl & 7 and 0 < total <= 20 + doff:
                    acks_skipped += 1  # a pure ACK, as in _wanted()
                    continue
                data_end = start + 14 + total if total and start + 14 + total < end else end  # as in decode()
                seq, ack = _SEQ_ACK(buf, start + 38)
                lo = start + 34 + doff  # (a data offset past the end: no payload; compiled slicing wants lo <= data_end)
                keep((sec + frac * unit, n, (buf[start + 26 : start + 30], buf[start + 30 : start + 34], p1 << 8 | p2, p3 << 8 | p4, seq, ack, fl, buf[lo:data_end] if lo < data_end else b"")))
                continue
            seg = decode(linktype, buf[start:end])
            if seg is not None:
                keep((sec + frac * unit, n, seg))
        self.pure_acks += acks_skipped
        return pos, n, last

    def _decode(self, linktype: int, frame: bytes) -> Segment | None:
        if linktype == 1:  # Ethernet, possibly with 802.1Q/802.1ad tags
            return self._by_ethertype(frame, (frame[12] << 8) | frame[13], 14)
        if linktype == 113:  # Linux cooked v1: protocol at 14
            return self._by_ethertype(frame, (frame[14] << 8) | frame[15], 16)
        if linktype == 276:  # Linux cooked v2: protocol first, 20-byte header
            return self._by_ethertype(frame, (frame[0] << 8) | frame[1], 20)
        if linktype == 0 or linktype == 108:  # 4-byte address family (either byte order)
            return self._by_version(frame, 4)
        if linktype in LINK_RAW_ALIASES:
            return self._by_version(frame, 0)
        self.unsupported_links[linktype] = self.unsupported_links.get(linktype, 0) + 1
        return None

    def _by_ethertype(self, frame: bytes, ethertype: int, off: int) -> Segment | None:
        while ethertype in _VLAN_TYPES:
            ethertype = (frame[off + 2] << 8) | frame[off + 3]
            off += 4
        if ethertype == 0x0800:
            return self._ipv4(frame, off)
        if ethertype == 0x86DD:
            return self._ipv6(frame, off)
        self.non_tcp += 1
        return None

    def _by_version(self, frame: bytes, off: int) -> Segment | None:
        """Loopback and raw IP: the address family value differs by OS, the IP version nibble does not."""
        version = frame[off] >> 4
        if version == 4:
            return self._ipv4(frame, off)
        if version == 6:
            return self._ipv6(frame, off)
        self.non_tcp += 1
        return None

    def _ipv4(self, frame: bytes, off: int) -> Segment | None:
        ihl = (frame[off] & 0x0F) * 4
        if frame[off + 9] != 6:
            self.non_tcp += 1
            return None
        if ihl < 20:
            self.malformed += 1
            return None
        if ((frame[off + 6] << 8) | frame[off + 7]) & 0x1FFF:  # fragment offset != 0
            self.fragments += 1
            return None
        total = (frame[off + 2] << 8) | frame[off + 3]
        # total 0: TSO/GSO packets captured before segmentation; else it cuts Ethernet padding
        end = off + total if total else len(frame)
        return self._tcp(frame, off + ihl, end, frame[off + 12 : off + 16], frame[off + 16 : off + 20])

    def _ipv6(self, frame: bytes, off: int) -> Segment | None:
        plen = (frame[off + 4] << 8) | frame[off + 5]
        nxt = frame[off + 6]
        src = frame[off + 8 : off + 24]
        dst = frame[off + 24 : off + 40]
        end = off + 40 + plen if plen else len(frame)  # 0: jumbogram / TSO
        off += 40
        while nxt != 6:
            if nxt in _IPV6_EXT:
                nxt, off = frame[off], off + 8 + frame[off + 1] * 8
            elif nxt == _IPV6_FRAG:
                if ((frame[off + 2] << 8) | frame[off + 3]) & 0xFFF8:
                    self.fragments += 1
                    return None
                nxt, off = frame[off], off + 8
            elif nxt == _IPV6_AH:
                nxt, off = frame[off], off + (frame[off + 1] + 2) * 4
            else:  # UDP, ICMPv6, ESP, no next header, ...
                self.non_tcp += 1
                return None
        return self._tcp(frame, off, end, src, dst)

    def _tcp(self, frame: bytes, off: int, end: int, src: bytes, dst: bytes) -> Segment | None:
        sport, dport, seq, ack, offflags = _TCP(frame, off)
        doff = (offflags >> 12) * 4
        if doff < 20:
            self.malformed += 1
            return None
        if self._filtering and not self._wanted(sport, dport, end - off - doff, offflags):
            return None
        # (a data offset past the end: no payload; compiled, an inverted slice raises SystemError)
        return (src, dst, sport, dport, seq, ack, offflags & 0xFF, frame[off + doff : end] if off + doff < end else b"")
