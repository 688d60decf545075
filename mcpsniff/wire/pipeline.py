"""Frames -> records: packet decoding, TCP reassembly and HTTP assembly chained.

Pure: the caller supplies the frames (``capture/pcap.py`` reads them from a file,
tests from lists) and gets the records that ``analysis`` reads.  The loop is the hot
path of ``mcpsniff analyze``: keep it flat.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from ..records import CaptureWarning, Record
from .packet import LINK_NAMES, AnySegment, PacketDecoder, Segment
from .sources import Frame, SegmentSource
from .tcp import MAX_OPEN, TcpReassembler

__all__ = ["Frame", "PipelineStats", "SegmentSource", "records_from_frames"]


@dataclass
class PipelineStats:
    """What the pipeline saw, for ``--stats``-style output; filled in as frames are consumed."""

    packets: int = 0  # frames read
    tcp_packets: int = 0  # TCP segments kept (after the port filter)
    skipped: int = 0  # frames not kept: not TCP, other ports, fragments, unreadable
    fragments: int = 0  # non-first IP fragments (skipped)
    malformed: int = 0  # frames whose headers could not be read
    unsupported_links: dict[int, int] = field(default_factory=dict)  # link type -> frames
    duplicates: int = 0  # identical copies dropped (Linux `lo` AF_PACKET shows packets twice)
    retransmitted: int = 0  # segments that brought no new bytes
    gaps: int = 0  # holes in byte streams (bytes missing from the capture)
    lost_bytes: int = 0
    connections: int = 0  # TCP connections (opened or refused)
    unanswered_syns: int = 0
    last_t: float | None = None  # timestamp of the last frame


class _Frames:
    """Plain frames, decoded one by one; knows what a reader with ``segments`` knows."""

    def __init__(self, frames: Iterable[Frame]) -> None:
        self._frames = frames
        self.count = 0
        self.last_t: float | None = None

    def batches(self, decoder: PacketDecoder) -> Iterator[list[tuple[float, int, Segment]]]:
        for t, frame, linktype, data in self._frames:
            self.count += 1
            self.last_t = t
            seg = decoder.decode(linktype, data)
            if seg is not None:
                yield [(t, frame, seg)]


def records_from_frames(frames: Iterable[Frame] | SegmentSource, ports: Collection[int] | None = None, stats: PipelineStats | None = None, share: tuple[int, int] | None = None) -> Iterator[Record]:
    """Decode, reassemble and assemble HTTP exchanges; yield records in capture order.

    ``frames``: (t, 1-based frame number, link type, bytes) tuples, or a reader that
    decodes in its own loop (``SegmentSource``, e.g. ``capture.pcap.FrameReader``).
    ``ports``: keep only TCP traffic to or from one of these ports (and use them to
    tell the server side of connections picked up mid-stream).
    ``share=(k, workers)``: only the connections worker ``k`` owns (see ``packet.owner``),
    with connection ids that cannot collide with the other workers'; the file-level
    warnings come from worker 0 only.
    Pure ACKs are not even decoded while no hole waits for them (see ``PacketDecoder``).
    """
    from .exchanges import HttpAssembler  # imported here so the layers below can be used alone

    st = stats if stats is not None else PipelineStats()
    port_set = frozenset(ports) if ports else None
    k, workers = share if share is not None else (0, 1)
    tcp = TcpReassembler(server_ports=port_set, first_id=k + 1, id_step=workers)
    decoder = PacketDecoder(port_set, share, acks_wanted=tcp.waiting)
    http = HttpAssembler()
    source = frames if isinstance(frames, SegmentSource) else _Frames(frames)
    kept = 0
    try:
        item: tuple[float, int, AnySegment]  # (so that mypyc hands the segment tuple on as it is)
        for batch in source.batches(decoder):
            kept += len(batch)
            for item in batch:
                t, frame, seg = item
                for event in tcp.feed(t, frame, seg):  # (direct calls: the compiled build calls C functions)
                    records = http.feed(event)
                    if records:
                        yield from records
        end = source.last_t
        for event in tcp.finish(end or 0.0):
            yield from http.feed(event)
        yield from http.finish()
        if k == 0:
            yield from _warnings(decoder, end)
        if tcp.set_aside:  # (each worker of its own connections)
            yield CaptureWarning(end, f"{tcp.set_aside} connection(s) that never carried a byte were set aside early (more than {MAX_OPEN} open at once); a byte that came later on one of them was read as a connection picked up mid-stream")
    finally:
        kept += decoder.pure_acks  # read, just not needed
        st.packets, st.tcp_packets, st.skipped = source.count, kept, source.count - kept
        st.fragments, st.malformed, st.unsupported_links = decoder.fragments, decoder.malformed, dict(decoder.unsupported_links)
        st.duplicates, st.retransmitted, st.gaps, st.lost_bytes = tcp.duplicates, tcp.retransmitted, tcp.gaps, tcp.lost_bytes
        st.connections, st.unanswered_syns = tcp.connections, tcp.unanswered_syns
        st.last_t = source.last_t


def _warnings(decoder: PacketDecoder, t: float | None) -> Iterator[CaptureWarning]:
    """Say once, at the end, what was skipped and why."""
    if decoder.fragments:
        yield CaptureWarning(t, f"{decoder.fragments} non-first IP fragment(s) skipped: TCP inside fragmented IP packets is not reassembled")
    if decoder.malformed:
        yield CaptureWarning(t, f"{decoder.malformed} frame(s) with unreadable link/IP/TCP headers skipped")
    for linktype, count in sorted(decoder.unsupported_links.items()):
        yield CaptureWarning(t, f"{count} frame(s) of unsupported link type {linktype} skipped (supported: {', '.join(sorted(set(LINK_NAMES.values())))})")
