"""Events of the TCP layer: what wire/tcp.py emits and wire/exchanges.py consumes.

``conn`` is a short id ("c1", "c2", ...) in order of first appearance;
``client``/``server`` are "ip:port" ("[v6]:port" for IPv6). The client is the side
that sent the SYN (or, for a connection picked up mid-stream, the side whose bytes
start with an HTTP method). ``t`` is the capture timestamp of the packet (seconds,
float) and ``frame`` its 1-based number in the capture.
Read-only by convention (not frozen: a frozen dataclass takes twice as long to
build, and there is one ``TcpData`` per data packet).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Rebuilt


# Each dataclass here spells out its ``__init__``: with mypyc the one @dataclass generates runs as
# interpreted Python (a fifth of the CPU time of ``analyze``, one object per packet or record), a
# written one is compiled.  @dataclass still gives fields(), replace(), ==, repr.
@dataclass(slots=True)
class TcpOpened(Rebuilt):
    """Handshake seen (or first packet of a connection picked up mid-stream)."""

    conn: str
    t: float
    client: str
    server: str
    frame: int
    mid_stream: bool = False

    def __init__(self, conn: str, t: float, client: str, server: str, frame: int, mid_stream: bool = False) -> None:
        self.conn = conn
        self.t = t
        self.client = client
        self.server = server
        self.frame = frame
        self.mid_stream = mid_stream


@dataclass(slots=True)
class TcpRefused(Rebuilt):
    """SYN answered by RST: nothing was listening."""

    conn: str
    t: float
    client: str
    server: str
    frame: int

    def __init__(self, conn: str, t: float, client: str, server: str, frame: int) -> None:
        self.conn = conn
        self.t = t
        self.client = client
        self.server = server
        self.frame = frame


@dataclass(slots=True)
class TcpData(Rebuilt):
    """In-order payload bytes of one direction."""

    conn: str
    t: float
    frame: int
    from_client: bool
    data: bytes

    def __init__(self, conn: str, t: float, frame: int, from_client: bool, data: bytes) -> None:
        self.conn = conn
        self.t = t
        self.frame = frame
        self.from_client = from_client
        self.data = data


@dataclass(slots=True)
class TcpGap(Rebuilt):
    """Bytes of one direction missing from the capture; the stream resumes after them."""

    conn: str
    t: float
    frame: int
    from_client: bool
    lost: int

    def __init__(self, conn: str, t: float, frame: int, from_client: bool, lost: int) -> None:
        self.conn = conn
        self.t = t
        self.frame = frame
        self.from_client = from_client
        self.lost = lost


@dataclass(slots=True)
class TcpClosed(Rebuilt):
    """FIN from one side (``by`` is "client" or "server")."""

    conn: str
    t: float
    frame: int
    by: str

    def __init__(self, conn: str, t: float, frame: int, by: str) -> None:
        self.conn = conn
        self.t = t
        self.frame = frame
        self.by = by


@dataclass(slots=True)
class TcpReset(Rebuilt):
    """RST on an established connection (``by`` is "client" or "server")."""

    conn: str
    t: float
    frame: int
    by: str

    def __init__(self, conn: str, t: float, frame: int, by: str) -> None:
        self.conn = conn
        self.t = t
        self.frame = frame
        self.by = by


@dataclass(slots=True)
class TcpOpenAtEnd(Rebuilt):
    """The capture ended with this connection still open."""

    conn: str
    t: float

    def __init__(self, conn: str, t: float) -> None:
        self.conn = conn
        self.t = t


TcpEvent = TcpOpened | TcpRefused | TcpData | TcpGap | TcpClosed | TcpReset | TcpOpenAtEnd
