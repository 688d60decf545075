"""Hand decoding of link/IP/TCP headers: one captured frame -> one TCP segment.

Full packet dissection (scapy) is about 20x too slow for captures of millions of
packets, and all we need is the 4-tuple, sequence numbers, flags and payload, so
the headers are read here with slicing and ``struct``.  Pure: bytes in, tuple out.

Addresses stay raw bytes (4 or 16) on the hot path; ``endpoint()`` formats them
once per connection.
"""

from __future__ import annotations

import ipaddress
import struct

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# pcap LINKTYPE_* values we understand
LINK_RAW_ALIASES = (12, 14, 101, 228, 229)  # DLT_RAW spellings, LINKTYPE_IPV4/IPV6
LINK_NAMES = {0: "BSD loopback", 1: "Ethernet", 108: "OpenBSD loopback", 113: "Linux cooked", 276: "Linux cooked v2"}
LINK_NAMES.update({n: "raw IP" for n in LINK_RAW_ALIASES})

_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_IPV6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_IPV6_FRAG, _IPV6_AH = 44, 51
_TCP = struct.Struct("!HHIIH").unpack_from

# One TCP segment, as a plain tuple (a NamedTuple costs 200 ns more per packet):
# (src, dst, sport, dport, seq, ack, flags, payload); addresses are raw bytes (4 or 16).
Segment = tuple[bytes, bytes, int, int, int, int, int, bytes]


def endpoint(addr: bytes, port: int) -> str:
    """"ip:port", or "[v6]:port" for IPv6."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}:{port}"
    return f"[{ipaddress.IPv6Address(addr).compressed}]:{port}"


class PacketDecoder:
    """Decodes frames of any supported link type; counts what it had to skip.

    ``decode()`` returns None for anything that is not a readable TCP segment.
    The counters say why, so the pipeline can report it.
    """

    __slots__ = ("fragments", "malformed", "non_tcp", "unsupported_links")

    def __init__(self) -> None:
        self.fragments = 0  # non-first IP fragments (no TCP header in them)
        self.malformed = 0  # frames too short or with impossible header lengths
        self.non_tcp = 0  # ARP, UDP, ICMP, ...
        self.unsupported_links: dict[int, int] = {}  # link type -> frames

    def decode(self, linktype: int, frame: bytes) -> Segment | None:
        try:
            # fast path, most packets of most captures: Ethernet, IPv4 without options, TCP, not a fragment
            if linktype == 1 and frame[12] == 8 and frame[13] == 0 and frame[14] == 0x45 and frame[23] == 6 and not (frame[20] & 0x1F or frame[21]):
                sport, dport, seq, ack, offflags = _TCP(frame, 34)
                doff = (offflags >> 12) * 4
                if doff >= 20:
                    total = (frame[16] << 8) | frame[17]
                    return (frame[26:30], frame[30:34], sport, dport, seq, ack, offflags & 0xFF, frame[34 + doff : 14 + total if total else len(frame)])
            return self._decode(linktype, frame)
        except (IndexError, struct.error):
            self.malformed += 1
            return None

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
        return (src, dst, sport, dport, seq, ack, offflags & 0xFF, frame[off + doff : end])
