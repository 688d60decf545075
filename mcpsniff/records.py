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

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Final, IO, Union

from .errors import BadInputError

FORMAT: Final = "mcpsniff-records"
VERSION: Final = 1

Headers = tuple[tuple[str, str], ...]

# End.outcome values
COMPLETE: Final = "complete"  # the response finished normally
RESET: Final = "reset"  # the connection was reset before the response finished
CLOSED: Final = "closed"  # the connection was closed (FIN) before the response finished
OPEN_AT_END: Final = "open-at-end"  # the capture ended while the exchange was still open
REFUSED: Final = "refused"  # the upstream refused the connection (proxy path)
GAP: Final = "gap"  # bytes were lost in the capture; the rest of the exchange is unknown
ERROR: Final = "error"  # the bytes could not be parsed (see a CaptureWarning record)
OUTCOMES = (COMPLETE, RESET, CLOSED, OPEN_AT_END, REFUSED, GAP, ERROR)

SSE_COMMENT: Final = ":comment"  # SseEvent.event of a comment line (a keep-alive such as ": ping"); data holds its text

# ConnEvent.event values
CONN_EVENTS = ("opened", "refused", "reset", "closed", "open-at-end", "gap")


class Rebuilt:
    """Base of the dataclasses with a written-out ``__init__``: their ``__reduce__``.

    Compiled, a class's ``__new__`` runs its ``__init__``, so copy and pickle, which call
    ``__new__`` without arguments and set the fields afterwards, need the arguments instead.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]


# Each dataclass here spells out its ``__init__``: with mypyc the one @dataclass generates runs as
# interpreted Python (a fifth of the CPU time of ``analyze``, one object per packet or record), a
# written one is compiled.  @dataclass still gives fields(), replace(), ==, repr.
@dataclass(slots=True)
class Meta(Rebuilt):
    """First line of a records file: where the records came from."""

    source: str  # "pcap", "live", "mitm", "har", ...
    origin: str = ""  # capture file name, proxy address, ...
    kind: str = "meta"
    format: str = FORMAT
    version: int = VERSION
    t_first: float | None = None  # time of the file's first packet, of any protocol: Wireshark's time reference

    def __init__(self, source: str, origin: str = "", kind: str = "meta", format: str = FORMAT, version: int = VERSION, t_first: float | None = None) -> None:
        self.source = source
        self.origin = origin
        self.kind = kind
        self.format = format
        self.version = version
        self.t_first = t_first


@dataclass(slots=True)
class ConnEvent(Rebuilt):
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

    def __init__(
        self,
        t: float,
        conn: str,
        event: str,
        client: str = "",
        server: str = "",
        by: str = "",
        detail: str = "",
        frame: int | None = None,
        kind: str = "conn",
    ) -> None:
        self.t = t
        self.conn = conn
        self.event = event
        self.client = client
        self.server = server
        self.by = by
        self.detail = detail
        self.frame = frame
        self.kind = kind


@dataclass(slots=True)
class Request(Rebuilt):
    """An HTTP request; ``t`` is the time of its first byte, ``frame`` the packet that
    completed it (the frame Wireshark shows the reassembled request in)."""

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
    t_frame: float | None = None  # time of ``frame`` (None: no frames, e.g. the proxy path)
    kind: str = "request"

    def __init__(
        self,
        t: float,
        conn: str,
        xid: str,
        method: str,
        target: str,
        headers: Headers = (),
        body: str = "",
        body_size: int = 0,
        truncated: bool = False,
        frame: int | None = None,
        server: str = "",
        t_frame: float | None = None,
        kind: str = "request",
    ) -> None:
        self.t = t
        self.conn = conn
        self.xid = xid
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.body_size = body_size
        self.truncated = truncated
        self.frame = frame
        self.server = server
        self.t_frame = t_frame
        self.kind = kind


@dataclass(slots=True)
class Response(Rebuilt):
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

    def __init__(
        self,
        t: float,
        xid: str,
        status: int,
        reason: str = "",
        headers: Headers = (),
        body: str = "",
        body_size: int = 0,
        truncated: bool = False,
        stream: bool = False,
        t_end: float | None = None,
        frame: int | None = None,
        kind: str = "response",
    ) -> None:
        self.t = t
        self.xid = xid
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.body_size = body_size
        self.truncated = truncated
        self.stream = stream
        self.t_end = t_end
        self.frame = frame
        self.kind = kind


@dataclass(slots=True)
class SseEvent(Rebuilt):
    """One dispatched SSE event; ``t`` is the time of the packet that completed it."""

    t: float
    xid: str
    data: str = ""
    event: str = ""
    id: str | None = None
    retry: int | None = None
    frame: int | None = None
    kind: str = "sse"

    def __init__(
        self,
        t: float,
        xid: str,
        data: str = "",
        event: str = "",
        id: str | None = None,
        retry: int | None = None,
        frame: int | None = None,
        kind: str = "sse",
    ) -> None:
        self.t = t
        self.xid = xid
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.frame = frame
        self.kind = kind


@dataclass(slots=True)
class End(Rebuilt):
    """How an exchange finished (one of OUTCOMES)."""

    t: float
    xid: str
    outcome: str
    detail: str = ""
    kind: str = "end"

    def __init__(self, t: float, xid: str, outcome: str, detail: str = "", kind: str = "end") -> None:
        self.t = t
        self.xid = xid
        self.outcome = outcome
        self.detail = detail
        self.kind = kind


@dataclass(slots=True)
class CaptureWarning(Rebuilt):
    """Something in the input that could not be read as expected; analysis goes on."""

    t: float | None
    message: str
    conn: str = ""
    kind: str = "warning"

    def __init__(self, t: float | None, message: str, conn: str = "", kind: str = "warning") -> None:
        self.t = t
        self.message = message
        self.conn = conn
        self.kind = kind


Record = Union[Meta, ConnEvent, Request, Response, SseEvent, End, CaptureWarning]


# Records through a pipe (capture/parallel.py): a tuple of the fields, the first item says which
# class.  Compiled, these read and set the slots directly: 2-3x cheaper than attrgetter and
# ``cls(*values)`` (measured on the benchmark shapes), and the parent, which also analyses,
# unpacks every record of the capture.
def pack_records(batch: list[Record]) -> list[tuple[Any, ...]]:
    """The records as tuples of their fields (``unpack_records`` gives them back)."""
    out: list[tuple[Any, ...]] = []
    for r in batch:
        if isinstance(r, SseEvent):
            out.append((0, r.t, r.xid, r.data, r.event, r.id, r.retry, r.frame, r.kind))
        elif isinstance(r, Request):
            out.append((1, r.t, r.conn, r.xid, r.method, r.target, r.headers, r.body, r.body_size, r.truncated, r.frame, r.server, r.t_frame, r.kind))
        elif isinstance(r, Response):
            out.append((2, r.t, r.xid, r.status, r.reason, r.headers, r.body, r.body_size, r.truncated, r.stream, r.t_end, r.frame, r.kind))
        elif isinstance(r, End):
            out.append((3, r.t, r.xid, r.outcome, r.detail, r.kind))
        elif isinstance(r, ConnEvent):
            out.append((4, r.t, r.conn, r.event, r.client, r.server, r.by, r.detail, r.frame, r.kind))
        elif isinstance(r, CaptureWarning):
            out.append((5, r.t, r.message, r.conn, r.kind))
        else:
            out.append((6, r.source, r.origin, r.kind, r.format, r.version, r.t_first))
    return out


def unpack_records(items: list[tuple[Any, ...]]) -> list[Record]:
    out: list[Record] = []
    for v in items:
        code: int = v[0]
        if code == 0:
            out.append(SseEvent(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]))
        elif code == 1:
            out.append(Request(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]))
        elif code == 2:
            out.append(Response(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]))
        elif code == 3:
            out.append(End(v[1], v[2], v[3], v[4], v[5]))
        elif code == 4:
            out.append(ConnEvent(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]))
        elif code == 5:
            out.append(CaptureWarning(v[1], v[2], v[3], v[4]))
        else:
            out.append(Meta(v[1], v[2], v[3], v[4], v[5], v[6]))
    return out


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
    """Sort key for records by time; untimed ones (file-level warnings) last.  Also the parallel
    reader's merge key: compiled, its sorts cost half what they did with a Python key function."""
    t = getattr(record, "t", None)
    return float("inf") if t is None else t


