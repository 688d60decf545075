"""Incremental HTTP/1.1 parsing of one direction of a passively captured connection.

Sans-IO: ``Http1Parser.feed(data, t, frame)`` returns the events those bytes
completed: a head (``RequestHead``/``ResponseHead``), ``BodyPiece``s as body bytes
arrive (each with the time and frame of the packet that carried it, so SSE timing
survives), then ``MessageEnd``.  Broken input gives one ``ParseError`` and the
parser skips to the next line that looks like a message start.

Hand-written rather than h11: on MCP traffic a pair of h11 connections (mirrored
with ``send()`` so both state machines advance) runs at ~30k packets/s here, this
parser at ~250k (benchmarks/bench_http1.py), and a sniffer must be lenient where h11
is strict: bare-LF line ends, resynchronisation after garbage or lost bytes,
responses whose request it never saw.  Framing follows RFC 9112 section 6.3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from ..records import Rebuilt

Headers = tuple[tuple[str, str], ...]

MAX_HEAD: Final = 65536  # bytes: a longer head is an error
_MAX_LINE: Final = 4096  # bytes: a chunk-size line or partial line kept while resynchronising

# parser states
_HEAD: Final = 0
_LENGTH: Final = 1
_CHUNK_SIZE: Final = 2
_CHUNK_DATA: Final = 3
_CHUNK_END: Final = 4
_TRAILER: Final = 5
_UNTIL_CLOSE: Final = 6
_RESYNC: Final = 7
_DEAD: Final = 8
# framing of a body, besides a length >= 0
_CHUNKED: Final = -1
_CLOSE: Final = -2
_SWITCH: Final = -3

try:  # bytes.find without its argument parsing (wire/_find.c), built by scripts/compile.py
    from ._find import find as _c_find
except ImportError:
    _c_find = None


def find(buf: bytes, sub: bytes, start: int, end: int) -> int:
    """``buf.find(sub, start, end)``: a plain function call, not a METH_VARARGS method's tuple
    and format string (up to 2,500 instructions, a few times per head and per chunk)."""
    if _c_find is not None:
        index: int = _c_find(buf, sub, start, end)
        return index
    return buf.find(sub, start, end)


_REQUEST_START = re.compile(rb"(?m)^[A-Z]{3,12} [^ \r\n]+ HTTP/1\.\d\r?$")
_RESPONSE_START = re.compile(rb"(?m)^HTTP/1\.\d \d\d\d(?=[ \r\n])")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


# The events spell out their __init__ (dataclass() keeps it): the compiled build then
# constructs them natively, not through dataclass()'s interpreted __init__.
@dataclass(slots=True)
class RequestHead(Rebuilt):
    """Request line and headers; ``t``/``frame`` are those of the message's first byte."""

    method: str
    target: str
    version: str
    headers: Headers
    t: float
    frame: int | None
    content_type: str = ""  # media type, lower case, without parameters
    content_encoding: str = ""  # lower case

    def __init__(self, method: str, target: str, version: str, headers: Headers, t: float, frame: int | None, content_type: str = "", content_encoding: str = "") -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.t = t
        self.frame = frame
        self.content_type = content_type
        self.content_encoding = content_encoding


@dataclass(slots=True)
class ResponseHead(Rebuilt):
    """Status line and headers.  ``method`` is that of the request it answers (None: unknown)."""

    status: int
    reason: str
    version: str
    headers: Headers
    t: float
    frame: int | None
    method: str | None
    has_body: bool
    content_type: str = ""
    content_encoding: str = ""

    def __init__(self, status: int, reason: str, version: str, headers: Headers, t: float, frame: int | None, method: str | None, has_body: bool, content_type: str = "", content_encoding: str = "") -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.t = t
        self.frame = frame
        self.method = method
        self.has_body = has_body
        self.content_type = content_type
        self.content_encoding = content_encoding


@dataclass(slots=True)
class BodyPiece(Rebuilt):
    """Body bytes (chunked framing removed) from the packet at ``t``/``frame``."""

    data: bytes
    t: float
    frame: int | None

    def __init__(self, data: bytes, t: float, frame: int | None) -> None:
        self.data = data
        self.t = t
        self.frame = frame


