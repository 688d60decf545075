"""Issue 13: per-connection state stays bounded on pathological captures (a million
handshakes that carry nothing, a SYN flood, a million short connections), and what is
set aside early is still read if it carries bytes later.  Segments are built here; the
limits are lowered so the tests stay small (the code reads them at run time)."""

from __future__ import annotations

import pytest

from mcpsniff.records import ConnEvent, Request
from mcpsniff.wire import tcp as tcp_module
from mcpsniff.wire.exchanges import HttpAssembler
from mcpsniff.wire.packet import ACK, FIN, PSH, RST, SYN
from mcpsniff.wire.pipeline import records_from_frames
from mcpsniff.wire.tcp import TcpReassembler

SERVER = bytes([127, 0, 0, 1])
PORT = 5076
REQUEST = b"POST /tasks/mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def client(i: int) -> tuple[bytes, int]:
    return bytes([10, (i >> 16) & 255, (i >> 8) & 255, 1 + i % 250]), 1024 + i % 60000


class Wire:
    """TCP and HTTP layers fed by hand, with the largest table sizes seen."""

    def __init__(self) -> None:
        self.tcp = TcpReassembler(server_ports={PORT})
        self.http = HttpAssembler()
        self.records: list = []
        self.most_tcp = self.most_http = 0
        self.frame = 0

    def seg(self, t: float, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        self.frame += 1
        for event in self.tcp.feed(t, self.frame, (src, dst, sport, dport, seq, ack, flags, payload)):
            self.records += self.http.feed(event)
        self.most_tcp = max(self.most_tcp, len(self.tcp._conns))
        self.most_http = max(self.most_http, len(self.http._conns))

    def handshake(self, t: float, i: int) -> tuple[bytes, int, int, int]:
        addr, port = client(i)
        isn, sisn = i * 7919 & 0xFFFFFF, i * 104729 & 0xFFFFFF
        self.seg(t, addr, SERVER, port, PORT, isn, 0, SYN)
        self.seg(t, SERVER, addr, PORT, port, sisn, isn + 1, SYN | ACK)
        self.seg(t, addr, SERVER, port, PORT, isn + 1, sisn + 1, ACK)
        return addr, port, isn + 1, sisn + 1

    def finish(self, t: float) -> None:
        for event in self.tcp.finish(t):
            self.records += self.http.feed(event)
        self.records += self.http.finish()


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_module, "MAX_OPEN", 500)
    monkeypatch.setattr(tcp_module, "MAX_SYNS", 500)
    monkeypatch.setattr(tcp_module, "DEAD_MAX", 500)


def test_handshakes_that_carry_nothing_are_set_aside(small: None) -> None:
    wire = Wire()
    first = wire.handshake(0.0, 0)
    for i in range(1, 20_000):  # 100 a second: a second's worth is kept whatever happens (SET_ASIDE_AFTER)
        wire.handshake(i * 1e-2, i)
    assert wire.most_tcp <= 2 * 500 + 2, wire.most_tcp  # two keys per connection
    assert wire.most_http <= 500 + 1, wire.most_http
    assert wire.tcp.set_aside > 18_000
    # the first connection was set aside long ago; a request on it now is still read (picked up mid-stream)
    addr, port, seq, ack = first
    wire.seg(300.0, addr, SERVER, port, PORT, seq, ack, PSH | ACK, REQUEST)
    wire.finish(300.1)
    requests = [r for r in wire.records if isinstance(r, Request)]
    assert [(r.method, r.target) for r in requests] == [("POST", "/tasks/mcp")]
    opened = [r for r in wire.records if isinstance(r, ConnEvent) and r.event == "opened"]
    assert len(opened) == 20_001  # every connection was reported, the late one as picked up mid-stream
    assert opened[-1].detail == "picked up mid-stream"


def test_connections_in_use_are_never_set_aside(small: None) -> None:
    wire = Wire()
    for i in range(1_500):
        addr, port, seq, ack = wire.handshake(i * 1e-3, i)
        wire.seg(i * 1e-3, addr, SERVER, port, PORT, seq, ack, PSH | ACK, REQUEST)
    assert wire.tcp.set_aside == 0
    assert len(wire.tcp._conns) == 2 * 1_500


def test_a_syn_flood_keeps_at_most_max_syns(small: None) -> None:
    wire = Wire()
    for i in range(20_000):
        addr, port = client(i)
        wire.seg(i * 1e-4, addr, SERVER, port, PORT, i, 0, SYN)
    assert wire.most_tcp <= 2 * 501
    assert wire.tcp.unanswered_syns >= 19_000


def test_closed_connections_leave_bounded_tombstones_and_refusals_nothing(small: None) -> None:
    wire = Wire()
    for i in range(10_000):
        addr, port, seq, ack = wire.handshake(i * 1e-4, i)
        wire.seg(i * 1e-4, addr, SERVER, port, PORT, seq, ack, FIN | ACK)
        wire.seg(i * 1e-4, SERVER, addr, PORT, port, ack, seq + 1, FIN | ACK)
    for i in range(10_000, 20_000):
        addr, port = client(i)
        wire.seg(i * 1e-4, addr, SERVER, port, PORT, i, 0, SYN)
        wire.seg(i * 1e-4, SERVER, addr, PORT, port, 0, i + 1, RST | ACK)
    assert len(wire.tcp._dead) <= 500
    assert wire.most_tcp <= 4 and wire.most_http <= 2
    assert sum(1 for r in wire.records if isinstance(r, ConnEvent) and r.event == "refused") == 10_000


def test_the_pipeline_says_what_it_set_aside(small: None) -> None:
    """records_from_frames on Ethernet frames: the warning names the count."""
    import struct

    def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, src, dst)
        return b"\x00" * 12 + b"\x08\x00" + ip + struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)

    frames = []
    for i in range(2_000):
        addr, port = client(i)
        frames += [frame(addr, SERVER, port, PORT, i, 0, SYN), frame(SERVER, addr, PORT, port, 7, i + 1, SYN | ACK)]
    records = list(records_from_frames((n * 5e-3, n + 1, 1, data) for n, data in enumerate(frames)))
    warnings = [r.message for r in records if r.kind == "warning"]
    assert any("never carried a byte were set aside early" in w for w in warnings), warnings
