"""What the pipeline reads frames from (``wire.pipeline``): types only.

Apart from ``pipeline`` because that module may be compiled (mypyc), and a compiled
module cannot define a runtime-checkable ``Protocol`` (which ``capture.parallel``
also extends).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from .packet import PacketDecoder, Segment

Frame = tuple[float, int, int, bytes]  # (timestamp, 1-based frame number, link type, frame bytes)


@runtime_checkable
class SegmentSource(Protocol):
    """A frame reader that runs the decoder in its own loop (see ``capture.pcap.FrameReader.batches``).

    ``count`` and ``last_t``: frames read and the time of the last one, once the
    segments have been consumed.
    """

    count: int
    last_t: float | None

    def batches(self, decoder: PacketDecoder) -> Iterator[list[tuple[float, int, Segment]]]:
        """Lists of (t, frame number, segment) of the frames ``decoder`` keeps, in order.

        Lists rather than one segment per step: the compiled pipeline walks a list in C,
        while a step of a Python generator costs about as much as decoding the frame.
        """
        ...