@dataclass(slots=True)
class MessageEnd(Rebuilt):
    """The current message is complete."""

    t: float
    frame: int | None

    def __init__(self, t: float, frame: int | None) -> None:
        self.t = t
        self.frame = frame


@dataclass(slots=True)
class ParseError(Rebuilt):
    """Unparseable bytes (one line). ``in_body``: the message whose head was emitted is broken."""

    message: str
    t: float
    frame: int | None
    in_body: bool = False

    def __init__(self, message: str, t: float, frame: int | None, in_body: bool = False) -> None:
        self.message = message
        self.t = t
        self.frame = frame
        self.in_body = in_body


HttpEvent = RequestHead | ResponseHead | BodyPiece | MessageEnd | ParseError


def preview(data: bytes, limit: int = 24) -> str:
    """Quoted, escaped start of some bytes for a one-line message: '\\x16\\x03\\x01...'."""
    text = data[:limit].decode("latin-1").encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return f"'{text}...'" if len(data) > limit else f"'{text}'"


# Header lines repeat a lot (same server, same client, same session): parsed lines are
# cached, keyed by their bytes (a head that is not cached whole is split and looked up
# line by line, never decoded as a whole).  Bounded: cleared when full.
_F_LENGTH: Final = 1
_F_CODING: Final = 2
_F_TYPE: Final = 3
_F_ENCODING: Final = 4
_FRAMING_NAMES: Final = {"content-length": _F_LENGTH, "transfer-encoding": _F_CODING, "content-type": _F_TYPE, "content-encoding": _F_ENCODING}


class _Line:
    """A parsed header line: its (name, value) pair, shared by every head that has it,
    and for the headers framing looks at (``kind`` > 0) what it says."""

    __slots__ = ("pair", "kind", "length", "text")

    def __init__(self, pair: Any, kind: int, length: int, text: str) -> None:
        self.pair = pair  # tuple[str, str], typed Any so the compiled build keeps the tuple object
        self.kind = kind
        self.length = length  # _F_LENGTH: the Content-Length, -1 if bad
        self.text = text  # _F_CODING: last coding; _F_TYPE: media type; _F_ENCODING: encoding


class _Head:
    """What ``_head_event`` needs of a head: a pure function of its bytes, so cached.
    ``word``/``text``: method/target of a request, ""/reason of a response."""

    __slots__ = ("word", "status", "text", "version", "headers", "ctype", "cenc", "framing")

    def __init__(self, word: str, status: int, text: str, version: str, headers: Headers, ctype: str, cenc: str, framing: int) -> None:
        self.word = word
        self.status = status
        self.text = text
        self.version = version
        self.headers = headers
        self.ctype = ctype
        self.cenc = cenc
        self.framing = framing


_LINES: Final[dict[bytes, _Line]] = {}  # header line -> parsed
_STARTS: Final[dict[bytes, tuple[str, int, str, str]]] = {}  # valid request line -> (method, 0, target, version)
_STATUSES: Final[dict[bytes, tuple[str, int, str, str]]] = {}  # valid status line -> ("", status, reason, version)
_CHUNK_SIZES: Final[dict[bytes, int]] = {}  # chunk-size line (CR and extensions included) -> size
_CACHE_MAX: Final = 4096
# Whole heads repeat too (about 60% of them on real MCP captures: same client, same
# body length, same second): a repeated head costs one dict lookup.
_REQUEST_HEADS: Final[dict[bytes, _Head]] = {}
_RESPONSE_HEADS: Final[dict[bytes, _Head]] = {}
_HEADS_MAX: Final = 1024
_HEAD_KEY_MAX: Final = 2048  # bytes: longer heads are not cached


def _header_line(raw: bytes) -> _Line | None:
    """Parse (and cache) one header line; None if it is not "name: value"."""
    line = raw.decode("latin-1")
    name, sep, value = line.partition(":")
    if not sep or not name or " " in name or "\t" in name:
        return None
    value = value.strip(" \t")
    kind = _FRAMING_NAMES.get(name.lower(), 0)
    length, text = -1, ""
    if kind == _F_LENGTH:
        length = _content_length(value)
    elif kind == _F_CODING:
        text = value.rsplit(",", 1)[-1].strip().lower()
    elif kind == _F_TYPE:
        text = value.split(";", 1)[0].strip().lower()
    elif kind == _F_ENCODING:
        text = value.lower()
    if len(_LINES) >= _CACHE_MAX:
        _LINES.clear()
    entry = _LINES[raw] = _Line((name, value), kind, length, text)
    return entry


