"""The pcap and pcapng file formats: magic numbers, block sizes, interface options.

Pure (bytes in, values out), shared by every reader and writer in ``capture/``: the
batch reader, the follower of a growing file and ``annotate``.
"""

from __future__ import annotations

import struct

MAX_FRAME = 1 << 24  # a captured length above this means the record is corrupt
PCAP_MAGIC = {  # magic -> (byte order, timestamp unit, bytes of per-record header)
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1e-6, 24),  # Kuznetzov's "modified" pcap
    b"\xa1\xb2\xcd\x34": (">", 1e-6, 24),
}
SHB = b"\x0a\x0d\x0d\x0a"  # pcapng section header block type
BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}  # pcapng byte-order magic
MIN_BLOCK = {1: 20, 2: 32, 3: 16, 6: 32}  # pcapng block type -> smallest valid total length


def interface(body: bytes, endian: str) -> tuple[int, int, float, float]:
    """Link type, timestamp ticks per second, tick, offset (options if_tsresol, if_tsoffset) of an interface."""
    linktype = struct.unpack_from(endian + "H", body, 0)[0]
    per_sec, offset = 1_000_000, 0.0
    pos = 8
    while pos + 4 <= len(body):
        code, olen = struct.unpack_from(endian + "HH", body, pos)
        if code == 0:
            break
        value = body[pos + 4 : pos + 4 + olen]
        if code == 9 and len(value) >= 1:
            per_sec = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
        elif code == 14 and len(value) >= 8:
            offset = float(struct.unpack_from(endian + "q", value)[0])
        pos += 4 + (olen + 3) // 4 * 4
    return linktype, per_sec, 1.0 / per_sec, offset
