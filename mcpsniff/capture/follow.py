"""Follow a capture file another process is still writing (``tail -f``): records JSONL, pcap, pcapng.

``mcpsniff watch --follow FILE`` reads what is in the file, then what is appended, as
it comes: complete JSON lines of a records file (the mitmproxy addon flushes one per
record), complete packet records/blocks of a pcap or pcapng (``tcpdump -w``,
``mcpsniff capture``).  A line or packet cut by the end of what has been written so far
is kept back until the rest arrives.  The readers give what the offline readers give for
the same bytes (``records.read_records``; ``capture/pcap.py``'s ``FrameReader``: same
frame numbers and timestamps, tested side by side), so the analysis at the end of a
follow equals ``mcpsniff analyze`` of the file.

While no new data has come, ``idle()`` is called (it should sleep a little, e.g. 0.1 s,
and may do other work: the watch's snapshot); while data keeps coming, ``check()`` (if
given) every 0.2 s. The iteration ends when one returns True, after what the file holds
by then has been read.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import BadInputError, CaptureError
from ..wire.pcapformat import BYTE_ORDER as _BYTE_ORDER
from ..wire.pcapformat import MAX_FRAME
from ..wire.pcapformat import MIN_BLOCK as _MIN_BLOCK
from ..wire.pcapformat import PCAP_MAGIC as _PCAP_MAGIC
from ..wire.pcapformat import SHB as _SHB
from ..wire.pcapformat import interface as _interface

Idle = Callable[[], bool]  # called while there is no new data; True: stop
Frame = tuple[float, int, int, bytes]  # (timestamp, 1-based frame number, link type, frame bytes), as wire.pipeline.Frame
READ = 1 << 20
CHECK_EVERY = 0.2  # s between two check() calls while the file keeps growing
MAX_T = float(1 << 32)  # as records.MAX_T
RECORDS, PCAP, PCAPNG = "records", "pcap", "pcapng"


class Tail:
    """The bytes of a growing file, as they are appended. ``read()`` never blocks.

    Waits (through ``idle``) for the file to appear. A file that shrinks (truncated or
    replaced) cannot be followed on: CaptureError.
    """

    def __init__(self, path: Path, idle: Idle, check: Idle | None = None) -> None:
        self.path = Path(path)
        self.idle = idle
        self.check = check  # asked (without sleeping) at most every CHECK_EVERY s while data keeps coming: True to stop
        self.offset = 0
        self.stopping = False  # idle() or check() said stop: read what is there, then end
        self._f = None
        self._next_check = time.monotonic() + CHECK_EVERY
        while not self.path.exists():
            if idle():
                self.stopping = True
                return
        try:
            self._f = self.path.open("rb")
        except OSError as exc:
            raise BadInputError(f"{self.path}: {exc.strerror or exc}") from None
        if not self.path.is_file():
            raise BadInputError(f"{self.path}: not a regular file (--follow reads a file another process writes)")

    def read(self) -> bytes:
        if self._f is None:
            return b""
        try:
            data = self._f.read(READ)
            if not data and os.fstat(self._f.fileno()).st_size < self.offset:
                raise CaptureError(f"{self.path} was truncated while being followed (at byte {self.offset})")
        except OSError as exc:
            raise CaptureError(f"{self.path}: read error ({exc.strerror or exc})") from None
        self.offset += len(data)
        return data

    def more(self) -> bytes:
        """New bytes; b"" once stopping and nothing more is there. Calls idle() while waiting."""
        while True:
            data = self.read()
            if data:
                if self.check is not None and not self.stopping and time.monotonic() >= self._next_check:
                    self._next_check = time.monotonic() + CHECK_EVERY
                    self.stopping = self.check()
                return data
            if self.stopping:
                return data
            if self.idle():
                self.stopping = True  # one more read: what was written before the stop

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def detect(path: Path, idle: Idle, check: Idle | None = None) -> tuple[str, Tail, bytes]:
    """The format of a growing file (waiting for its first bytes), its Tail and the bytes read so far."""
    tail = Tail(path, idle, check)
    head = b""
    while len(head) < 4:
        data = tail.more()
        if not data:
            tail.close()
            raise BadInputError(f"{path}: nothing was written to it" if not head else f"{path}: too short to tell its format")
        head += data
    if head[:4] in _PCAP_MAGIC:
        return PCAP, tail, head
    if head[:4] == _SHB:
        return PCAPNG, tail, head
    if head.lstrip()[:1] == b"{":
        return RECORDS, tail, head
    tail.close()
    if head[:2] == b"\x1f\x8b":
        raise BadInputError(f"{path}: gzip-compressed; --follow reads a plain pcap, pcapng or records file")
    raise BadInputError(f"{path}: --follow reads pcap/pcapng captures and mcpsniff records (.jsonl) as they grow, not this file (starts with {head[:8]!r})")


def follow_lines(tail: Tail, head: bytes = b"") -> Iterator[str]:
    """Complete lines (with their newline, decoded as ``analyze`` decodes them: UTF-8, errors replaced)."""
    pending = head
    try:
        while True:
            if b"\n" in pending:
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace") + "\n"
            data = tail.more()
            if not data:
                if pending.strip():
                    yield pending.decode("utf-8", "replace")  # the writer stopped mid-line: read_records warns about it
                return
            pending += data
    finally:
        tail.close()


class FrameFollower:
    """Frames of a growing pcap or pcapng file, numbered and timed as ``FrameReader`` does.

    ``problem`` says why following stopped early (a corrupt record), "" otherwise.
    """

    def __init__(self, tail: Tail, head: bytes, fmt: str) -> None:
        self.tail = tail
        self.fmt = fmt
        self.count = 0
        self.last_t: float | None = None
        self.problem = ""
        self._buf = head

    def _need(self, size: int) -> bool:
        """At least ``size`` bytes in the buffer (waiting for them); False at the end."""
        while len(self._buf) < size:
            data = self.tail.more()
            if not data:
                return False
            self._buf += data
        return True

    def _stop(self, what: str) -> None:
        self.problem = f"{self.tail.path.name}: {what} after packet {self.count}; stopped following"

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield from (self._pcap() if self.fmt == PCAP else self._pcapng())
        finally:
            self.tail.close()

    def _pcap(self) -> Iterator[Frame]:
        if not self._need(24):
            return
        endian, unit, hlen = _PCAP_MAGIC[self._buf[:4]]
        major = struct.unpack_from(endian + "H", self._buf, 4)[0]
        if major != 2:
            self._stop(f"corrupt pcap file header (version {major})")
            return
        linktype = struct.unpack_from(endian + "I", self._buf, 20)[0] & 0xFFFF
        header = struct.Struct(endian + "IIII").unpack_from
        buf, pos = self._buf, 24
        while True:
            if len(buf) - pos < hlen:
                self._buf = buf[pos:]
                if not self._need(hlen):
                    return
                buf, pos = self._buf, 0
            sec, frac, caplen, _ = header(buf, pos)
            if caplen > MAX_FRAME:
                self._stop(f"corrupt packet header (captured length {caplen})")
                return
            end = pos + hlen + caplen
            if end > len(buf):
                self._buf = buf[pos:]
                if not self._need(hlen + caplen):
                    return
                buf, pos, end = self._buf, 0, hlen + caplen
            self.count += 1
            t = sec + frac * unit
            self.last_t = t
            yield t, self.count, linktype, buf[pos + hlen : end]
            pos = end

    def _pcapng(self) -> Iterator[Frame]:
        endian = "<"
        ifaces: list[tuple[int, int, float, float]] = []
        t: float | None = None
        buf, pos = self._buf, 0
        while True:
            if len(buf) - pos < 12:
                self._buf = buf[pos:]
                if not self._need(12):
                    return
                buf, pos = self._buf, 0
            if buf[pos : pos + 4] == _SHB:
                endian = _BYTE_ORDER.get(buf[pos + 8 : pos + 12], "")
                if not endian:
                    self._stop("corrupt pcapng section header")
                    return
                ifaces = []
            code, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < _MIN_BLOCK.get(code, 12) or blen % 4 or blen > MAX_FRAME:
                self._stop(f"corrupt pcapng block (type {code}, length {blen})")
                return
            if len(buf) - pos < blen:
                self._buf = buf[pos:]
                if not self._need(blen):
                    return
                buf, pos = self._buf, 0
            if code == 6 or code == 2:
                iface, hi, lo, caplen = struct.unpack_from(endian + ("IIII" if code == 6 else "HxxIII"), buf, pos + 8)
                data = pos + 28
                if iface >= len(ifaces) or data + caplen > pos + blen - 4:
                    self._stop(f"corrupt packet block (interface {iface}, captured length {caplen})")
                    return
                linktype, per_sec, unit, offset = ifaces[iface]
                ticks = (hi << 32) | lo
                stamp = ticks // per_sec + (ticks % per_sec) * unit + offset
                t = stamp if 0.0 <= stamp <= MAX_T else (t or 0.0)
                self.count += 1
                self.last_t = t
                yield t, self.count, linktype, buf[data : data + caplen]
            elif code == 3:
                if not ifaces:
                    self._stop("packet block before any interface description")
                    return
                (orig,) = struct.unpack_from(endian + "I", buf, pos + 8)
                self.count += 1
                self.last_t = t
                yield t or 0.0, self.count, ifaces[0][0], buf[pos + 12 : pos + 12 + min(orig, blen - 16)]
            elif code == 1:
                ifaces.append(_interface(buf[pos + 8 : pos + blen - 4], endian))
            pos += blen