def _split_lines(raw: bytes) -> list[bytes]:
    """A head's lines, CRLF or bare LF."""
    lines = raw.split(b"\r\n")
    if raw.count(b"\n") != len(lines) - 1:  # bare LF somewhere
        lines = [line.removesuffix(b"\r") for line in raw.split(b"\n")]
    return lines


MAX_LENGTH_DIGITS: Final = 18  # a Content-Length with more digits is bad (and int() refuses more than 4300)


def _content_length(value: str) -> int:
    """Content-Length value (a list of equal values is allowed) or -1."""
    if value.isascii() and value.isdigit():
        return int(value) if len(value) <= MAX_LENGTH_DIGITS else -1
    values = {v.strip() for v in value.split(",")}
    if len(values) == 1:
        (single,) = values
        if single.isascii() and single.isdigit() and len(single) <= MAX_LENGTH_DIGITS:
            return int(single)
    return -1


class Http1Parser:
    """Parses one direction: client bytes (``requests=True``) or server bytes.

    The response side must know the request methods, in order (a HEAD response has no
    body): call ``expect(method)`` for every request head; final responses consume
    them FIFO from ``methods``.  ``resync=True`` starts by looking for a message start
    (for connections picked up mid-stream).
    """

    __slots__ = ("requests", "max_head", "methods", "_state", "_buf", "_remaining", "pending_since", "_since_frame")

    def __init__(self, requests: bool, *, max_head: int = MAX_HEAD, resync: bool = False) -> None:
        self.requests = requests
        self.max_head = max_head
        self.methods: list[str] = []  # a list, not a deque: 56 bytes instead of 624 per idle connection (pop(0) of a few)
        self._state = _RESYNC if resync else _HEAD
        self._buf = b""  # unconsumed bytes (partial head or line)
        self._remaining = 0  # body or chunk bytes still expected
        # time of the first byte of the message in progress (None between messages)
        self.pending_since: float | None = None
        self._since_frame: int | None = None

    def expect(self, method: str) -> None:
        """Tell the response parser that a request with this method was sent."""
        self.methods.append(method)

    @property
    def in_body(self) -> bool:
        """A head was emitted and its message is not complete yet."""
        return _LENGTH <= self._state <= _UNTIL_CLOSE

    @property
    def dead(self) -> bool:
        return self._state == _DEAD

    def stop(self) -> None:
        """Ignore everything from now on (protocol switched, not HTTP, ...)."""
        self._state = _DEAD
        self._buf = b""
        self.pending_since = None

    def lost(self) -> None:
        """Bytes were lost: drop the message in progress and look for the next start."""
        if self._state != _DEAD:
            self._state = _RESYNC
            self._buf = b""
            self.pending_since = None

    def eof(self, t: float, frame: int | None = None) -> list[HttpEvent]:
        """The sender closed its side: ends a close-delimited body (nothing else)."""
        if self._state == _UNTIL_CLOSE:
            self._state = _HEAD
            self.pending_since = None
            return [MessageEnd(t, frame)]
        return []

    def whole_chunks(self, data: bytes) -> tuple[list[bytes], bool] | None:
        """``feed`` for the usual packet of a chunked stream, without event objects.

        Between chunks, with nothing buffered and ``data`` made of whole chunks only:
        the chunks' payloads (what ``feed`` would give as ``BodyPiece``s) and whether
        the last chunk (no trailers) ended the message (``feed``'s ``MessageEnd``).
        Anything else (a partial chunk, trailers, more bytes after the last chunk, a
        chunk-size line never seen before) gives None and changes nothing: use ``feed``.
        """
        if self._state != _CHUNK_SIZE or self._buf:
            return None
        sizes = _CHUNK_SIZES  # only valid sizes are cached: a miss goes the general way
        payloads: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n:
            nl = find(data, b"\n", pos, n)
            size = sizes.get(data[pos:nl], -1) if nl >= 0 else -1
            if size < 0:
                return None
            start = nl + 1
            if not size:
                if start + 2 != n or data[start:n] != b"\r\n":
                    return None
                self._state = _HEAD
                self.pending_since = None
                return payloads, True
            end = start + size
            if data[end : end + 2] != b"\r\n":  # (a slice, not startswith(): see find())
                return None
            payloads.append(data[start:end])
            pos = end + 2
        return payloads, False

    def feed(self, data: bytes, t: float, frame: int | None = None) -> list[HttpEvent]:
        """Parse the next in-order bytes of this direction."""
        out: list[HttpEvent] = []
        if self._state == _DEAD or not data:
            return out
        if self._buf:
            buf = self._buf + data
            self._buf = b""
        else:
            buf = data
        pos = 0
        n = len(buf)
        while pos < n:
            state = self._state
            if state == _HEAD:
                pos = self._head(buf, pos, t, frame, out)
            elif state == _LENGTH or state == _CHUNK_DATA:
                take = self._remaining if self._remaining < n - pos else n - pos
                out.append(BodyPiece(buf[pos : pos + take] if pos or take < n else buf, t, frame))
                pos += take
                self._remaining -= take
                if not self._remaining:
                    if state == _LENGTH:
                        self._end(out, t, frame)
                    else:
                        self._state = _CHUNK_END
            elif state == _CHUNK_SIZE:
                pos = self._chunk_size(buf, pos, t, frame, out)
            elif state == _CHUNK_END:
                if buf[pos : pos + 2] == b"\r\n":
                    pos += 2
                elif buf[pos] == 10:
                    pos += 1
                elif n - pos == 1 and buf[pos] == 13:
                    self._buf = buf[pos:]
                    break
                else:
                    pos = self._error(f"no CRLF after chunk data: {preview(buf[pos:pos + 8])}", buf, pos, t, frame, out)
                    continue
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if n - pos > self.max_head:
                        pos = self._error("trailer section too long", buf, pos, t, frame, out)
                        continue
                    self._buf = buf[pos:]
                    break
                empty = nl == pos or (nl == pos + 1 and buf[pos] == 13)
                pos = nl + 1
                if empty:
                    self._end(out, t, frame)
            elif state == _UNTIL_CLOSE:
                out.append(BodyPiece(buf[pos:] if pos else buf, t, frame))
                pos = n
            elif state == _RESYNC:
                pos = self._resync(buf, pos)
            else:  # _DEAD
                break
        return out

    # --- states -----------------------------------------------------------------

    def _end(self, out: list[HttpEvent], t: float, frame: int | None) -> None:
        out.append(MessageEnd(t, frame))
        self._state = _HEAD
        self.pending_since = None

    def _error(self, message: str, buf: bytes, pos: int, t: float, frame: int | None, out: list[HttpEvent]) -> int:
        """Report, then resynchronise from the byte after ``pos``."""
        out.append(ParseError(message, t, frame, _LENGTH <= self._state <= _UNTIL_CLOSE))
        self._state = _RESYNC
        self.pending_since = None
        return self._resync(buf, pos + 1)

    def _resync(self, buf: bytes, pos: int) -> int:
        """Skip to the next line that looks like a message start."""
        match = (_REQUEST_START if self.requests else _RESPONSE_START).search(buf, pos)
        if match is not None:
            self._state = _HEAD
            return match.start()
        nl = buf.rfind(b"\n", pos) + 1
        start = max(nl, pos)
        if len(buf) - start <= _MAX_LINE:
            self._buf = buf[start:]  # maybe the beginning of a start line
        return len(buf)

    def _head(self, buf: bytes, pos: int, t: float, frame: int | None, out: list[HttpEvent]) -> int:
        n = len(buf)
        while pos < n and buf[pos] in b"\r\n":  # empty lines between messages are allowed
            pos += 1
        if pos == n:
            return n
        if self.pending_since is None:
            self.pending_since = t
            self._since_frame = frame
        cache = _REQUEST_HEADS if self.requests else _RESPONSE_HEADS
        parsed: _Head | None = None
        raw = b""
        end = body = -1
        crlf = find(buf, b"\n\r\n", pos, n)
        if crlf >= 0:
            end, body = crlf, crlf + 3
            if buf[end - 1] == 13:
                end -= 1
            if crlf - pos <= self.max_head:  # the limit counts the CR
                raw = buf[pos:end]
                # A cached head has no "\n\n" and does not end with "\n": found, it ends here.
                parsed = cache.get(raw)
        if parsed is None:
            lines = raw.split(b"\r\n") if raw else None
            if lines is None or not lines[-1] or raw.count(b"\n") != len(lines) - 1:
                # not all CRLF, or "\r\n\n\r\n" (or too long): the head may end earlier, at "\n\n"
                lines = None
                lf = buf.find(b"\n\n", pos, crlf + 1 if crlf >= 0 else n)
                if lf >= 0:
                    end, body = lf, lf + 2
                    raw = b""
                elif crlf < 0:
                    bad = self._bad_start(buf, pos)
                    if bad:
                        return self._error(bad, buf, pos, t, frame, out)
                    if n - pos > self.max_head:
                        what = "request" if self.requests else "response"
                        return self._error(f"{what} head larger than {self.max_head} bytes", buf, pos, t, frame, out)
                    self._buf = buf[pos:]
                    return n
                else:
                    end = crlf
                if end - pos > self.max_head:
                    what = "request" if self.requests else "response"
                    return self._error(f"{what} head larger than {self.max_head} bytes", buf, pos, t, frame, out)
                if buf[end - 1] == 13:
                    end -= 1
                if not raw:
                    raw = buf[pos:end]
                    parsed = cache.get(raw)
            if parsed is None:
                result = self._parse_head(lines if lines is not None else _split_lines(raw))
                if isinstance(result, str):
                    return self._error(result, buf, pos, t, frame, out)
                parsed = result
                if len(cache) >= _HEADS_MAX:
                    cache.clear()
                if len(raw) <= _HEAD_KEY_MAX:
                    cache[raw] = parsed
        framing = self._head_event(parsed, out)
        if framing > 0:
            self._state = _LENGTH
            self._remaining = framing
        elif framing == 0:
            self._end(out, t, frame)
        elif framing == _CHUNKED:
            self._state = _CHUNK_SIZE
        elif framing == _CLOSE:
            self._state = _UNTIL_CLOSE
        else:  # _SWITCH: the connection now speaks another protocol
            self._end(out, t, frame)
            self.stop()
            return n
        return body

    def _bad_start(self, buf: bytes, pos: int) -> str:
        """Why the (incomplete) head at ``pos`` cannot be an HTTP/1 start line, or ""."""
        if self.requests:
            sp = buf.find(b" ", pos, pos + 13)
            token = buf[pos:sp] if sp >= 0 else buf[pos : pos + 13]
            if (sp < 0 and len(token) > 12) or not (token.isalpha() and token.isupper()):
                return f"not an HTTP request: {preview(buf[pos:])}"
        else:
            prefix = buf[pos : pos + 5]
            if not b"HTTP/".startswith(prefix):
                return f"not an HTTP response: {preview(buf[pos:])}"
        return ""

    def _parse_head(self, lines: list[bytes]) -> _Head | str:
        """A head's lines -> what ``_head_event`` needs, or a one-line error.  Lines are
        parsed (and cached) as bytes, one by one."""
        start = self._start_line(lines[0])
        if isinstance(start, str):
            return start
        word, status, text, version = start
        headers: list[Any] = []
        length = -1
        chunked = False
        coding = ctype = cenc = ""
        for i in range(1, len(lines)):
            hline = lines[i]
            entry = _LINES.get(hline)
            if entry is None:
                entry = _header_line(hline)
                if entry is None:
                    folded = hline.decode("latin-1")
                    if folded[:1] in (" ", "\t") and headers:  # obsolete line folding
                        name, value = headers[-1]
                        headers[-1] = (name, f"{value} {folded.strip()}")
                        continue
                    return f"bad header line {preview(hline, 60)}"
            headers.append(entry.pair)
            kind = entry.kind
            if not kind:
                continue
            if kind == _F_LENGTH:
                parsed = entry.length
                if parsed < 0 or (length >= 0 and parsed != length):
                    return f"bad Content-Length {preview(entry.pair[1].encode('latin-1'), 40)}"
                length = parsed
            elif kind == _F_CODING:
                coding = entry.text
                chunked = coding == "chunked"
            elif kind == _F_TYPE:
                ctype = entry.text
            else:
                cenc = entry.text
        if self.requests:
            if chunked:
                return _Head(word, 0, text, version, tuple(headers), ctype, cenc, _CHUNKED)
            if coding:
                return f"unsupported Transfer-Encoding {coding!r} in a request"
            return _Head(word, 0, text, version, tuple(headers), ctype, cenc, max(length, 0))
        framing = _CHUNKED if chunked else _CLOSE if coding or length < 0 else length
        return _Head("", status, text, version, tuple(headers), ctype, cenc, framing)

    def _start_line(self, raw: bytes) -> tuple[str, int, str, str] | str:
        """(method, 0, target, version) of a request line, ("", status, reason, version)
        of a status line (cached), or a one-line error."""
        starts = _STARTS if self.requests else _STATUSES
        start = starts.get(raw)
        if start is not None:
            return start
        line = raw.decode("latin-1")
        if self.requests:
            parts = line.split(" ")
            if len(parts) != 3:
                parts = line.split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not (parts[0].isalpha() and parts[0].isupper()):
                return f"bad request line {preview(raw, 60)}"
            start = (parts[0], 0, parts[1], parts[2])
        else:
            version, _, rest = line.partition(" ")
            code = rest[:3]
            if not (version.startswith("HTTP/1.") and code.isascii() and code.isdigit() and rest[3:4] in ("", " ")):
                return f"bad status line {preview(raw, 60)}"
            start = ("", int(code), rest[4:], version)
        if len(starts) >= _CACHE_MAX:
            starts.clear()
        starts[raw] = start
        return start

    def _head_event(self, parsed: _Head, out: list[HttpEvent]) -> int:
        """Append the head event of a parsed head (adding time, frame and, for a response,
        the request method it answers, which decides whether it has a body); its framing."""
        since = self.pending_since if self.pending_since is not None else 0.0
        if self.requests:
            out.append(RequestHead(parsed.word, parsed.text, parsed.version, parsed.headers, since, self._since_frame, parsed.ctype, parsed.cenc))
            return parsed.framing
        status = parsed.status
        methods = self.methods
        method = methods.pop(0) if (status >= 200 or status == 101) and methods else None
        switch = status == 101 or (method == "CONNECT" and status < 300)
        has_body = not (status < 200 or status == 204 or status == 304 or method == "HEAD" or switch)
        out.append(ResponseHead(status, parsed.text, parsed.version, parsed.headers, since, self._since_frame, method, has_body, parsed.ctype, parsed.cenc))
        if switch:
            return _SWITCH
        if not has_body:
            return 0
        return parsed.framing

    def _chunk_size(self, buf: bytes, pos: int, t: float, frame: int | None, out: list[HttpEvent]) -> int:
        nl = find(buf, b"\n", pos, len(buf))
        if nl < 0:
            if len(buf) - pos > _MAX_LINE:
                return self._error("chunk size line too long", buf, pos, t, frame, out)
            self._buf = buf[pos:]
            return len(buf)
        line = buf[pos:nl]
        remaining = _CHUNK_SIZES.get(line, -1)
        if remaining < 0:
            size = line.split(b";", 1)[0].strip()
            if _HEX.fullmatch(size) is None:
                return self._error(f"bad chunk size {preview(line.rstrip(), 16)}", buf, pos, t, frame, out)
            remaining = int(size, 16)
            if len(_CHUNK_SIZES) >= _CACHE_MAX:
                _CHUNK_SIZES.clear()
            _CHUNK_SIZES[line] = remaining
        start = nl + 1
        if remaining:
            end = start + remaining
            if buf[end : end + 2] == b"\r\n":  # the whole chunk is here (the usual case)
                out.append(BodyPiece(buf[start:end], t, frame))
                return end + 2
            self._remaining = remaining
            self._state = _CHUNK_DATA
        elif buf[start : start + 2] == b"\r\n":  # last chunk, no trailers
            self._end(out, t, frame)
            return start + 2
        else:
            self._state = _TRAILER
        return start
