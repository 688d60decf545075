"""A capture copied to pcapng with packet comments (``opt_comment``) added: ``mcpsniff annotate``.

Every packet is kept as it was: its bytes, captured and original length, timestamp (in
the file's own resolution: a classic pcap becomes one interface with ``if_tsresol`` 6
or 9) and, for pcapng input, every block and option unchanged (section headers,
interfaces, statistics, earlier comments); a packet to comment gets its comments added
to its Enhanced Packet Block's options.  The copy is written block by block as the
input is read, so memory stays flat and what was written is readable at any moment.

The notes to write come from the analysis (``report/annotations.py``): by frame number
(1-based, as Wireshark counts) or by time (on the first packet at or after it, times
computed exactly as ``capture.pcap`` does, so they compare equal).  Stdlib only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import BadInputError
from ..wire.pcapformat import BYTE_ORDER as _BYTE_ORDER
from ..wire.pcapformat import MAX_FRAME
from ..wire.pcapformat import PCAP_MAGIC as _PCAP_MAGIC
from ..wire.pcapformat import SHB as _SHB
from ..wire.pcapformat import interface as _interface
from .pcapng_writer import version

OPT_END, OPT_COMMENT, SHB_USERAPPL, IF_TSRESOL, IF_FCSLEN = 0, 1, 4, 9, 13
BUFFER = 1 << 20


@dataclass
class Written:
    """What ``write_annotated`` did."""

    packets: int = 0
    comments: int = 0  # comments written
    unplaced: int = 0  # notes for packets the file does not have (or simple packet blocks, which take no options)
    problem: str = ""  # damage that ended the copy early ("" if none)


def _option(endian: str, code: int, value: bytes) -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(endian: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(endian + "II", kind, size) + body + struct.pack(endian + "I", size)


class _Notes:
    """The comments of each packet, by frame number, then by time."""

    def __init__(self, by_frame: dict[int, list[str]], by_time: list[tuple[float, str]]) -> None:
        self.by_frame = by_frame
        self.by_time = sorted(by_time, key=lambda n: n[0])
        self._next = 0
        self.placed = 0

    def of(self, n: int, t: float | None) -> list[str]:
        out = list(self.by_frame.get(n, ()))
        times = self.by_time
        while t is not None and self._next < len(times) and times[self._next][0] <= t:
            out.append(times[self._next][1])
            self._next += 1
        self.placed += len(out)
        return out

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_frame.values()) + len(self.by_time)


def write_annotated(src: Path, out: BinaryIO, by_frame: dict[int, list[str]], by_time: Iterable[tuple[float, str]] = ()) -> Written:
    """Copy ``src`` (pcap or pcapng) to ``out`` as pcapng, with these comments added.

    ``BadInputError`` before anything is written when ``src`` is not a capture; damage
    later ends the copy there (``Written.problem``), the packets before it kept.
    """
    notes = _Notes(by_frame, list(by_time))
    done = Written()
    try:
        fh = src.open("rb", buffering=BUFFER)
    except OSError as exc:
        raise BadInputError(f"{src}: cannot open ({exc.strerror or exc})") from None
    with fh:
        head = fh.read(24)
        if head[:4] in _PCAP_MAGIC:
            if len(head) < 24:
                raise BadInputError(f"{src.name}: truncated pcap file header ({len(head)} of 24 bytes)")
            _pcap(fh, head, out, notes, done, src.name)
        elif head[:4] == _SHB:
            _pcapng(fh, head, out, notes, done, src.name)
        else:
            raise BadInputError(f"{src.name}: not a pcap or pcapng capture")
    done.comments = notes.placed
    done.unplaced = notes.total - notes.placed
    return done


def _pcap(fh: BinaryIO, head: bytes, out: BinaryIO, notes: _Notes, done: Written, name: str) -> None:
    endian, unit, hlen = _PCAP_MAGIC[head[:4]]
    snaplen, linktype = struct.unpack_from(endian + "II", head, 16)
    resol = 9 if unit < 1e-6 else 6
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option("<", SHB_USERAPPL, f"{version()} annotate".encode()) + _option("<", OPT_END, b"")
    opts = _option("<", IF_TSRESOL, bytes([resol]))
    if linktype & 0x10000000:  # the FCS length bits of a pcap link type
        opts += _option("<", IF_FCSLEN, bytes([(linktype >> 28) & 0x7]))
    idb = struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen) + opts + _option("<", OPT_END, b"")
    out.write(_block("<", 0x0A0D0D0A, shb) + _block("<", 1, idb))
    rec = struct.Struct(endian + "IIII")
    scale = 10**resol
    n = 0
    while True:
        header = fh.read(hlen)
        if len(header) < hlen:
            if header:
                done.problem = f"{name}: capture ends inside a packet header at packet {n + 1}; kept the packets before it"
            break
        sec, frac, caplen, origlen = rec.unpack_from(header)
        if caplen > MAX_FRAME:
            done.problem = f"{name}: corrupt packet header (captured length {caplen}) at packet {n + 1}; kept the packets before it"
            break
        data = fh.read(caplen)
        if len(data) < caplen:
            done.problem = f"{name}: capture ends inside packet {n + 1}; kept the packets before it"
            break
        n += 1
        ticks = sec * scale + frac
        body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, caplen, origlen) + data + b"\0" * (-caplen % 4)
        comments = notes.of(n, sec + frac * unit)
        if comments:
            body += b"".join(_option("<", OPT_COMMENT, c.encode()) for c in comments) + _option("<", OPT_END, b"")
        out.write(_block("<", 6, body))
    done.packets = n


def _pcapng(fh: BinaryIO, head: bytes, out: BinaryIO, notes: _Notes, done: Written, name: str) -> None:
    buf = head
    endian = "<"
    ifaces: list[tuple[int, int, float, float]] = []
    n = 0
    t: float | None = None
    while True:
        if len(buf) < 12:
            buf += fh.read(12 - len(buf))
            if len(buf) < 12:
                if buf:
                    done.problem = f"{name}: capture ends inside a block header after packet {n}; kept the packets before it"
                break
        if buf[:4] == _SHB:
            endian = _BYTE_ORDER.get(buf[8:12], "")
            if not endian:
                done.problem = f"{name}: corrupt pcapng section header after packet {n}; kept the packets before it"
                break
            ifaces = []
        code, blen = struct.unpack_from(endian + "II", buf)
        if blen < 12 or blen % 4 or blen > MAX_FRAME:
            done.problem = f"{name}: corrupt pcapng block (type {code}, length {blen}) after packet {n}; kept the packets before it"
            break
        block = buf[:blen] + fh.read(blen - len(buf)) if blen > len(buf) else buf[:blen]
        buf = buf[blen:]
        if len(block) < blen:
            done.problem = f"{name}: capture ends inside a block after packet {n}; kept the packets before it"
            break
        if code == 1:
            ifaces.append(_interface(block[8 : blen - 4], endian))
        elif code == 6 or code == 2:  # enhanced / obsolete packet block: options after the data
            n += 1
            iface, hi, lo, caplen = struct.unpack_from(endian + ("IIII" if code == 6 else "HxxIII"), block, 8)
            if iface < len(ifaces):
                _, per_sec, unit, offset = ifaces[iface]
                ticks = (hi << 32) | lo
                t = ticks // per_sec + (ticks % per_sec) * unit + offset
            comments = notes.of(n, t)
            if comments:
                block = _commented(block, code, endian, 28 + caplen + (-caplen % 4), comments)
        elif code == 3:  # simple packet block: no options to hold a comment
            n += 1
            notes.placed -= len(notes.of(n, t))  # (counted as unplaced)
        out.write(block)
    done.packets = n


def _commented(block: bytes, code: int, endian: str, opts_at: int, comments: list[str]) -> bytes:
    """The packet block with ``comments`` added after its own options."""
    end = len(block) - 4
    pos = min(opts_at, end)
    while pos + 4 <= end:  # keep every option up to the end-of-options marker
        ocode, olen = struct.unpack_from(endian + "HH", block, pos)
        if ocode == OPT_END:
            break
        pos += 4 + olen + (-olen % 4)
    pos = min(pos, end)
    body = block[8:pos] + b"".join(_option(endian, OPT_COMMENT, c.encode()) for c in comments) + _option(endian, OPT_END, b"")
    return _block(endian, code, body)
