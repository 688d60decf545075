"""TCP reassembly: decoded segments -> ordered byte streams and connection facts.

Pure and incremental: ``TcpReassembler.feed(t, frame, segment)`` returns the events
that segment caused (see ``tcpevents``), ``finish(t)`` those of the capture's end.

Per connection and direction bytes come out in sequence order, once: retransmissions
and overlaps are trimmed, out-of-order segments wait (keeping their own timestamps)
until the hole before them fills.  A hole that cannot fill becomes a ``TcpGap``:
when the receiver has acknowledged the missing bytes (they were lost by the capture,
not by the network) after ``ACKED_HOLE_WAIT`` s of capture time, when nothing filled it
for ``HOLE_WAIT`` s, when the buffer of a direction passes ``MAX_PENDING`` bytes, or
when the connection ends.  Memory is bounded by the open connections: closed ones
are forgotten (a short tombstone keeps their late packets from looking like new
mid-stream connections).

Connection facts: ``TcpOpened`` comes when the handshake is answered (SYN-ACK), or at
the first data/FIN/RST of a connection whose handshake was not captured; it and
``TcpRefused`` carry the time and frame of the SYN (the attempt).  A SYN that gets
no answer emits nothing (it is counted in ``unanswered_syns``).  A new SYN on a
4-tuple that is still open ends the old connection with ``TcpOpenAtEnd`` (its end
was not captured) and starts a new one.  Ids ("c1", ...) follow that order.
"""

from __future__ import annotations

from typing import Final

from collections import OrderedDict, deque

from typing import Any

from .packet import ACK, FIN, RST, SYN, AnySegment, endpoint
from .tcpevents import TcpClosed, TcpData, TcpEvent, TcpGap, TcpOpenAtEnd, TcpOpened, TcpRefused, TcpReset

ACKED_HOLE_WAIT: Final = 0.5  # s: the receiver has the bytes, only capture reordering could still bring them
HOLE_WAIT: Final = 10.0  # s: a real retransmission takes longer than this only on a dying connection
MAX_PENDING = 1 << 20  # bytes buffered out of order per direction before giving up on the hole
DUP_WINDOW: Final = 0.005  # s: Linux `lo` AF_PACKET copies of one packet arrive microseconds apart
DEAD_TTL: Final = 120.0  # s: how long a closed 4-tuple swallows late packets (about 2 MSL)
DEAD_MAX = 65536  # tombstones kept at most
SYN_TTL: Final = 120.0  # s: an unanswered SYN is forgotten after this
MAX_SYNS = 20_000  # unanswered SYNs kept at most (the oldest are forgotten first: a SYN flood cannot grow memory)
MAX_OPEN = 20_000  # open connections before the oldest that never carried a byte are set aside (TcpOpenAtEnd)
SET_ASIDE_AFTER: Final = 1.0  # s a connection must have been open without a byte before it may be set aside
SWEEP_EVERY: Final = 0.1  # s of capture time between checks of waiting holes

_M: Final = 0xFFFFFFFF
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ")

Key = tuple[Any, ...]  # (src, sport, dst, dport): typed loosely for mypyc, as packet.AnySegment

def _rel(seq: int, base: int) -> int:
    """Signed distance seq - base in 32-bit sequence space."""
    d = (seq - base) & _M
    return d - 0x100000000 if d & 0x80000000 else d


class _Dir:
    """One direction of a connection."""

    __slots__ = ("next", "pending", "pending_bytes", "hole_since", "acked", "fin_done", "last", "last_t")

    def __init__(self) -> None:
        self.next: int | None = None  # sequence number of the next byte to deliver
        self.pending: dict[int, tuple[float, int, bytes, bool]] = {}  # seq -> (t, frame, data, fin)
        self.pending_bytes = 0
        self.hole_since = 0.0
        self.acked: int | None = None  # highest ACK from the peer while a hole waits
        self.fin_done = False
        self.last: AnySegment | None = None  # last segment, to spot `lo` duplicates
        self.last_t = 0.0


