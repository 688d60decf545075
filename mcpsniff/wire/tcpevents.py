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


@dataclass(slots=True)
class TcpOpened:
    """Handshake seen (or first packet of a connection picked up mid-stream)."""

    conn: str
    t: float
    client: str
    server: str
    frame: int
    mid_stream: bool = False


@dataclass(slots=True)
class TcpRefused:
    """SYN answered by RST: nothing was listening."""

    conn: str
    t: float
    client: str
    server: str
    frame: int


@dataclass(slots=True)
class TcpData:
    """In-order payload bytes of one direction."""

    conn: str
    t: float
    frame: int
    from_client: bool
    data: bytes


@dataclass(slots=True)
class TcpGap:
    """Bytes of one direction missing from the capture; the stream resumes after them."""

    conn: str
    t: float
    frame: int
    from_client: bool
    lost: int


@dataclass(slots=True)
class TcpClosed:
    """FIN from one side (``by`` is "client" or "server")."""

    conn: str
    t: float
    frame: int
    by: str


@dataclass(slots=True)
class TcpReset:
    """RST on an established connection (``by`` is "client" or "server")."""

    conn: str
    t: float
    frame: int
    by: str


@dataclass(slots=True)
class TcpOpenAtEnd:
    """The capture ended with this connection still open."""

    conn: str
    t: float


TcpEvent = TcpOpened | TcpRefused | TcpData | TcpGap | TcpClosed | TcpReset | TcpOpenAtEnd
