"""A pcapng writer that says what it captured: one block per packet, written at once.

scapy's ``PcapNgWriter`` writes neither the interface's options nor the
application's, so ``tshark -e frame.interface_name`` and ``capinfos`` had nothing to
show.  This one writes, in the section header, ``shb_userappl`` ("mcpsniff
<version>") and ``shb_os``; in the interface block ``if_name``, ``if_filter`` (the
BPF expression the capture used), ``if_tsresol`` (microseconds: the socket's
timestamps are floats, finer digits would be invented) and the snap length; then
an Enhanced Packet Block per packet.  Every block goes straight to the file, so the
capture is readable at any moment, also after ``kill -9``.  Stdlib only.
"""

from __future__ import annotations

import platform
import struct
from importlib import metadata
from typing import BinaryIO

SHB, IDB, EPB = 0x0A0D0D0A, 1, 6
OPT_END, SHB_OS, SHB_USERAPPL = 0, 3, 4
IF_NAME, IF_TSRESOL, IF_FILTER = 2, 9, 11
TSRESOL_US = 6  # if_tsresol: 10^-6 s
_UNIT = 10**TSRESOL_US


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def _options(*opts: bytes) -> bytes:
    return b"".join(opts) + _option(OPT_END, b"") if opts else b""


def version() -> str:
    """"mcpsniff 0.1.0" (the installed package's version)."""
    try:
        return f"mcpsniff {metadata.version('mcpsniff')}"
    except metadata.PackageNotFoundError:
        return "mcpsniff"


def header(linktype: int, if_name: str, if_filter: str = "", snaplen: int = 262144) -> bytes:
    """Section header and the one interface block: what ``PcapngWriter`` writes first."""
    os_name = f"{platform.system()} {platform.release()}".strip()
    shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(_option(SHB_OS, os_name.encode()), _option(SHB_USERAPPL, version().encode()))
    opts = [_option(IF_NAME, if_name.encode()), _option(IF_TSRESOL, bytes([TSRESOL_US]))]
    if if_filter:
        opts.append(_option(IF_FILTER, b"\0" + if_filter.encode()))  # first byte 0: a libpcap filter string
    idb = struct.pack("<HHI", linktype, 0, snaplen) + _options(*opts)
    return _block(SHB, shb) + _block(IDB, idb)


def packet_block(frame: bytes, t: float) -> bytes:
    """One Enhanced Packet Block on interface 0 at ``t`` (seconds since the epoch)."""
    ticks = round(t * _UNIT)
    return _block(EPB, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)) + frame)


class PcapngWriter:
    """``PcapngWriter(fh, linktype, "lo", "tcp port 5076")``, then ``write(frame, t)`` per packet.

    ``fh`` should be unbuffered (``open(path, "wb", buffering=0)``): each block is one
    ``write`` call, so a reader never sees half a block for long.
    """

    def __init__(self, fh: BinaryIO, linktype: int, if_name: str, if_filter: str = "", snaplen: int = 262144) -> None:
        self._fh = fh
        fh.write(header(linktype, if_name, if_filter, snaplen))

    def write(self, frame: bytes, t: float) -> None:
        self._fh.write(packet_block(frame, t))

    def close(self) -> None:
        self._fh.close()