def to_dict(record: Record) -> dict[str, Any]:
    data = asdict(record)
    if "headers" in data:
        data["headers"] = [list(pair) for pair in data["headers"]]
    return data


def to_json(record: Record) -> str:
    return json.dumps(to_dict(record), ensure_ascii=False, separators=(",", ":"))


# -- validation of records read back (a records file is input like any capture) ----------
MAX_T = float(1 << 32)  # s since the epoch (2106-02-07, where classic pcap ends): later, negative or NaN is no capture time
MAX_JUMP: Final = 86400.0  # s: a record this far from both its neighbours (which agree) has a bogus time
MAX_INT = (1 << 63) - 1
_LONE_SURROGATE = re.compile(f"[{chr(0xD800)}-{chr(0xDFFF)}]")  # (chr: mypyc refuses surrogates in literals)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def valid_time(t: object) -> bool:
    """A capture timestamp: a finite number of seconds in [0, MAX_T] (not a bool)."""
    return (type(t) is float or type(t) is int) and 0 <= t <= MAX_T  # type: ignore[operator]  # NaN fails both


def _time(v: object) -> str:
    return "" if valid_time(v) else f"expected seconds since the epoch in 0..{MAX_T:.0f}"


def _opt_time(v: object) -> str:
    return "" if v is None else _time(v)


