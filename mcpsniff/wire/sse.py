"""Incremental Server-Sent Events decoder (WHATWG "event stream interpretation").

Feed body chunks as they arrive with the time/frame of their packet; get back the
events they completed, each stamped with the chunk that completed it.

Why not httpx-sse's decoder: its line decoder holds a chunk's trailing CR back
until the next chunk arrives, so an event ended by "\\r\\n\\r" gets the time of a
later packet (or is never dispatched when the stream stalls: the very case we
diagnose); after any ``id:`` every extra blank line dispatches an empty event;
``retry`` goes through ``int()`` (accepts "+5", " 7", "1_0"); there is no BOM
handling and no way to tell an event without ``data`` (which the spec does not
dispatch, but the 2025-11-25 priming event is one) from one with empty data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..records import SSE_COMMENT as COMMENT, Rebuilt  # the ``event`` of a comment line's item; its data is the comment text
from .http1 import find

_BOM: Final = b"\xef\xbb\xbf"
MAX_RETRY_DIGITS: Final = 18  # a longer ``retry`` (over 31 million years of ms) is ignored
# the usual chunk of an MCP stream: one whole event, an optional event line and one data line
_SDK_EVENT: Final = b"event: message\r\ndata: "  # 22 bytes
_ONE_EVENT = re.compile(rb"(?:event: ?([^\r\n]*)\r?\n)?data: ?([^\r\n]*)\r?\n\r?\n").fullmatch
Fields = tuple[str, str, str | None, int | None, bool]  # data, event, id, retry, has_data (as in SseMessage)
# Comment lines, which a browser drops, come out as items with event COMMENT: a stream that only
# carries keep-alive comments (a hung tool call) must show them as evidence.


# The dataclass below spells out __init__ (mypyc compiles it; the generated one runs as Python: see records.py).
@dataclass(slots=True)
class SseMessage(Rebuilt):
    """One event (read-only by convention; not frozen because that is ~5x slower to build).

    ``id`` is the last event ID in force (it persists across events, per spec);
    ``retry`` is set only on the event that carried a valid ``retry`` field.
    ``has_data`` is false for an event with no ``data`` line, which a browser would
    not dispatch (for example the MCP 2025-11-25 priming event ``id: x`` + blank line).
    """

    data: str
    event: str
    id: str | None
    retry: int | None
    has_data: bool
    t: float
    frame: int | None

    def __init__(self, data: str, event: str, id: str | None, retry: int | None, has_data: bool, t: float, frame: int | None) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.has_data = has_data
        self.t = t
        self.frame = frame


class SseDecoder:
    """Bytes (UTF-8) or text chunks in, ``SseMessage``s out."""

    __slots__ = ("_parts", "_skip_lf", "_bom_check", "_data", "_event", "_id", "_retry", "_fields", "last_id", "ignored_retry")

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # pieces of the incomplete line (a list: long lines come in many packets)
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF is its pair
        self._bom_check = True  # still at the start of the stream
        self._data: list[bytes] = []
        self._event = b""
        self._id: bytes | None = None
        self._retry: int | None = None
        self._fields = False  # any field seen since the last dispatch
        self.last_id: str | None = None
        self.ignored_retry = 0  # ``retry`` fields of more than MAX_RETRY_DIGITS digits (ignored; the caller may warn)

    def feed(self, chunk: bytes | str, t: float, frame: int | None = None) -> list[SseMessage]:
        """The events this chunk completed, stamped with ``t``/``frame``."""
        return [SseMessage(data, event, eid, retry, has_data, t, frame) for data, event, eid, retry, has_data in self.decode(chunk)]

    def decode(self, chunk: bytes | str) -> list[Fields]:
        """``feed`` without the message objects (the HTTP layer builds its records directly)."""
        if self._bom_check and not self._parts and chunk[:1] not in (b"", b"\xef", "\ufeff"):
            self._bom_check = False  # the stream does not start with a BOM
        if not (self._parts or self._skip_lf or self._bom_check or self._fields) and type(chunk) is bytes:
            # the fast paths: nothing pending and a chunk that is one plain event (the SDKs' exact form first)
            # find(), not ``b"\n" in``: bytes.__contains__ tries the argument as an int first and
            # raises (and drops) a TypeError for every bytes one, which costs more than the search
            # (slices and http1.find(), not startswith() and bytes.find(): see find())
            if chunk[:22] == _SDK_EVENT and chunk[-4:] == b"\r\n\r\n" and find(chunk, b"\n", 22, -4) < 0 and find(chunk, b"\r", 22, -4) < 0:
                return [(chunk[22:-4].decode("utf-8", "replace"), "message", self.last_id, None, True)]
            one = _ONE_EVENT(chunk)
            if one is not None:
                event, data = one.groups()
                return [(data.decode("utf-8", "replace"), event.decode("utf-8", "replace") if event else "", self.last_id, None, True)]
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        if self._bom_check:
            head = b"".join(self._parts) + chunk
            if len(head) < 3 and _BOM.startswith(head):
                self._parts = [head] if head else []  # could still be a BOM split across chunks
                return []
            self._parts = []
            self._bom_check = False
            chunk = head[3:] if head.startswith(_BOM) else head
        if 10 not in chunk and 13 not in chunk:  # no line end: keep the piece
            if chunk:
                self._parts.append(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            text = b"".join(self._parts)
        else:
            text = chunk
        if 13 in text:  # any CR
            if text[-1] == 13:
                self._skip_lf = True  # a CR ends a line; an LF right after it does not end another
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        rest = lines.pop()
        self._parts = [rest] if rest else []
        out: list[Fields] = []
        for line in lines:
            if not line:
                if self._fields:
                    out.append(self._dispatch())
                continue
            if line[0] == 58:  # ':' starts a comment: a keep-alive (": ping - <time>"), told as its own item
                out.append((line[1:].strip().decode("utf-8", "replace"), COMMENT, self.last_id, None, False))
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            elif name == b"id":
                if 0 in value:  # a NUL (an int: bytes.__contains__ of bytes raises and drops a TypeError first)
                    continue  # ignored, per spec
                self._id = value
            elif name == b"retry":
                if not value.isdigit():  # bytes: ASCII digits only
                    continue
                if len(value) > MAX_RETRY_DIGITS:  # no real reconnection time, and int() refuses > 4300 digits
                    self.ignored_retry += 1
                    continue
                self._retry = int(value)
            else:
                continue  # unknown field: ignored
            self._fields = True
        return out

    def _dispatch(self) -> Fields:
        if self._id is not None:
            self.last_id = self._id.decode("utf-8", "replace")
        data = b"\n".join(self._data).decode("utf-8", "replace")
        message = (data, self._event.decode("utf-8", "replace"), self.last_id, self._retry, bool(self._data))
        self._data = []
        self._event = b""
        self._id = None
        self._retry = None
        self._fields = False
        return message
