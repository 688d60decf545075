"""Both hops of a proxy in one capture: tell them apart and keep one view.

A capture on ``lo`` of a client -> proxy -> server setup (``mcpsniff demo``, nginx or
mitmproxy in front of a server) holds every request twice: once to the proxy's port
and, a moment later, the same request to the server's.  Analysed together, each
namespace would show two sessions per session.  The relayed hop is recognised by
its twins (same method, target, session id and body, a little later on another
server address); the server hop is kept, since it shows the restart itself
(refused connections), and the client hop is set aside with a note.
"""

from __future__ import annotations

from typing import Final

import zlib
from bisect import bisect_left
from collections import defaultdict

MAX_SAMPLES: Final = 2000  # requests per server address looked at
RELAY_WINDOW: Final = 1.0  # s between a request to the proxy and its copy to the server
MIN_TWINS: Final = 3

Fingerprint = tuple[str, str, str, int]


def fingerprint(method: str, target: str, session: str | None, body: str) -> Fingerprint:
    return (method, target, session or "", zlib.crc32(body.encode("utf-8", "replace")) if body else 0)


class HopSampler:
    """Keeps the first requests of every server address, to find relayed twins at the end."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, Fingerprint]]] = defaultdict(list)

    def wants(self, server: str) -> bool:
        return len(self.samples[server]) < MAX_SAMPLES

    def add(self, server: str, t: float, fp: Fingerprint) -> None:
        self.samples[server].append((t, fp))

    def relays(self) -> list[tuple[str, str]]:
        """(client hop, server hop) pairs: most requests to the first reappear on the second."""
        if len(self.samples) < 2:
            return []
        index: dict[str, dict[Fingerprint, list[float]]] = {}
        for server, seen in self.samples.items():
            table: dict[Fingerprint, list[float]] = defaultdict(list)
            for t, fp in seen:
                table[fp].append(t)
            for times in table.values():
                times.sort()
            index[server] = table
        counts: dict[tuple[str, str], int] = {}
        for a, seen in self.samples.items():
            for b, table in index.items():
                if a == b:
                    continue
                twins = 0
                for t, fp in seen:
                    times = table.get(fp) or []
                    if times:
                        i = bisect_left(times, t)
                        if i < len(times) and times[i] - t <= RELAY_WINDOW:
                            twins += 1
                if twins >= MIN_TWINS and twins * 2 >= min(len(seen), len(self.samples[b])):
                    counts[(a, b)] = twins
        # the copies come later on the server hop, so the other direction finds fewer twins
        return [pair for pair, n in counts.items() if n > counts.get((pair[1], pair[0]), 0)]