def _str(v: object) -> str:
    return "" if type(v) is str else "expected a string"


def _opt_str(v: object) -> str:
    return "" if v is None or type(v) is str else "expected a string or null"


def _count(v: object) -> str:
    return "" if type(v) is int and 0 <= v <= MAX_INT else "expected a whole number >= 0"


def _opt_count(v: object) -> str:
    return "" if v is None else _count(v)


def _flag(v: object) -> str:
    return "" if type(v) is bool else "expected true or false"


def _status(v: object) -> str:
    return "" if type(v) is int and 0 <= v <= 999 else "expected an HTTP status 0..999"


def _retry(v: object) -> str:
    return "" if v is None or (type(v) is int and 0 <= v <= MAX_INT) else "expected milliseconds (a whole number >= 0) or null"


def _kind(v: object) -> str:
    return ""


_CHECKS: dict[str, Any] = {
    "t": _time, "t_end": _opt_time, "t_frame": _opt_time, "t_first": _opt_time, "conn": _str, "xid": _str, "method": _str, "target": _str, "body": _str, "server": _str,
    "client": _str, "by": _str, "detail": _str, "event": _str, "reason": _str, "data": _str, "message": _str, "outcome": _str,
    "source": _str, "origin": _str, "format": _str, "kind": _kind, "version": _count, "id": _opt_str, "retry": _retry,
    "body_size": _count, "frame": _opt_count, "truncated": _flag, "stream": _flag, "status": _status,
}


def _headers_of(value: object) -> Headers | None:
    """[[name, value], ...] of strings as a Headers tuple; None when it is anything else."""
    if type(value) is not list and type(value) is not tuple:
        return None
    out = []
    for pair in value:  # type: ignore[union-attr]
        if (type(pair) is not list and type(pair) is not tuple) or len(pair) != 2 or type(pair[0]) is not str or type(pair[1]) is not str:
            return None
        out.append((pair[0], pair[1]))
    return tuple(out)


def scrub(value: Any) -> Any:
    """``value`` (a JSON document) with every lone UTF-16 surrogate replaced by U+FFFD.

    JSON may escape half a surrogate pair ("\\ud800"); Python keeps it in the string,
    and then no UTF-8 output (a file, the terminal, the HTML report) can be written.
    """
    if type(value) is str:
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if type(value) is list:
        return [scrub(v) for v in value]
    if type(value) is dict:
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def text(value: str) -> str:
    """A string safe to write as UTF-8: lone surrogates (from JSON escapes or undecodable bytes) replaced."""
    return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value


