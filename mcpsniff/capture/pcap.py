"""Offline captures: pcap / pcapng files -> records.

The file formats are read here with ``struct`` over 1 MiB chunks rather than with
scapy's ``RawPcapReader``/``RawPcapNgReader``: 4x faster (1M vs 260k frames per
CPU second on the CI machine), flat memory, and every way a file can be broken turns
into a clear message instead of one of scapy's odd exceptions.  (So scapy is not
imported here at all, and neither is its import-time noise.)  Header decoding and
reassembly are in the pure ``wire`` package.

Broken input: a file that is not a capture at all (empty, text, bad header) raises
``BadInputError``; one that goes bad later (truncated in a packet, corrupt record)
yields everything before that point plus a ``CaptureWarning`` saying where it stopped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import BadInputError
from ..records import MAX_T, CaptureWarning, Meta, Record
from ..wire.packet import PacketDecoder, Segment
from ..wire.pcapformat import BYTE_ORDER as _BYTE_ORDER
from ..wire.pcapformat import MAX_FRAME
from ..wire.pcapformat import MIN_BLOCK as _MIN_BLOCK
from ..wire.pcapformat import PCAP_MAGIC as _PCAP_MAGIC
from ..wire.pcapformat import SHB as _SHB
from ..wire.pcapformat import interface as _interface
from ..wire.pipeline import Frame, PipelineStats, records_from_frames
from ..wire.streams import TcpStreams

CHUNK = 1 << 20

ProgressFn = Callable[[int, int], None]


def read_capture(path: Path, ports: Collection[int] | None = None, progress: ProgressFn | None = None, stats: PipelineStats | None = None) -> Iterator[Record]:
    """Yield ``Meta`` then the records of the TCP traffic in a pcap/pcapng file.

    ``progress(bytes_done, bytes_total)`` is called about once per MiB read.
    Raises ``BadInputError`` (on the first ``next()``, before any record) when the
    file is not a readable capture.
    """
    with FrameReader(path, progress) as frames:
        yield Meta(source="pcap", origin=path.name, t_first=frames.first_t)
        yield from records_from_frames(frames, ports=ports, stats=stats)
        for note in frames.notes:
            yield CaptureWarning(frames.last_t, note)
        if frames.problem:
            yield CaptureWarning(frames.last_t, frames.problem)


def frame_streams(path: Path, frames: Collection[int]) -> dict[int, int]:
    """Wireshark's ``tcp.stream`` number of each of these frames (those that are TCP).

    A second, plain pass from the file's start up to the last frame asked for: every
    TCP packet counts, whatever its port (see ``wire.streams``).  Damage in the file ends
    it early, like the analysis.
    """
    wanted = set(frames)
    out: dict[int, int] = {}
    if not wanted:
        return out
    last = max(wanted)
    decode, streams = PacketDecoder().decode, TcpStreams()
    with FrameReader(path) as reader:
        for _t, n, linktype, data in reader:
            seg = decode(linktype, data)
            if seg is not None:
                stream = streams.feed(seg)
                if n in wanted:
                    out[n] = stream
            if n >= last:
                break
    return out


class FrameReader:
    """The frames of one capture file: iterate for (t, frame number, link type, bytes).

    Opening validates the file header (``BadInputError``).  A problem later in the
    file ends the iteration and is described in ``problem`` ("" if none);
    ``last_t`` is the timestamp of the last frame read, ``first_t`` that of the file's
    first frame (known on opening: what Wireshark's times are relative to).
    """

    def __init__(self, path: Path, progress: ProgressFn | None = None) -> None:
        self._name = path.name
        self._progress = progress
        self.problem = ""
        self.last_t: float | None = None
        self.count = 0  # frames read so far (set when the iteration ends)
        self.bad_times = 0  # pcapng packets whose timestamp was out of range
        self.notes: list[str] = []  # warnings about the whole file, known once it is read (besides ``problem``)
        self._pcap_args: tuple[bytes, str, float, int, int] | None = None  # classic pcap: what _pcap starts from
        try:
            self._f = path.open("rb")
        except OSError as exc:
            raise BadInputError(f"{path}: cannot open ({exc.strerror or exc})") from None
        try:
            self._total = path.stat().st_size
            head = self._f.read(64)
        except OSError as exc:
            self._f.close()
            raise BadInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            self._iter = self._start(head)
        except BadInputError:
            self._f.close()
            raise
        self.first_t = _first_time(path, head) if self._pcap_args is None else _first_pcap_time(*self._pcap_args)

    def _start(self, head: bytes) -> Iterator[Frame]:
        name, magic = self._name, head[:4]
        if not head:
            raise BadInputError(f"{name}: empty file, not a capture")
        if magic in _PCAP_MAGIC:
            endian, unit, hlen = _PCAP_MAGIC[magic]
            if len(head) < 24:
                raise BadInputError(f"{name}: truncated pcap file header ({len(head)} of 24 bytes)")
            major, linktype = struct.unpack_from(endian + "H", head, 4)[0], struct.unpack_from(endian + "I", head, 20)[0]
            if major != 2:
                raise BadInputError(f"{name}: corrupt pcap file header (version {major})")
            self._done = 24
            self._pcap_args = (head[24:], endian, unit, hlen, linktype & 0xFFFF)
            return self._pcap(*self._pcap_args)
        if magic == _SHB:
            if len(head) < 28 or head[8:12] not in _BYTE_ORDER:
                raise BadInputError(f"{name}: corrupt pcapng section header")
            self._done = 0
            return self._pcapng(head)
        if magic[:2] == b"\x1f\x8b":
            raise BadInputError(f"{name}: gzip-compressed; decompress it first (gunzip)")
        raise BadInputError(f"{name}: not a pcap or pcapng capture (starts with {head[:8]!r})")

    def __iter__(self) -> Iterator[Frame]:
        return self._iter

    def batches(self, decoder: PacketDecoder) -> Iterator[list[tuple[float, int, Segment]]]:
        """Lists of (t, frame number, segment) of the frames ``decoder`` keeps, instead of iterating.

        For classic pcap the decoder runs inside the reading loop: the frames it drops
        (another worker's, pure ACKs: most of a big capture) cost no generator step,
        tuple or time computation; a list holds what one ``decode_pcap`` call kept.
        """
        if self._pcap_args is not None:
            self._iter.close()
            return self._pcap(*self._pcap_args, decoder=decoder)
        # pcapng: one segment a list, decoded only when the TCP layer has taken the one before (as
        # ``acks_wanted`` expects; decode_pcap's lag of at most WALK_FRAMES frames is for classic pcap)
        return ([(t, n, seg)] for t, n, linktype, frame in self._iter if (seg := decoder.decode(linktype, frame)) is not None)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()

    # ------------------------------------------------------------- plumbing
    def _more(self, buf: bytes, pos: int, need: int) -> bytes:
        """Keep the unread tail of ``buf`` and append at least ``need`` more bytes if the file has them."""
        self._done += pos
        if self._progress is not None:
            self._progress(self._done, self._total)
        try:
            extra = self._f.read(max(CHUNK, need))
        except OSError as exc:
            self._stop(f"read error ({exc.strerror or exc})", -1, self._done)
            extra = b""
        return buf[pos:] + extra

    def _stop(self, what: str, n: int, offset: int) -> None:
        if not self.problem:
            where = f"packet {n + 1}, byte {offset}" if n >= 0 else f"byte {offset}"
            self.problem = f"{self._name}: {what} at {where}; kept the packets before it"

    def _end(self, t: float | None) -> None:
        self.last_t = t
        if self.bad_times:
            self.notes.append(f"{self._name}: {self.bad_times} packet(s) with a timestamp outside 1970..2106 (interface if_tsoffset or tick count out of range) were given the time of the packet before")
        if self._progress is not None:
            self._progress(self._total, self._total)

    # ------------------------------------------------------------------ pcap
    def _pcap(self, buf: bytes, endian: str, unit: float, hlen: int, linktype: int, decoder: PacketDecoder | None = None) -> Iterator[Any]:
        """Frames, or with ``decoder`` lists of (t, n, segment) of the frames it keeps (see ``batches``).

        Whole records are taken from each chunk by ``PacketDecoder.decode_pcap`` (a few
        hundred per call, so that the TCP layer's state it filters on stays current) or
        by ``_frames`` without a decoder; what is left is a record cut by the chunk's end,
        which the next read completes.
        """
        header = struct.Struct(endian + "IIII").unpack_from
        walk = decoder.decode_pcap if decoder is not None else _frames
        out: list[Any] = []
        pos = n = 0
        t = None
        try:
            while True:
                pos, n, last = walk(buf, pos, n, endian, hlen, unit, linktype, out)
                if last >= 0:
                    sec, frac = header(buf, last)[:2]
                    t = sec + frac * unit
                if decoder is None:
                    yield from out
                    out.clear()
                elif out:
                    yield out
                    out = []
                need = hlen if pos + hlen > len(buf) else hlen + header(buf, pos)[2]  # the rest of a header, or of a record
                if pos + need <= len(buf):
                    continue  # the walk stopped at its frame limit, not at the chunk's end
                if need > MAX_FRAME:
                    self._stop(f"corrupt packet header (captured length {need - hlen})", n, self._done + pos)
                    break
                buf = self._more(buf, pos, need)
                pos = 0
                if len(buf) < need:
                    if buf:
                        self._stop("capture ends inside a packet header" if len(buf) < hlen else "capture ends inside a packet", n, self._done)
                    break
        finally:
            self.count = n
            self._end(t)

    # ---------------------------------------------------------------- pcapng
    def _pcapng(self, buf: bytes) -> Iterator[Frame]:
        pos = n = 0
        endian = "<"
        ifaces: list[tuple[int, int, float, float]] = []  # per interface: (link type, ticks per second, tick, offset)
        t = None
        while True:
            if len(buf) - pos < 12:
                buf = self._more(buf, pos, 12)
                pos = 0
                if len(buf) < 12:
                    if buf:
                        self._stop("capture ends inside a block header", n, self._done)
                    break
            if buf[pos : pos + 4] == _SHB:  # a section: byte order may change, interfaces restart
                endian = _BYTE_ORDER.get(buf[pos + 8 : pos + 12], "")
                if not endian:
                    self._stop("corrupt pcapng section header", n, self._done + pos)
                    break
                ifaces = []
            code, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < _MIN_BLOCK.get(code, 12) or blen % 4 or blen > MAX_FRAME:
                self._stop(f"corrupt pcapng block (type {code}, length {blen})", n, self._done + pos)
                break
            if len(buf) - pos < blen:
                buf = self._more(buf, pos, blen)
                pos = 0
                if len(buf) < blen:
                    self._stop("capture ends inside a block", n, self._done)
                    break
            if code == 6 or code == 2:  # enhanced packet block / obsolete packet block
                fmt = "IIII" if code == 6 else "HxxIII"
                iface, hi, lo, caplen = struct.unpack_from(endian + fmt, buf, pos + 8)
                data = pos + 28
                if iface >= len(ifaces) or data + caplen > pos + blen - 4:
                    self._stop(f"corrupt packet block (interface {iface}, captured length {caplen})", n, self._done + pos)
                    break
                linktype, per_sec, unit, offset = ifaces[iface]
                ticks = (hi << 32) | lo
                stamp = ticks // per_sec + (ticks % per_sec) * unit + offset  # as pcap's sec + frac * unit
                if 0.0 <= stamp <= MAX_T:
                    t = stamp
                else:  # if_tsoffset or a tick count far out of range: no time a packet was captured
                    self.bad_times += 1
                    t = t or 0.0  # the time of the packet before: the stream stays whole, the order too
                n += 1
                self.count = n
                yield t, n, linktype, buf[data : data + caplen]
            elif code == 3:  # simple packet block: interface 0, no timestamp of its own
                if not ifaces:
                    self._stop("packet block before any interface description", n, self._done + pos)
                    break
                (orig,) = struct.unpack_from(endian + "I", buf, pos + 8)
                n += 1
                self.count = n
                yield t or 0.0, n, ifaces[0][0], buf[pos + 12 : pos + 12 + min(orig, blen - 16)]
            elif code == 1:  # interface description
                ifaces.append(_interface(buf[pos + 8 : pos + blen - 4], endian))
            pos += blen  # every other block (statistics, name resolution, custom, ...) is skipped
        self._end(t)


def _frames(buf: bytes, pos: int, n: int, endian: str, hlen: int, unit: float, linktype: int, out: list[Frame]) -> tuple[int, int, int]:
    """``PacketDecoder.decode_pcap`` without decoding: every whole record of ``buf`` from ``pos`` as a frame."""
    header = struct.Struct(endian + "IIII").unpack_from
    size, last = len(buf), -1
    while pos + hlen <= size:
        sec, frac, caplen, _ = header(buf, pos)
        end = pos + hlen + caplen
        if end > size:
            break
        n += 1
        out.append((sec + frac * unit, n, linktype, buf[pos + hlen : end]))
        last, pos = pos, end
    return pos, n, last


def _first_pcap_time(buf: bytes, endian: str, unit: float, hlen: int, linktype: int) -> float | None:
    """Timestamp of a classic pcap's first record (its header follows the file header)."""
    if len(buf) < 8:
        return None
    sec, frac = struct.unpack_from(endian + "II", buf)
    return sec + frac * unit


def _first_time(path: Path, head: bytes) -> float | None:
    """Timestamp of a pcapng's first packet block: a separate little walk over the first
    blocks (section header, interfaces), which the reading loop does not slow down."""
    try:
        with path.open("rb") as fh:
            buf = fh.read(CHUNK)
    except OSError:
        return None
    pos, endian = 0, "<"
    ifaces: list[tuple[int, int, float, float]] = []
    while pos + 12 <= len(buf):
        if buf[pos : pos + 4] == _SHB:
            endian = _BYTE_ORDER.get(buf[pos + 8 : pos + 12], "")
            if not endian:
                return None
            ifaces = []
        code, blen = struct.unpack_from(endian + "II", buf, pos)
        if blen < 12 or blen % 4 or pos + blen > len(buf):
            return None
        if code == 1:
            ifaces.append(_interface(buf[pos + 8 : pos + blen - 4], endian))
        elif code in (2, 6) and blen >= 28:
            iface, hi, lo = struct.unpack_from(endian + ("IIII" if code == 6 else "HxxIII"), buf, pos + 8)[:3]
            if iface >= len(ifaces):
                return None
            _, per_sec, unit, offset = ifaces[iface]
            ticks = (hi << 32) | lo
            stamp = ticks // per_sec + (ticks % per_sec) * unit + offset
            return stamp if 0.0 <= stamp <= MAX_T else None
        elif code == 3:
            return None  # a simple packet block has no time of its own
        pos += blen
    return None