class _Conn:
    __slots__ = ("cid", "ckey", "skey", "c2s", "s2c", "opened", "syn_isn", "synack", "decided", "first_t", "first_frame", "mid_stream", "mark")

    def __init__(self, ckey: Key, t: float, frame: int) -> None:
        self.cid = ""  # handed out when the first event is emitted
        self.ckey = ckey  # key of the client->server direction
        self.skey: Key = (ckey[2], ckey[3], ckey[0], ckey[1])
        self.c2s = _Dir()
        self.s2c = _Dir()
        self.opened = False  # TcpOpened emitted
        self.syn_isn: int | None = None  # client's ISN when its SYN was seen
        self.synack = False
        self.decided = True  # client/server roles final (mid-stream guesses may still flip)
        self.first_t = t
        self.first_frame = frame
        self.mid_stream = False
        self.mark: tuple[int | None, int | None] | None = None  # both directions' next seq when opened by a handshake (unchanged: no byte carried)

    @property
    def client(self) -> str:
        return endpoint(self.ckey[0], self.ckey[1])

    @property
    def server(self) -> str:
        return endpoint(self.ckey[2], self.ckey[3])


class TcpReassembler:
    """Turns TCP segments into per-connection, per-direction ordered events.

    ``server_ports`` (optional) helps name the client of a connection picked up
    mid-stream when its first bytes do not give it away.  Counters (``duplicates``,
    ``retransmitted``, ``gaps``, ``lost_bytes``, ``late``, ``unanswered_syns``,
    ``connections``) are for statistics.
    """

    def __init__(self, server_ports: frozenset[int] | set[int] | None = None, first_id: int = 1, id_step: int = 1) -> None:
        self._first_id, self._id_step = first_id, id_step  # ids c1, c2, ... (or c{first}, c{first+step}, ... for a worker)
        self._server_ports = frozenset(server_ports or ())
        # both directions' keys -> (conn, this direction, the other direction, from_client)
        self._conns: dict[Key, tuple[_Conn, _Dir, _Dir, bool]] = {}
        # key -> (t closed, last segment, its t); ``_dead_order`` holds (t closed, key) in closing order
        # for expiry (an entry is stale once its key was closed again or reopened): a plain dict and a
        # deque cost a fraction of an OrderedDict's method calls, paid once per connection
        self._dead: dict[Key, tuple[float, AnySegment | None, float]] = {}
        self._dead_order: deque[tuple[float, Key]] = deque()
        # connections with bytes waiting for a hole to fill (a dict: deterministic order); pure
        # ACKs (no data, no SYN/FIN/RST) matter only while it is not empty, for the hole rules
        self.waiting: dict[_Conn, None] = {}
        self._syns: OrderedDict[_Conn, None] = OrderedDict()  # connections with only a SYN so far, oldest first
        self._set_aside_at = 2 * MAX_OPEN  # size of _conns (two keys per connection) that triggers _set_aside
        self.set_aside = 0  # connections that never carried a byte, forgotten early (more than MAX_OPEN open)
        self._next_sweep = 0.0
        self._next_syn_sweep = 0.0
        self.connections = 0  # opened or refused; also the last connection id handed out
        self.duplicates = 0
        self.retransmitted = 0  # segments whose bytes had all been delivered already
        self.gaps = 0
        self.lost_bytes = 0
        self.late = 0  # packets of an already closed connection
        self.unanswered_syns = 0

    # ----------------------------------------------------------------- feeding
    def feed(self, t: float, frame: int, seg: AnySegment) -> list[TcpEvent]:
        """Events caused by one segment (``frame`` is its 1-based number in the capture)."""
        ev: list[TcpEvent] = []
        if self.waiting and t >= self._next_sweep:
            self._sweep(t, ev)
        seq: int = seg[4]
        ack: int = seg[5]
        flags: int = seg[6]
        payload: bytes = seg[7]
        key: Key = (seg[0], seg[2], seg[1], seg[3])
        entry = self._conns.get(key)
        if entry is None:
            return self._unknown(t, frame, key, seg, ev)
        conn, d, peer, from_client = entry
        if t - d.last_t <= DUP_WINDOW and seg == d.last:  # (the time first: it rules most packets out)
            self.duplicates += 1
            return ev
        d.last = seg
        d.last_t = t
        if flags & 7:  # FIN, SYN or RST
            return self._control(t, frame, key, conn, d, peer, from_client, seg, ev)
        if flags & ACK:
            if peer.pending:
                self._note_ack(peer, ack)
            elif peer.next is None:
                peer.next = ack
        if payload:
            if seq == d.next and conn.opened and not d.pending:  # the common case: next bytes in order
                ev.append(TcpData(conn.cid, t, frame, from_client, payload))
                d.next = (seq + len(payload)) & _M
                return ev
            if not conn.opened:
                self._open_late(t, conn, d, payload, ev)
                from_client = conn.ckey == key  # roles may have flipped
            self._data(conn, d, from_client, t, frame, seq, payload, False, ev)
        elif d.next is None:
            d.next = seq
        return ev

    def _unknown(self, t: float, frame: int, key: Key, seg: AnySegment, ev: list[TcpEvent]) -> list[TcpEvent]:
        """First packet of a 4-tuple we do not track: new connection, or late packet of a closed one."""
        seq: int = seg[4]
        ack: int = seg[5]
        flags: int = seg[6]
        syn = flags & SYN
        dead = self._dead.get(key)
        if dead is not None:
            if not syn or flags & ACK:
                if dead[1] == seg and t - dead[2] <= DUP_WINDOW:
                    self.duplicates += 1
                else:
                    self.late += 1
                    self._dead[key] = (dead[0], seg, t)
                return ev
            self._forget(key)
        if flags & RST:  # nothing to reset (for example an RST answering a late packet)
            self.late += 1
            return ev
        rkey: Key = (key[2], key[3], key[0], key[1])
        if syn and not flags & ACK:  # a SYN: src is the client
            conn = self._track(key, t, frame)
            conn.syn_isn = seq
            conn.c2s.next = (seq + 1) & _M
            conn.c2s.last, conn.c2s.last_t = seg, t
            syns = self._syns
            syns[conn] = None
            if t >= self._next_syn_sweep or len(syns) > MAX_SYNS:
                self._expire_syns(t)
            return ev
        if syn:  # SYN-ACK whose SYN was not captured: dst is the client
            conn = self._track(rkey, t, frame)
            conn.synack = True
            conn.s2c.next = (seq + 1) & _M
            conn.c2s.next = ack
            conn.s2c.last, conn.s2c.last_t = seg, t
            self._emit_open(conn, ev)
            return ev
        # picked up mid-stream: guess roles now, final once bytes show who speaks HTTP first
        conn = self._track(key if self._guess_client(key) else rkey, t, frame)
        conn.decided = False
        conn.mid_stream = True
        _, d, peer, _ = self._conns[key]
        if flags & ACK:
            peer.next = ack
        d.next = seq
        if seg[7] or flags & FIN:
            return ev + self.feed(t, frame, seg)
        d.last, d.last_t = seg, t
        return ev

    def _guess_client(self, key: Key) -> bool:
        """Is key's source the client?  Server port hint first, else the higher port."""
        if self._server_ports:
            if key[3] in self._server_ports:
                return True
            if key[1] in self._server_ports:
                return False
        return key[1] >= key[3]

    def _track(self, ckey: Key, t: float, frame: int) -> _Conn:
        conn = _Conn(ckey, t, frame)
        self._conns[ckey] = (conn, conn.c2s, conn.s2c, True)
        self._conns[conn.skey] = (conn, conn.s2c, conn.c2s, False)
        return conn

    def _control(self, t: float, frame: int, key: Key, conn: _Conn, d: _Dir, peer: _Dir, from_client: bool, seg: AnySegment, ev: list[TcpEvent]) -> list[TcpEvent]:
        """A segment with SYN, RST or FIN on a tracked connection."""
        seq: int = seg[4]
        ack: int = seg[5]
        flags: int = seg[6]
        payload: bytes = seg[7]
        if flags & SYN:
            if not flags & ACK:
                if from_client and seq == conn.syn_isn:
                    return ev  # SYN retransmission
                # a new connection on a reused 4-tuple (its old one ended unseen)
                self._end(conn, t, ev, None)
                return self._unknown(t, frame, key, seg, ev)
            if from_client or conn.synack or not conn.decided:
                return ev  # SYN-ACK retransmission or nonsense
            conn.synack = True
            d.next = (seq + 1) & _M
            if conn.c2s.next is None:
                conn.c2s.next = ack
            if not conn.opened:
                self._emit_open(conn, ev)
            return ev
        if flags & RST:
            if conn.syn_isn is not None and not conn.synack and not conn.opened:
                if not from_client:  # (an RST from the client aborts its own attempt: nothing to say)
                    conn.cid = self._new_id()
                    ev.append(TcpRefused(conn.cid, conn.first_t, conn.client, conn.server, conn.first_frame))
                self._forget_conn(conn, t)
                return ev
            if not conn.opened:
                self._open_late(t, conn, d, b"", ev)
                from_client = conn.ckey == key
            self._end(conn, t, ev, TcpReset(conn.cid, t, frame, "client" if from_client else "server"))
            return ev
        # FIN (with or without data)
        if not conn.opened:
            self._open_late(t, conn, d, payload, ev)
            from_client = conn.ckey == key
        if peer.pending and flags & ACK:
            self._note_ack(peer, ack)
        self._data(conn, d, from_client, t, frame, seq, payload, True, ev)
        if conn.c2s.fin_done and conn.s2c.fin_done:
            self._forget_conn(conn, t)
        return ev

    # ------------------------------------------------------------ byte streams
    def _data(self, conn: _Conn, d: _Dir, from_client: bool, t: float, frame: int, seq: int, payload: bytes, fin: bool, ev: list[TcpEvent]) -> None:
        nxt = d.next
        if nxt is None:
            d.next = nxt = seq
        rel = _rel(seq, nxt)
        if rel < 0:  # retransmission or overlap: keep only what is new
            if rel + len(payload) <= 0 and not (fin and rel + len(payload) == 0):
                if payload or fin:
                    self.retransmitted += 1
                return
            payload = payload[-rel:]
            rel = 0
        if rel == 0:
            if payload:
                ev.append(TcpData(conn.cid, t, frame, from_client, payload))
                d.next = (nxt + len(payload)) & _M
            if fin and not d.fin_done:
                d.fin_done = True
                ev.append(TcpClosed(conn.cid, t, frame, "client" if from_client else "server"))
            if d.pending:
                self._drain(conn, d, from_client, 0, ev)
            return
        # out of order: wait for the hole to fill
        if d.fin_done:
            return
        old = d.pending.get(seq)
        if old is None or len(payload) > len(old[2]) or (fin and not old[3]):
            if not d.pending:
                d.hole_since = t
                d.acked = None
                self.waiting[conn] = None
            d.pending[seq] = (t, frame, payload, fin)
            d.pending_bytes += len(payload) - (len(old[2]) if old else 0)
            while d.pending_bytes > MAX_PENDING:
                self._drain(conn, d, from_client, 1, ev)

    def _drain(self, conn: _Conn, d: _Dir, from_client: bool, skip_holes: int, ev: list[TcpEvent]) -> None:
        """Deliver waiting segments that are now in order; jump over up to ``skip_holes`` holes (as TcpGap)."""
        pending = d.pending
        base = d.next if d.next is not None else 0
        for seq in sorted(pending, key=lambda s: _rel(s, base)):
            t, frame, data, fin = pending[seq]
            rel = _rel(seq, d.next)  # type: ignore[arg-type]
            if rel > 0:
                if skip_holes <= 0:
                    d.hole_since = t
                    break
                skip_holes -= 1
                ev.append(TcpGap(conn.cid, t, frame, from_client, rel))
                self.gaps += 1
                self.lost_bytes += rel
                d.next = seq
                rel = 0
            del pending[seq]
            d.pending_bytes -= len(data)
            if rel + len(data) > 0:
                ev.append(TcpData(conn.cid, t, frame, from_client, data[-rel:] if rel else data))
                d.next = (seq + len(data)) & _M
            elif data:
                self.retransmitted += 1
            if fin and not d.fin_done and _rel(seq + len(data), d.next) <= 0:  # type: ignore[arg-type]
                d.fin_done = True
                ev.append(TcpClosed(conn.cid, t, frame, "client" if from_client else "server"))
        if d.fin_done and pending:
            pending.clear()
            d.pending_bytes = 0
        if not (conn.c2s.pending or conn.s2c.pending):
            self.waiting.pop(conn, None)

    @staticmethod
    def _note_ack(d: _Dir, ack: int) -> None:
        if d.acked is None or _rel(ack, d.acked) > 0:
            d.acked = ack

    def _sweep(self, t: float, ev: list[TcpEvent]) -> None:
        """Give up on holes that cannot fill any more (see module docstring)."""
        self._next_sweep = t + SWEEP_EVERY
        for conn in list(self.waiting):
            for d, from_client in ((conn.c2s, True), (conn.s2c, False)):
                while d.pending and d.next is not None:
                    age = t - d.hole_since
                    acked = d.acked is not None and _rel(d.acked, d.next) > 0
                    if age < HOLE_WAIT and not (acked and age >= ACKED_HOLE_WAIT):
                        break
                    self._drain(conn, d, from_client, 1, ev)
            if conn.c2s.fin_done and conn.s2c.fin_done:
                self._forget_conn(conn, t)

    # ---------------------------------------------------------- connection ends
    def _new_id(self) -> str:
        self.connections += 1
        return f"c{self._first_id + (self.connections - 1) * self._id_step}"

    def _emit_open(self, conn: _Conn, ev: list[TcpEvent]) -> None:
        conn.opened = True
        conn.decided = True
        conn.cid = self._new_id()
        ev.append(TcpOpened(conn.cid, conn.first_t, conn.client, conn.server, conn.first_frame, conn.mid_stream))
        if self._syns:
            self._syns.pop(conn, None)
        if conn.synack and conn.syn_isn is not None:
            conn.mark = (conn.c2s.next, conn.s2c.next)
        if len(self._conns) > self._set_aside_at:
            self._set_aside(conn.first_t, ev)

    def _set_aside(self, t: float, ev: list[TcpEvent]) -> None:
        """More than MAX_OPEN connections open: forget the oldest of those that never carried a
        byte in SET_ASIDE_AFTER s or more (a port scan, a pool of idle sockets, a million
        handshakes), down to MAX_OPEN / 2 connections, each with
        a TcpOpenAtEnd, so memory stays bounded by the connections in use.  No tombstone: a
        byte that comes later on one of them starts a connection picked up mid-stream.
        The next check waits until the table has doubled again (linear time overall)."""
        conns = dict.fromkeys(e[0] for e in self._conns.values())
        recent = t - SET_ASIDE_AFTER  # a connection just opened is about to be used
        unused = [c for c in conns if c.mark is not None and c.first_t < recent and c.mark == (c.c2s.next, c.s2c.next)
                  and not (c.c2s.pending or c.s2c.pending or c.c2s.fin_done or c.s2c.fin_done)]
        unused.sort(key=lambda c: c.first_t)
        for conn in unused[: max(0, len(conns) - MAX_OPEN // 2)]:
            ev.append(TcpOpenAtEnd(conn.cid, t))
            self.set_aside += 1
            self.waiting.pop(conn, None)
            for key in (conn.ckey, conn.skey):
                if self._conns.get(key, (None,))[0] is conn:
                    del self._conns[key]
        self._set_aside_at = max(2 * MAX_OPEN, 2 * len(self._conns))

    def _open_late(self, t: float, conn: _Conn, d: _Dir, payload: bytes, ev: list[TcpEvent]) -> None:
        """First data/FIN/RST of a connection whose handshake we did not see complete: fix roles, emit TcpOpened."""
        if not conn.decided and payload:
            client_speaks = d is conn.c2s
            if payload.startswith(HTTP_METHODS) and not client_speaks or payload.startswith(b"HTTP/") and client_speaks:
                self._flip(conn)
        if conn.syn_isn is None:
            conn.mid_stream = True
        self._emit_open(conn, ev)

    def _flip(self, conn: _Conn) -> None:
        conn.ckey, conn.skey = conn.skey, conn.ckey
        conn.c2s, conn.s2c = conn.s2c, conn.c2s
        self._conns[conn.ckey] = (conn, conn.c2s, conn.s2c, True)
        self._conns[conn.skey] = (conn, conn.s2c, conn.c2s, False)

    def _end(self, conn: _Conn, t: float, ev: list[TcpEvent], last: TcpEvent | None) -> None:
        """Flush what waits (as gaps), emit ``last`` (or TcpOpenAtEnd), forget the connection."""
        if conn.opened:
            for d, from_client in ((conn.c2s, True), (conn.s2c, False)):
                if d.pending:
                    self._drain(conn, d, from_client, len(d.pending), ev)
            if last is not None:
                ev.append(last)
            elif not (conn.c2s.fin_done and conn.s2c.fin_done):
                ev.append(TcpOpenAtEnd(conn.cid, t))
        elif conn.syn_isn is not None and not conn.synack:
            self.unanswered_syns += 1
        self._forget_conn(conn, t)

    def _forget_conn(self, conn: _Conn, t: float) -> None:
        self.waiting.pop(conn, None)
        if self._syns:
            self._syns.pop(conn, None)
        dead, order, conns = self._dead, self._dead_order, self._conns
        for key, d in ((conn.ckey, conn.c2s), (conn.skey, conn.s2c)):
            entry = conns.get(key)
            if entry is not None and entry[0] is conn:
                del conns[key]
            dead[key] = (t, d.last, d.last_t)
            order.append((t, key))
        if len(order) > DEAD_MAX or t - DEAD_TTL >= order[0][0]:
            self._expire_dead(t)

    def _expire_dead(self, t: float) -> None:
        """Forget tombstones older than DEAD_TTL, and the oldest past DEAD_MAX.

        A timestamp that went back leaves a younger tombstone behind an older one: it goes
        when the ones before it have gone (kept a little longer, never lost early)."""
        dead, order = self._dead, self._dead_order
        limit = t - DEAD_TTL
        while order and (len(order) > DEAD_MAX or order[0][0] <= limit):
            closed, key = order.popleft()
            entry = dead.get(key)
            if entry is not None and entry[0] == closed:  # not closed again since (nor reopened)
                del dead[key]

    def _forget(self, key: Key) -> None:
        self._dead.pop(key, None)
        self._dead.pop((key[2], key[3], key[0], key[1]), None)

    def _expire_syns(self, t: float) -> None:
        """Forget SYNs that never got an answer (older than SYN_TTL, or past MAX_SYNS), oldest first,
        so a SYN flood cannot grow memory."""
        self._next_syn_sweep = t + SYN_TTL
        syns = self._syns
        while syns:
            conn = next(iter(syns))
            if conn.first_t >= t - SYN_TTL and len(syns) <= MAX_SYNS:
                break
            self.unanswered_syns += 1
            self._forget_conn(conn, t)  # (takes it out of _syns)

    def finish(self, t: float) -> list[TcpEvent]:
        """End of capture: flush waiting bytes as gaps, TcpOpenAtEnd for every open connection."""
        ev: list[TcpEvent] = []
        for conn in dict.fromkeys(e[0] for e in self._conns.values()):
            self._end(conn, t, ev, None)
        ev.sort(key=lambda e: int(e.conn[1:]))
        return ev