def escaped(value: str) -> str:
    """A string from mitmproxy, whose undecodable bytes are lone surrogates (surrogateescape),
    with those bytes written as ``\\xNN`` escapes: kept visible, and writable as UTF-8."""
    if value.isascii() or not _LONE_SURROGATE.search(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return text(value)


def _endpoint(v: object) -> str:
    if type(v) is not str:
        return "expected a string"
    if not v:
        return ""
    port = v.rpartition(":")[2]
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535):
        return "expected host:port with a port 0..65535"
    return ""


_CHECKS["server"] = _CHECKS["client"] = _endpoint


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A record class's fields in order (not ``__slots__``: a compiled class has none)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def validate(record: Record) -> Record:
    """``record`` itself once every field has the type and range ``from_dict`` demands
    (for readers that build records from other formats); BadInputError otherwise."""
    kind = record.kind
    for key in _field_names(type(record)):
        value = getattr(record, key)
        if key == "headers":
            if _headers_of(value) is None:
                raise BadInputError(f"malformed {kind} record: headers: expected a list of [name, value] strings")
            continue
        check = _opt_time if key == "t" and kind == "warning" else _CHECKS.get(key)
        problem = check(value) if check is not None else ""
        if problem:
            raise BadInputError(f"malformed {kind} record: {key}: {problem}")
    t_end = getattr(record, "t_end", None)
    if t_end is not None and abs(t_end - record.t) > MAX_JUMP:  # type: ignore[union-attr]
        raise BadInputError(f"malformed {kind} record: t_end is {abs(t_end - record.t):.0f} s from t")  # type: ignore[union-attr]
    return record


def from_dict(data: dict[str, Any]) -> Record:
    """Build a record from its dict form; raises BadInputError on unknown shapes and wrong field types.

    Every field is checked (a string where a string belongs, a finite time in
    0..MAX_T, an HTTP status 0..999, ...), so nothing after the reader meets a value
    of the wrong type.
    """
    if type(data) is not dict:
        raise BadInputError(f"expected a JSON object, not {type(data).__name__}")
    kind = data.get("kind")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadInputError(f"unknown record kind {kind!r}"[:120])
    fields = dict(data)
    for key, value in fields.items():
        if key == "headers":
            headers = _headers_of(value)
            if headers is None:
                raise BadInputError(f"malformed {kind} record: headers: expected a list of [name, value] strings")
            fields["headers"] = headers
            continue
        check = _opt_time if key == "t" and cls is CaptureWarning else _CHECKS.get(key)
        problem = check(value) if check is not None else ""
        if problem:
            raise BadInputError(f"malformed {kind} record: {key}: {problem}")
    try:
        record = cls(**fields)
    except TypeError as exc:
        raise BadInputError(f"malformed {kind} record: {exc}") from None
    t_end = getattr(record, "t_end", None)
    if t_end is not None and abs(t_end - record.t) > MAX_JUMP:  # type: ignore[union-attr]
        raise BadInputError(f"malformed {kind} record: t_end is {abs(t_end - record.t):.0f} s from t")  # type: ignore[union-attr]
    return record


