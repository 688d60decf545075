"""TCP reassembly, table-driven: packets of one or two connections in -> events out.

A scenario is a list of packets written from the client's (``c``) or the server's
(``s``) side with sequence numbers relative to that side's ISN; acks are filled in
from what the other side sent so far.  Events are shown compactly, consecutive data
of one direction joined, so a case reads as the byte streams it must produce.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mcpsniff.wire import tcp as tcpmod
from mcpsniff.wire.packet import ACK, FIN, PSH, RST, SYN
from mcpsniff.wire.tcp import TcpReassembler
from mcpsniff.wire.tcpevents import TcpClosed, TcpData, TcpEvent, TcpGap, TcpOpenAtEnd, TcpOpened, TcpRefused, TcpReset

C_ADDR, S_ADDR = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
C_PORT, S_PORT = 40000, 8080
ISN = {"c": 1000, "s": 5000}
FLAGS = {"S": SYN, "A": ACK, "P": PSH, "F": FIN, "R": RST}


@dataclass
class P:
    """One packet: who sends it, flags ("SA", "PA", ...), seq relative to the sender's ISN, payload."""

    who: str
    flags: str
    seq: int
    data: bytes = b""
    dt: float = 0.001  # seconds after the previous packet
    ack: int | None = None  # relative to the other side's ISN; default: all it sent so far
    cport: int = C_PORT
    sport: int = S_PORT


def run(packets: list[P], *, end_after: float = 1.0, reassembler: TcpReassembler | None = None) -> tuple[list[TcpEvent], TcpReassembler]:
    r = reassembler or TcpReassembler()
    sent = {"c": 0, "s": 0}  # highest relative seq each side has sent (for default acks)
    events: list[TcpEvent] = []
    t = 1000.0
    for frame, p in enumerate(packets, start=1):
        t += p.dt
        other = "s" if p.who == "c" else "c"
        flags = sum(FLAGS[f] for f in p.flags)
        seq = (ISN[p.who] + p.seq) & 0xFFFFFFFF
        ack = (ISN[other] + (p.ack if p.ack is not None else sent[other])) & 0xFFFFFFFF if flags & ACK else 0
        sent[p.who] = max(sent[p.who], p.seq + len(p.data) + (1 if flags & (SYN | FIN) else 0))
        src, dst = ((C_ADDR, p.cport), (S_ADDR, p.sport)) if p.who == "c" else ((S_ADDR, p.sport), (C_ADDR, p.cport))
        events += r.feed(t, frame, (src[0], dst[0], src[1], dst[1], seq, ack, flags, p.data))
    events += r.finish(t + end_after)
    return events, r


def show(events: list[TcpEvent]) -> list[str]:
    """Compact form; consecutive data of one connection and direction joined."""
    out: list[str] = []
    for e in events:
        match e:
            case TcpData(conn=conn, from_client=fc, data=data):
                arrow = ">" if fc else "<"
                if out and out[-1].startswith(f"{conn} {arrow} ") and not out[-1].startswith(f"{conn} {arrow} gap"):
                    out[-1] += data.decode()
                else:
                    out.append(f"{conn} {arrow} {data.decode()}")
            case TcpGap(conn=conn, from_client=fc, lost=lost):
                out.append(f"{conn} {'>' if fc else '<'} gap {lost}")
            case TcpOpened(conn=conn, client=client, mid_stream=mid):
                out.append(f"open {conn} client={client}" + (" mid-stream" if mid else ""))
            case TcpRefused(conn=conn, client=client):
                out.append(f"refused {conn} client={client}")
            case TcpClosed(conn=conn, by=by):
                out.append(f"fin {conn} by {by}")
            case TcpReset(conn=conn, by=by):
                out.append(f"rst {conn} by {by}")
            case TcpOpenAtEnd(conn=conn):
                out.append(f"open-at-end {conn}")
    return out


