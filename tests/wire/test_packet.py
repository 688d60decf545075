"""Hand decoding of link/IP/TCP headers, checked against frames built by scapy."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw, raw

from mcpsniff.wire.packet import ACK, FIN, PSH, SYN, PacketDecoder, endpoint, owner

V4 = dict(src="10.1.2.3", dst="192.168.0.9")
V6 = dict(src="2001:db8::1", dst="fe80::2")
SRC4, DST4 = bytes([10, 1, 2, 3]), bytes([192, 168, 0, 9])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("fe800000000000000000000000000002")
BODY = b"POST /tasks/mcp HTTP/1.1\r\n\r\n"


def tcp(payload: bytes = BODY, flags: str = "PA") -> Packet:
    return TCP(sport=40000, dport=18201, seq=1000, ack=2000, flags=flags, options=[("Timestamp", (1, 2))]) / Raw(payload)


def v4(payload: bytes = BODY, **ip: object) -> Packet:
    return IP(**V4, **ip) / tcp(payload)


def v6(payload: bytes = BODY) -> Packet:
    return IPv6(**V6) / tcp(payload)


def null_header(family: int, order: str) -> bytes:
    return struct.pack(order + "I", family)


SEG4 = (SRC4, DST4, 40000, 18201, 1000, 2000, PSH | ACK, BODY)
SEG6 = (SRC6, DST6, 40000, 18201, 1000, 2000, PSH | ACK, BODY)

# (name, link type, frame bytes, expected segment)
DECODED = [
    ("ethernet ipv4", 1, raw(Ether() / v4()), SEG4),
    ("ethernet ipv6", 1, raw(Ether() / v6()), SEG6),
    ("ethernet padding is not payload", 1, raw(Ether() / IP(**V4) / TCP(sport=40000, dport=18201, seq=1000, ack=2000, flags="A")) + b"\0" * 6, (SRC4, DST4, 40000, 18201, 1000, 2000, ACK, b"")),
    ("802.1Q tag", 1, raw(Ether() / Dot1Q(vlan=7) / v4()), SEG4),
    ("802.1ad + 802.1Q tags", 1, raw(Ether() / Dot1AD(vlan=3) / Dot1Q(vlan=7) / v6()), SEG6),
    ("ipv4 options", 1, raw(Ether() / v4(options=b"\x01\x01\x01\x00")), SEG4),
    ("ipv4 first fragment", 1, raw(Ether() / v4(flags="MF", frag=0)), SEG4),
    ("ipv4 total length 0 (TSO)", 101, raw(v4())[:2] + b"\0\0" + raw(v4())[4:], SEG4),
    ("ipv6 hop-by-hop, routing, dest opts", 1, raw(Ether() / IPv6(**V6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / tcp()), SEG6),
    ("ipv6 first fragment", 1, raw(Ether() / IPv6(**V6) / IPv6ExtHdrFragment(offset=0, m=1) / tcp()), SEG6),
    ("linux cooked v1", 113, raw(CookedLinux(proto=0x0800) / v4()), SEG4),
    ("linux cooked v1 ipv6", 113, raw(CookedLinux(proto=0x86DD) / v6()), SEG6),
    ("linux cooked v2", 276, raw(CookedLinuxV2(proto=0x0800) / v4()), SEG4),
    ("linux cooked v2 ipv6", 276, raw(CookedLinuxV2(proto=0x86DD) / v6()), SEG6),
    ("bsd null, little endian", 0, null_header(2, "<") + raw(v4()), SEG4),
    ("bsd null, big endian", 0, null_header(2, ">") + raw(v4()), SEG4),
    ("bsd null ipv6 (AF_INET6 = 30 on macOS)", 0, null_header(30, "<") + raw(v6()), SEG6),
    ("openbsd loop", 108, null_header(24, ">") + raw(v6()), SEG6),
    ("raw ip 101", 101, raw(v4()), SEG4),
    ("raw ip 12", 12, raw(v6()), SEG6),
    ("raw ip 14", 14, raw(v4()), SEG4),
    ("snaplen cut the payload", 1, raw(Ether() / v4())[:-10], SEG4[:7] + (BODY[:-10],)),
    ("syn", 1, raw(Ether() / IP(**V4) / TCP(sport=40000, dport=18201, seq=7, flags="S")), (SRC4, DST4, 40000, 18201, 7, 0, SYN, b"")),
    ("fin-ack", 1, raw(Ether() / IP(**V4) / TCP(sport=40000, dport=18201, seq=7, ack=9, flags="FA")), (SRC4, DST4, 40000, 18201, 7, 9, FIN | ACK, b"")),
    # a TCP data offset (60 bytes) past the end of the IP packet, inside the frame (padding after it):
    # no payload (the compiled build once raised SystemError on the inverted slice)
    ("data offset past the end", 1, raw(Ether() / IP(**V4, len=40) / TCP(sport=40000, dport=18201, seq=7, ack=9, flags="PA", dataofs=15) / Raw(b"x" * 60)), (SRC4, DST4, 40000, 18201, 7, 9, PSH | ACK, b"")),
    ("data offset past the end, ipv4 options", 1, raw(Ether() / IP(**V4, len=44, options=b"\x01\x01\x01\x00") / TCP(sport=40000, dport=18201, seq=7, ack=9, flags="PA", dataofs=15) / Raw(b"x" * 60)), (SRC4, DST4, 40000, 18201, 7, 9, PSH | ACK, b"")),
    ("data offset past the end, ipv6", 1, raw(Ether() / IPv6(**V6, plen=20) / TCP(sport=40000, dport=18201, seq=7, ack=9, flags="PA", dataofs=15) / Raw(b"x" * 60)), (SRC6, DST6, 40000, 18201, 7, 9, PSH | ACK, b"")),
]


@pytest.mark.parametrize("name,linktype,frame,expected", DECODED, ids=[c[0] for c in DECODED])
def test_decodes(name: str, linktype: int, frame: bytes, expected: tuple) -> None:
    decoder = PacketDecoder()
    assert decoder.decode(linktype, frame) == expected
    assert (decoder.fragments, decoder.malformed, decoder.non_tcp, decoder.unsupported_links) == (0, 0, 0, {})


# (name, link type, frame bytes, counter that must say why)
SKIPPED = [
    ("ipv4 later fragment", 1, raw(Ether() / v4(frag=185)), "fragments"),
    ("ipv6 later fragment", 1, raw(Ether() / IPv6(**V6) / IPv6ExtHdrFragment(offset=100) / Raw(b"x" * 40)), "fragments"),
    ("udp", 1, raw(Ether() / IP(**V4) / UDP(sport=53, dport=53)), "non_tcp"),
    ("arp", 1, raw(Ether() / ARP()), "non_tcp"),
    ("udp in linux cooked v2", 276, raw(CookedLinuxV2(proto=0x86DD) / IPv6(**V6) / UDP()), "non_tcp"),
    ("not ip in raw", 101, b"\x00" * 40, "non_tcp"),
    ("cut inside the tcp header", 1, raw(Ether() / v4())[:40], "malformed"),
    ("cut inside the ethernet header", 1, b"\x00" * 10, "malformed"),
    ("empty frame", 113, b"", "malformed"),
    ("tcp data offset below 5", 101, raw(IP(**V4) / TCP(dataofs=2)), "malformed"),
    ("ipv4 header length below 5", 101, bytes([0x42]) + raw(v4())[1:], "malformed"),
]


@pytest.mark.parametrize("name,linktype,frame,counter", SKIPPED, ids=[c[0] for c in SKIPPED])
def test_skips_and_counts(name: str, linktype: int, frame: bytes, counter: str) -> None:
    decoder = PacketDecoder()
    assert decoder.decode(linktype, frame) is None
    assert getattr(decoder, counter) == 1


def test_unsupported_link_type_is_counted_per_type() -> None:
    decoder = PacketDecoder()
    for _ in range(3):
        assert decoder.decode(105, raw(v4())) is None  # IEEE 802.11
    assert decoder.unsupported_links == {105: 3}


@pytest.mark.parametrize(
    "addr,port,text",
    [(SRC4, 80, "10.1.2.3:80"), (SRC6, 18201, "[2001:db8::1]:18201"), (bytes(15) + b"\x01", 1, "[::1]:1")],
)
def test_endpoint(addr: bytes, port: int, text: str) -> None:
    assert endpoint(addr, port) == text


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_connections_split_so_the_main_process_gets_a_smaller_share(workers: int) -> None:
    """The parallel reader's worker 0 also runs the analysis: it owns half as many connections as each other."""
    ports = range(40000, 40000 + 512)
    owners = [owner(client, server, workers) for client in ports for server in (8000, 18300, 443)]
    slices = 1 + 2 * (workers - 1)
    shares = [owners.count(k) / len(owners) for k in range(workers)]
    assert abs(shares[0] - 1 / slices) < 0.05
    assert all(abs(share - 2 / slices) < 0.05 for share in shares[1:])
    assert all(owner(a, b, workers) == owner(b, a, workers) for a in ports for b in (8000, 18300))  # both directions