class TimeGuard:
    """Holds back one timed record to drop the ones whose time is bogus next to their neighbours.

    A record more than MAX_JUMP from both the record before and the record after it,
    while those two agree, is dropped with a warning (one wrong clock value must not
    turn every namespace ``stalled`` by stretching the capture's end); any other jump
    of more than MAX_JUMP is kept but warned about, so a verdict it changes is never
    changed silently.  ``feed`` returns the records that are ready, ``finish`` the rest.
    """

    MAX_WARNINGS = 10

    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped = 0
        self._warned = 0
        self._before: float | None = None  # time of the last timed record passed on
        self._held: tuple[Record, str, float] | None = None  # (timed record, where, its time) waiting for its successor
        self._after_held: list[Record] = []  # untimed records read after the held one

    def _warn(self, out: list[Record], message: str) -> None:
        self._warned += 1
        if self._warned <= self.MAX_WARNINGS:
            out.append(CaptureWarning(t=None, message=f"{self.name} {message}"))

    def feed(self, record: Record, where: str) -> list[Record]:
        t = getattr(record, "t", None)
        if t is None:
            if self._held is None:
                return [record]
            self._after_held.append(record)
            return []
        out: list[Record] = []
        if self._held is not None:
            held, held_where, ht = self._held
            before = self._before
            if before is not None and abs(ht - before) > MAX_JUMP and abs(ht - t) > MAX_JUMP and abs(t - before) <= MAX_JUMP:
                self.skipped += 1
                self._warn(out, f"{held_where}: {held.kind} record skipped: its time {ht:.3f} is {abs(ht - t) / 86400:.1f} days away from the records around it")
            else:
                if before is not None and abs(ht - before) > MAX_JUMP:
                    self._warn(out, f"{held_where}: the records' time jumps by {(ht - before) / 86400:+.1f} days; verdicts that depend on silence may be wrong")
                out.append(held)
                self._before = ht
            out.extend(self._after_held)
            self._after_held = []
        self._held = (record, where, t)
        return out

    def finish(self) -> list[Record]:
        out: list[Record] = []
        if self._held is not None:
            held, where, ht = self._held
            before = self._before
            if before is not None and abs(ht - before) > MAX_JUMP:
                self._warn(out, f"{where}: the last record's time jumps by {(ht - before) / 86400:+.1f} days; verdicts that depend on silence may be wrong")
            out.append(held)
            self._held = None
        out.extend(self._after_held)
        self._after_held = []
        if self._warned > self.MAX_WARNINGS:
            out.append(CaptureWarning(t=None, message=f"{self.name}: {self._warned - self.MAX_WARNINGS} more time warning(s) ({self.skipped} record(s) skipped for a bogus time in all)"))
        return out


def guard_times(records: Iterable[Record], name: str) -> Iterator[Record]:
    """``records`` through a TimeGuard (``where`` is the record's position)."""
    guard = TimeGuard(name)
    for n, record in enumerate(records, start=1):
        yield from guard.feed(record, f"record {n}")
    yield from guard.finish()


class RecordWriter:
    """Writes records as JSON lines, flushing each so a killed run leaves a readable file."""

    def __init__(self, stream: IO[str], source: str, origin: str = "", meta: bool = True) -> None:
        self._stream = stream
        if meta:  # (False: appending to a file that has its header line)
            self.write(Meta(source=source, origin=origin))

    def write(self, record: Record) -> None:
        try:
            self._stream.write(to_json(record) + "\n")
        except UnicodeEncodeError:  # a lone surrogate somewhere: as a JSON escape, the record is still written
            self._stream.write(json.dumps(to_dict(record), ensure_ascii=True, separators=(",", ":")) + "\n")
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
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise BadInputError(f"{name}: not an mcpsniff records file (first line is not JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BadInputError(f"{name}: not an mcpsniff records file")
    if meta.get("version") != VERSION or type(meta.get("version")) is not int:
        raise BadInputError(f"{name}: records version {text(str(meta.get('version')))[:40]} is not supported (this mcpsniff reads {VERSION})")
    try:
        yield from_dict(scrub(meta))
    except BadInputError as exc:
        raise BadInputError(f"{name}: bad header line ({exc})") from None
    for lineno, line in enumerate(it, start=2):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if "\\u" in line and _SURROGATE_ESCAPE.search(line):
                data = scrub(data)
            record = from_dict(data)
        except (BadInputError, RecursionError, ValueError) as exc:  # JSONDecodeError, too many digits: ValueError
            reason = "nested too deeply" if isinstance(exc, RecursionError) else text(str(exc))[:200]
            yield CaptureWarning(t=None, message=f"{name} line {lineno}: unreadable record skipped ({reason})")
            continue
        yield record


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