HS = [P("c", "S", 0), P("s", "SA", 0), P("c", "A", 1)]  # handshake; data starts at relative seq 1
OPEN = "open c1 client=10.0.0.1:40000"
REQ = b"GET / HTTP/1.1\r\n\r\n"
RESP = b"HTTP/1.1 200 OK\r\n\r\n"
BOTH_FIN = [P("c", "FA", 1 + len(REQ)), P("s", "FA", 1 + len(RESP)), P("c", "A", 2 + len(REQ))]

CASES: dict[str, tuple[list[P], list[str]]] = {
    "in order, FIN by client first": (
        HS + [P("c", "PA", 1, b"GET / "), P("s", "A", 1), P("c", "PA", 7, b"HTTP/1.1\r\n\r\n"), P("s", "PA", 1, RESP), P("c", "A", 1 + len(REQ))] + BOTH_FIN,
        [OPEN, "c1 > GET / HTTP/1.1\r\n\r\n", "c1 < HTTP/1.1 200 OK\r\n\r\n", "fin c1 by client", "fin c1 by server"],
    ),
    "FIN by server first": (
        HS + [P("c", "PA", 1, REQ), P("s", "PA", 1, RESP), P("s", "FA", 1 + len(RESP)), P("c", "FA", 1 + len(REQ)), P("s", "A", 2 + len(RESP))],
        [OPEN, "c1 > " + REQ.decode(), "c1 < " + RESP.decode(), "fin c1 by server", "fin c1 by client"],
    ),
    "half-closed: the server answers after the client's FIN": (
        HS + [P("c", "PA", 1, REQ), P("c", "FA", 1 + len(REQ)), P("s", "PA", 1, RESP)],
        [OPEN, "c1 > " + REQ.decode(), "fin c1 by client", "c1 < " + RESP.decode(), "open-at-end c1"],
    ),
    "retransmission delivered once": (
        HS + [P("c", "PA", 1, b"hello"), P("c", "PA", 1, b"hello", dt=0.3), P("c", "PA", 6, b" world")],
        [OPEN, "c1 > hello world", "open-at-end c1"],
    ),
    "overlapping retransmission: only the new bytes": (
        HS + [P("c", "PA", 1, b"hello "), P("c", "PA", 4, b"lo world", dt=0.3)],
        [OPEN, "c1 > hello world", "open-at-end c1"],
    ),
    "out of order: buffered until the hole fills": (
        HS + [P("c", "PA", 7, b"world"), P("c", "PA", 12, b"!"), P("c", "PA", 1, b"hello ")],
        [OPEN, "c1 > hello world!", "open-at-end c1"],
    ),
    "out of order overlapping segments": (
        HS + [P("c", "PA", 5, b"o wor"), P("c", "PA", 8, b"orld"), P("c", "PA", 1, b"hell")],
        [OPEN, "c1 > hello world", "open-at-end c1"],
    ),
    "hole the receiver acked: gap, then delivery resumes": (
        HS + [P("c", "PA", 1, b"aaaa"), P("c", "PA", 9, b"cccc"), P("s", "A", 13), P("s", "A", 13, dt=1.0), P("c", "PA", 13, b"dd")],
        [OPEN, "c1 > aaaa", "c1 > gap 4", "c1 > ccccdd", "open-at-end c1"],
    ),
    "hole nobody acked: waits, then gap at the end of the capture": (
        HS + [P("c", "PA", 1, b"aaaa"), P("c", "PA", 9, b"cccc", ack=0), P("s", "A", 5, dt=2.0)],
        [OPEN, "c1 > aaaa", "c1 > gap 4", "c1 > cccc", "open-at-end c1"],
    ),
    "hole nobody acked for long: gap after HOLE_WAIT": (
        HS + [P("c", "PA", 9, b"cccc"), P("s", "A", 1, dt=tcpmod.HOLE_WAIT + 1), P("c", "PA", 13, b"dd")],
        [OPEN, "c1 > gap 8", "c1 > ccccdd", "open-at-end c1"],
    ),
    "hole before a FIN: gap, then the FIN": (
        HS + [P("c", "PA", 1, b"aaaa"), P("c", "FA", 9), P("s", "FA", 1), P("c", "A", 10)],
        [OPEN, "c1 > aaaa", "fin c1 by server", "c1 > gap 4", "fin c1 by client"],
    ),
    "FIN arriving before the last data": (
        HS + [P("c", "FA", 5), P("c", "PA", 1, b"last")],
        [OPEN, "c1 > last", "fin c1 by client", "open-at-end c1"],
    ),
    "SYN answered by RST: refused": (
        [P("c", "S", 0), P("s", "RA", 0, ack=1)],
        ["refused c1 client=10.0.0.1:40000"],
    ),
    "SYN retransmitted, then refused": (
        [P("c", "S", 0), P("c", "S", 0, dt=1.0), P("s", "RA", 0, ack=1)],
        ["refused c1 client=10.0.0.1:40000"],
    ),
    "RST after the SYN-ACK is a reset, not a refusal": (
        HS + [P("s", "RA", 1)],
        [OPEN, "rst c1 by server"],
    ),
    "RST by the client after the response": (
        HS + [P("c", "PA", 1, REQ), P("s", "PA", 1, RESP), P("c", "RA", 1 + len(REQ))],
        [OPEN, "c1 > " + REQ.decode(), "c1 < " + RESP.decode(), "rst c1 by client"],
    ),
    "RST flushes what was waiting as a gap": (
        HS + [P("s", "PA", 5, b"tail"), P("s", "R", 9)],
        [OPEN, "c1 < gap 4", "c1 < tail", "rst c1 by server"],
    ),
    "unanswered SYN: nothing": (
        [P("c", "S", 0)],
        [],
    ),
    "SYN-ACK without its SYN: the receiver is the client": (
        [P("s", "SA", 0, ack=1), P("c", "PA", 1, REQ)],
        [OPEN, "c1 > " + REQ.decode(), "open-at-end c1"],
    ),
    "SYN-ACK not captured: data still flows": (
        [P("c", "S", 0), P("c", "PA", 1, REQ, ack=1), P("s", "PA", 1, RESP)],
        [OPEN, "c1 > " + REQ.decode(), "c1 < " + RESP.decode(), "open-at-end c1"],
    ),
    "mid-stream: the side sending an HTTP method is the client, whatever the ports": (
        [P("s", "A", 100, ack=300, cport=50000, sport=80), P("c", "PA", 300, b"POST /x HTTP/1.1\r\n\r\n", cport=50000, sport=80)],
        ["open c1 client=10.0.0.1:50000 mid-stream", "c1 > POST /x HTTP/1.1\r\n\r\n", "open-at-end c1"],
    ),
    "mid-stream: the side sending HTTP/ is the server, even with the higher port": (
        [P("s", "PA", 100, RESP, cport=80, sport=50000), P("c", "A", 300, cport=80, sport=50000)],
        ["open c1 client=10.0.0.1:80 mid-stream", "c1 < " + RESP.decode(), "open-at-end c1"],
    ),
    "mid-stream: otherwise the higher port is the client": (
        [P("s", "PA", 100, b"data: x\n\n", ack=300, cport=41000, sport=8080), P("c", "FA", 300, cport=41000, sport=8080)],
        ["open c1 client=10.0.0.1:41000 mid-stream", "c1 < data: x\n\n", "fin c1 by client", "open-at-end c1"],
    ),
    "mid-stream: bytes the peer acked before we saw them are a gap": (
        [P("c", "A", 300, ack=100), P("s", "PA", 110, b"more")],
        ["open c1 client=10.0.0.1:40000 mid-stream", "c1 < gap 10", "c1 < more", "open-at-end c1"],
    ),
    "mid-stream connection with only ACKs: nothing": (
        [P("c", "A", 300, ack=100), P("s", "A", 100, ack=300)],
        [],
    ),
    "sequence numbers wrap around": (
        [P("c", "S", 0xFFFFFFFF - 1000 - 2), P("s", "SA", 0, ack=0xFFFFFFFF - 1000 - 1), P("c", "PA", 0xFFFFFFFF - 1000 - 1, b"wrap"), P("c", "PA", 0xFFFFFFFF - 1000 + 3, b"ped")],
        [OPEN, "c1 > wrapped", "open-at-end c1"],
    ),
    "4-tuple reused after FIN: a new connection, late ACK ignored": (
        HS + [P("c", "PA", 1, REQ), P("s", "PA", 1, RESP)] + BOTH_FIN + [P("c", "A", 2 + len(REQ), dt=0.01), P("c", "S", 100000, dt=5), P("s", "SA", 100000, ack=100001), P("c", "PA", 100001, REQ, ack=100001)],
        [OPEN, "c1 > " + REQ.decode(), "c1 < " + RESP.decode(), "fin c1 by client", "fin c1 by server", "open c2 client=10.0.0.1:40000", "c2 > " + REQ.decode(), "open-at-end c2"],
    ),
    "4-tuple reused after RST: refused twice": (
        [P("c", "S", 0), P("s", "RA", 0, ack=1), P("c", "S", 50000, dt=1.0), P("s", "RA", 0, ack=50001)],
        ["refused c1 client=10.0.0.1:40000", "refused c2 client=10.0.0.1:40000"],
    ),
    "new SYN on a connection whose end was not captured": (
        HS + [P("c", "PA", 1, REQ), P("c", "S", 90000, dt=60), P("s", "SA", 90000, ack=90001)],
        [OPEN, "c1 > " + REQ.decode(), "open-at-end c1", "open c2 client=10.0.0.1:40000", "open-at-end c2"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reassembly(name: str) -> None:
    packets, expected = CASES[name]
    events, _ = run(packets)
    assert show(events) == expected


@pytest.mark.parametrize("name", list(CASES))
def test_lo_duplicates_change_nothing(name: str) -> None:
    """Linux `lo` AF_PACKET captures show every packet twice, microseconds apart."""
    packets, expected = CASES[name]
    doubled = [q for p in packets for q in (p, P(p.who, p.flags, p.seq, p.data, 0.00001, p.ack, p.cport, p.sport))]
    events, r = run(doubled)
    assert show(events) == expected
    assert r.duplicates == len(packets)


def test_real_retransmission_is_not_taken_for_a_duplicate() -> None:
    _, r = run(HS + [P("c", "PA", 1, b"hello"), P("c", "PA", 1, b"hello", dt=0.2)])
    assert (r.duplicates, r.retransmitted) == (0, 1)


def test_events_keep_their_packets_time_and_frame() -> None:
    events, _ = run(HS + [P("c", "PA", 7, b"world"), P("c", "PA", 1, b"hello ", dt=0.5)])
    opened, first, second, _ = events
    assert isinstance(opened, TcpOpened) and (opened.t, opened.frame) == (1000.001, 1)  # the SYN
    assert isinstance(first, TcpData) and (first.data, first.frame) == (b"hello ", 5)
    assert isinstance(second, TcpData) and (second.data, second.frame, second.t) == (b"world", 4, pytest.approx(1000.004))


def test_refusal_is_stamped_with_the_syn() -> None:
    events, _ = run([P("c", "S", 0), P("s", "RA", 0, ack=1, dt=0.002)])
    assert events == [TcpRefused("c1", 1000.001, "10.0.0.1:40000", "10.0.0.2:8080", 1)]


def test_out_of_order_buffer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcpmod, "MAX_PENDING", 10)
    events, r = run(HS + [P("c", "PA", 5, b"abcdef"), P("c", "PA", 11, b"ghijkl")])
    assert show(events) == [OPEN, "c1 > gap 4", "c1 > abcdefghijkl", "open-at-end c1"]
    assert (r.gaps, r.lost_bytes) == (1, 4)


def test_server_port_hint_names_the_client_of_a_mid_stream_connection() -> None:
    packets = [P("c", "PA", 300, b"\x16\x03\x01binary", cport=8080, sport=9000)]
    events, _ = run(packets, reassembler=TcpReassembler(server_ports={9000}))
    assert show(events)[0] == "open c1 client=10.0.0.1:8080 mid-stream"
    events, _ = run(packets)
    assert show(events)[0] == "open c1 client=10.0.0.2:9000 mid-stream"  # higher port


def test_ipv6_endpoints() -> None:
    r = TcpReassembler()
    a, b = bytes(15) + b"\x01", bytes.fromhex("20010db8000000000000000000000002")
    events = r.feed(1.0, 1, (a, b, 50000, 443, 1, 0, SYN, b"")) + r.feed(1.1, 2, (b, a, 443, 50000, 9, 2, SYN | ACK, b""))
    assert events == [TcpOpened("c1", 1.0, "[::1]:50000", "[2001:db8::2]:443", 1)]


def test_memory_is_bounded_by_open_connections() -> None:
    """Thousands of short connections: nothing of the closed ones stays, tombstones expire."""
    r = TcpReassembler()
    t = 0.0
    for i in range(5000):
        port = 20000 + i
        for who, flags, seq, data in (("c", "S", 0, b""), ("s", "SA", 0, b""), ("c", "PA", 1, REQ), ("s", "PA", 1, RESP), ("c", "FA", 1 + len(REQ), b""), ("s", "FA", 1 + len(RESP), b"")):
            t += 0.01
            p = P(who, flags, seq, data, cport=port)
            src, dst = ((C_ADDR, port), (S_ADDR, S_PORT)) if who == "c" else ((S_ADDR, S_PORT), (C_ADDR, port))
            fl = sum(FLAGS[f] for f in flags)
            r.feed(t, i, (src[0], dst[0], src[1], dst[1], ISN[who] + seq, 0, fl | (ACK if p.flags != "S" else 0), data))
    assert not r._conns
    assert len(r._dead) <= 2 * tcpmod.DEAD_TTL / 0.06 + 2
    assert r.connections == 5000


@pytest.mark.parametrize("seed", range(12))
def test_random_segmenting_reordering_and_duplication(seed: int) -> None:
    """Whatever the segmenting, local reordering, retransmission and lost segments: exact bytes, exact gaps."""
    import random

    rng = random.Random(seed)
    stream = bytes(rng.randrange(65, 91) for _ in range(6000))
    cuts = sorted(rng.sample(range(1, len(stream)), 60))
    segs = [(a, stream[a:b]) for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    lost = set(rng.sample(range(1, len(segs) - 1), seed % 3))  # never the first or the last
    sent = [s for i, s in enumerate(segs) if i not in lost]
    for _ in range(20):  # local reordering
        i = rng.randrange(len(sent) - 1)
        sent[i], sent[i + 1] = sent[i + 1], sent[i]
    sent += [sent[rng.randrange(len(sent))] for _ in range(10)]  # late retransmissions
    packets = HS + [P("c", "PA", 1 + off, data, dt=0.0005, ack=0) for off, data in sent]
    events, r = run(packets)
    got = b"".join(e.data for e in events if isinstance(e, TcpData))
    gaps = [e.lost for e in events if isinstance(e, TcpGap)]
    expected = b"".join(data for i, (_, data) in enumerate(segs) if i not in lost)
    assert got == expected
    holes: list[int] = []  # lost segments next to each other make one hole
    for i in sorted(lost):
        if i - 1 in lost:
            holes[-1] += len(segs[i][1])
        else:
            holes.append(len(segs[i][1]))
    assert gaps == holes
    assert r.gaps == len(gaps)


def test_unanswered_syns_are_counted_and_forgotten() -> None:
    events, r = run([P("c", "S", 0, cport=41000), P("c", "S", 0, cport=41001, dt=tcpmod.SYN_TTL + 5)], end_after=0)
    assert events == []
    assert r.unanswered_syns == 2  # the first expired when the second came, the second at the end
    assert not r._conns
