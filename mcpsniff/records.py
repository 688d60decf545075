"""The common record format: the only link between capture and analysis.

Both capture paths (pcap/live packets and the mitmproxy addon) turn traffic into
this flat stream of small, time-stamped records, written as JSON lines with a
versioned header line so that a file from a killed run is still readable.

One HTTP exchange is told by records sharing an ``xid``:
``Request`` -> ``Response`` (status line and headers, body for non-streamed
responses) -> zero or more ``SseEvent`` -> exactly one ``End`` saying how it
finished ("complete", "reset", "closed", "open-at-end", "refused", "gap",
"error").  Connection-level facts (opened, refused, reset, closed) are
``ConnEvent`` records: a refused TCP connection carries no request at all.
Records are read-only by convention: they are not frozen dataclasses because a
frozen one takes twice as long to build, and a big capture makes hundreds of
thousands of them (twice over when worker processes send them to the parent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Union

from .errors import BadInputError

FORMAT = "mcpsniff-records"
VERSION = 1

Headers = tuple[tuple[str, str], ...]

# End.outcome values
COMPLETE = "complete"  # the response finished normally
RESET = "reset"  # the connection was reset before the response finished
CLOSED = "closed"  # the connection was closed (FIN) before the response finished
OPEN_AT_END = "open-at-end"  # the capture ended while the exchange was still open
REFUSED = "refused"  # the upstream refused the connection (proxy path)
GAP = "gap"  # bytes were lost in the capture; the rest of the exchange is unknown
ERROR = "error"  # the bytes could not be parsed (see a CaptureWarning record)
OUTCOMES = (COMPLETE, RESET, CLOSED, OPEN_AT_END, REFUSED, GAP, ERROR)

SSE_COMMENT = ":comment"  # SseEvent.event of a comment line (a keep-alive such as ": ping"); data holds its text

# ConnEvent.event values
CONN_EVENTS = ("opened", "refused", "reset", "closed", "open-at-end", "gap")


@dataclass(slots=True)
class Meta:
    """First line of a records file: where the records came from."""

    source: str  # "pcap", "live", "mitm", "har", ...
    origin: str = ""  # capture file name, proxy address, ...
    kind: str = "meta"
    format: str = FORMAT
    version: int = VERSION


@dataclass(slots=True)
class ConnEvent:
    """A TCP connection fact. ``by`` is "client", "server" or "".

    On the proxy path an "opened" event with ``by="proxy"`` is only the client's
    connection to the proxy: it says nothing about whether the server was up.
    """

    t: float
    conn: str
    event: str
    client: str = ""  # "ip:port"
    server: str = ""  # "ip:port"
    by: str = ""
    detail: str = ""
    frame: int | None = None
    kind: str = "conn"


@dataclass(slots=True)
class Request:
    """An HTTP request; ``t`` is the time of its first byte."""

    t: float
    conn: str
    xid: str
    method: str
    target: str
    headers: Headers = ()
    body: str = ""
    body_size: int = 0
    truncated: bool = False
    frame: int | None = None
    server: str = ""  # "ip:port" (or host:port from the Host header on the proxy path)
    kind: str = "request"


@dataclass(slots=True)
class Response:
    """Status line and headers (``t``), plus the whole body for non-streamed responses.

    For ``text/event-stream`` responses ``stream`` is true, ``body`` is empty and
    the events follow as ``SseEvent`` records.  ``t_end`` is when the body was complete
    (None for streams: see the exchange's ``End``).
    """

    t: float
    xid: str
    status: int
    reason: str = ""
    headers: Headers = ()
    body: str = ""
    body_size: int = 0
    truncated: bool = False
    stream: bool = False
    t_end: float | None = None
    frame: int | None = None
    kind: str = "response"


@dataclass(slots=True)
class SseEvent:
    """One dispatched SSE event; ``t`` is the time of the packet that completed it."""

    t: float
    xid: str
    data: str = ""
    event: str = ""
    id: str | None = None
    retry: int | None = None
    frame: int | None = None
    kind: str = "sse"


@dataclass(slots=True)
class End:
    """How an exchange finished (one of OUTCOMES)."""

    t: float
    xid: str
    outcome: str
    detail: str = ""
    kind: str = "end"


@dataclass(slots=True)
class CaptureWarning:
    """Something in the input that could not be read as expected; analysis goes on."""

    t: float | None
    message: str
    conn: str = ""
    kind: str = "warning"


Record = Union[Meta, ConnEvent, Request, Response, SseEvent, End, CaptureWarning]

_TYPES: dict[str, type] = {
    "meta": Meta,
    "conn": ConnEvent,
    "request": Request,
    "response": Response,
    "sse": SseEvent,
    "end": End,
    "warning": CaptureWarning,
}


def header(headers: Headers, name: str) -> str | None:
    """Case-insensitive header lookup (first match)."""
    name = name.lower()
    size = len(name)
    for key, value in headers:
        if len(key) == size and (key == name or key.lower() == name):  # the length check spares most lower() calls
            return value
    return None


def time_key(record: Record) -> float:
    """Sort key for records by time; untimed ones (file-level warnings) last."""
    t = getattr(record, "t", None)
    return float("inf") if t is None else t


def to_dict(record: Record) -> dict[str, Any]:
    data = asdict(record)
    if "headers" in data:
        data["headers"] = [list(pair) for pair in data["headers"]]
    return data


def to_json(record: Record) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False, separators=(",", ":"))


def from_dict(data: dict[str, Any]) -> Record:
    """Build a record from its dict form; raises BadInputError on unknown shapes."""
    kind = data.get("kind")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadInputError(f"unknown record kind {kind!r}")
    fields = dict(data)
    if "headers" in fields:
        fields["headers"] = tuple((str(k), str(v)) for k, v in fields["headers"])
    try:
        return cls(**fields)
    except TypeError as exc:
        raise BadInputError(f"malformed {kind} record: {exc}") from None


class RecordWriter:
    """Writes records as JSON lines, flushing each so a killed run leaves a readable file."""

    def __init__(self, stream: IO[str], source: str, origin: str = "") -> None:
        self._stream = stream
        self.write(Meta(source=source, origin=origin))

    def write(self, record: Record) -> None:
        self._stream.write(to_json(record) + "\n")
        self._stream.flush()

    def write_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.write(record)


def read_records(lines: Iterable[str], name: str = "records") -> Iterator[Record]:
    """Parse a JSONL records stream.

    The header line must be ours and of a version we understand (BadInputError
    otherwise).  A broken line (for example the last one of a killed run) becomes a
    CaptureWarning record and reading goes on.
    """
    it = iter(lines)
    first = next(it, "")
    try:
        meta = json.loads(first)
    except json.JSONDecodeError:
        raise BadInputError(f"{name}: not an mcpsniff records file (first line is not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInputError(f"{name}: not an mcpsniff records file")
    if meta.get("version") != VERSION:
        raise BadInputError(f"{name}: records version {meta.get('version')} is not supported (this mcpsniff reads {VERSION})")
    yield from_dict(meta)
    for lineno, line in enumerate(it, start=2):
        if not line.strip():
            continue
        try:
            yield from_dict(json.loads(line))
        except (json.JSONDecodeError, BadInputError, AttributeError) as exc:
            yield CaptureWarning(t=None, message=f"{name} line {lineno}: unreadable record skipped ({exc})")


@dataclass
class Ids:
    """Hands out short, stable connection and exchange ids ("c1", "c1.2")."""

    _next_conn: int = 1
    _next_xid: dict[str, int] = field(default_factory=dict)

    def conn(self) -> str:
        cid = f"c{self._next_conn}"
        self._next_conn += 1
        return cid

    def xid(self, conn: str) -> str:
        n = self._next_xid.get(conn, 0) + 1
        self._next_xid[conn] = n
        return f"{conn}.{n}"
