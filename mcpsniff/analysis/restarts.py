"""Server restart windows from TCP evidence, tracked as records stream past.

Memory is bounded by the number of restarts, not by packets or connections: only
the current cluster of refusals per server and a few seconds of recent history are kept.
"""

from __future__ import annotations

from typing import Final

from collections import deque
from dataclasses import dataclass, field

from .model import RestartWindow

CLUSTER_GAP: Final = 30.0  # refusals further apart than this belong to separate restarts
LEAD_IN: Final = 10.0  # server-side closes (after the last good response) this long before the first refusal mark the start
BURST_SPAN: Final = 1.5  # s: server-side closes this close together are one shutdown
BURST_MIN: Final = 2  # closes that make a shutdown burst


@dataclass
class _Cluster:
    server: str
    first: float
    last: float
    t_down: float
    t_last_good: float | None
    closes_before: int
    refusals: int = 1
    t_back: float | None = None  # first accepted connection after the last refusal
    t_good_after: float | None = None  # first good response after the last refusal (proxy path)
    served_again: bool = False  # a good response came after t_back: a later refusal is a new restart
    lost_sessions_at: float | None = None  # no refusal seen: an old session id was rejected then (sessions lost)


@dataclass
class RestartTracker:
    clusters: list[_Cluster] = field(default_factory=list)
    _current: dict[str, _Cluster] = field(default_factory=dict)
    _closes: dict[str, deque[float]] = field(default_factory=dict)
    _responses: dict[str, deque[float]] = field(default_factory=dict)
    _opens: dict[str, deque[float]] = field(default_factory=dict)
    _proxied: dict[str, int] = field(default_factory=dict)  # per server: the refusals that were a proxy's 502/503

    def _recent(self, table: dict[str, deque[float]], server: str, t: float) -> deque[float]:
        recent = table.get(server)
        if recent is None:  # (not setdefault: it would build a deque at every call)
            recent = table[server] = deque()
        recent.append(t)
        while recent and recent[0] < t - LEAD_IN - 5.0:
            recent.popleft()
        return recent

    def refused(self, server: str, t: float, kind: str = "refused") -> None:
        """A connection refused (``kind`` "refused"), or a proxy's 502/503 for a server that is down ("proxy")."""
        cluster = self._current.get(server)
        if cluster is not None and t == cluster.last:
            return  # the same refusal told twice (connection and exchange records)
        if kind == "proxy":
            self._proxied[server] = self._proxied.get(server, 0) + 1
        if cluster is None or t - cluster.last > CLUSTER_GAP or cluster.served_again:
            # The server went down after its last good response: its closes since then start the window.
            last_good = max((r for r in self._responses.get(server, ()) if r <= t), default=None)
            closes = [c for c in self._closes.get(server, ()) if t - LEAD_IN <= c <= t and (last_good is None or c >= last_good)]
            cluster = _Cluster(server, t, t, min(closes, default=t), last_good, len(closes))
            self._current[server] = cluster
            self.clusters.append(cluster)
            return
        cluster.last = t
        cluster.refusals += 1
        cluster.t_back = cluster.t_good_after = None  # still down: any earlier "back" was premature

    def opened(self, server: str, t: float) -> None:
        self._recent(self._opens, server, t)
        cluster = self._current.get(server)
        if cluster is not None and cluster.t_back is None and t > cluster.last:
            cluster.t_back = t

    def server_closed(self, server: str, t: float) -> None:
        self._recent(self._closes, server, t)

    def session_lost(self, server: str, t: float, minted: float | None) -> None:
        """An old session id was rejected (404 session not found) at ``t``.

        A restart too quick to refuse anything still shows: a burst of connections the server
        closed at once (SIGTERM ends every keep-alive connection and stream), then sessions the
        new process does not know.  A lone expired session is not a restart: the burst must lie
        between the session's creation and its rejection.
        """
        cluster = self._current.get(server)
        if cluster is not None and t - cluster.last <= CLUSTER_GAP:
            return
        closes = [c for c in self._closes.get(server, ()) if c <= t and (minted is None or c > minted)]
        burst = [c for c in closes if closes and c - closes[0] <= BURST_SPAN] if closes else []
        if len(burst) < BURST_MIN:
            return
        down, end = burst[0], burst[-1]
        last_good = max((r for r in self._responses.get(server, ()) if r <= down), default=None)
        cluster = _Cluster(server, down, end, down, last_good, len(burst), refusals=0, lost_sessions_at=t)
        cluster.t_back = next((o for o in self._opens.get(server, ()) if end < o <= t), None)
        cluster.served_again = True
        self._current[server] = cluster
        self.clusters.append(cluster)

    def good_response(self, server: str, t: float) -> None:
        self._recent(self._responses, server, t)
        cluster = self._current.get(server)
        if cluster is not None and t > cluster.last:
            if cluster.t_good_after is None:
                cluster.t_good_after = t
            cluster.served_again = True

    def forget(self, servers: set[str]) -> None:
        """Drop what was learnt about these server addresses (a proxy's client hop set aside)."""
        self.clusters = [c for c in self.clusters if c.server not in servers]
        for server in servers:
            self._current.pop(server, None)

    def windows(self, t0: float) -> list[RestartWindow]:
        result = []
        for c in sorted(self.clusters, key=lambda c: c.t_down):
            proxied = min(self._proxied.get(c.server, 0), c.refusals)
            if c.refusals and proxied == c.refusals:
                evidence = [f"a proxy answered {c.refusals} request(s) to {c.server or 'the server'} with 502/503 between +{c.first - t0:.2f}s and +{c.last - t0:.2f}s: the server behind it was down"]
            elif c.refusals:
                evidence = [f"{c.refusals - proxied} connection(s) to {c.server or 'the server'} refused" + (f" and {proxied} request(s) answered 502/503 by a proxy" if proxied else "") + f" between +{c.first - t0:.2f}s and +{c.last - t0:.2f}s"]
            else:
                evidence = [f"no connection was refused, but {c.closes_before} connection(s) were closed by {c.server or 'the server'} at once at +{c.first - t0:.2f}s and an old session id was rejected at +{(c.lost_sessions_at or c.last) - t0:.2f}s: the server restarted and lost its sessions"]
            if c.closes_before and c.refusals:
                evidence.append(f"{c.closes_before} connection(s) closed or reset by the server just before")
            back = c.t_back if c.t_back is not None else c.t_good_after
            if back is not None:
                evidence.append(f"first connection accepted again at +{back - t0:.2f}s")
            result.append(RestartWindow(t_last_good=c.t_last_good, t_down=c.t_down, t_back=back, refused=c.refusals, resets=c.closes_before, t_last_refused=c.last, server=c.server, evidence=evidence))
        return result
