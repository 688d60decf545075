"""Wireshark's TCP stream numbers (``tcp.stream``), so a user can isolate a connection.

Wireshark numbers TCP conversations from 0 in the order of their first packet in the
whole file (every port, not only the ones analysed).  A conversation is an address and
port pair, either direction; a SYN (without ACK) whose sequence number differs from the
first one seen in its direction starts a new conversation on a reused pair (Wireshark's
"TCP port numbers reused"), while a retransmitted SYN or a duplicate (Linux ``lo``
copies) does not.

Pure and small: ``TcpStreams.feed(segment)`` returns the stream number of the segment.
The analysis reads only some ports and drops pure ACKs before decoding, so this runs
in a separate pass over the file (``capture.pcap.frame_streams``), only up to the frames
whose numbers are wanted.
"""

from __future__ import annotations

from .packet import ACK, SYN, Segment

_Key = tuple[bytes, int, bytes, int]


class TcpStreams:
    """``feed`` every TCP segment of a file in order; ``count`` streams so far."""

    __slots__ = ("count", "_convs")

    def __init__(self) -> None:
        self.count = 0
        # (lower end, higher end) -> [stream, first seq from the lower end, first seq from the higher end]
        self._convs: dict[_Key, list[int | None]] = {}

    def feed(self, seg: Segment) -> int:
        src, dst, sport, dport, seq, _ack, flags, _ = seg
        forward = (src, sport) <= (dst, dport)
        key = (src, sport, dst, dport) if forward else (dst, dport, src, sport)
        side = 1 if forward else 2
        conv = self._convs.get(key)
        if conv is None or (flags & (SYN | ACK) == SYN and conv[side] is not None and conv[side] != seq):
            conv = self._convs[key] = [self.count, None, None]
            self.count += 1
        if conv[side] is None:
            conv[side] = seq
        return conv[0]  # type: ignore[return-value]
