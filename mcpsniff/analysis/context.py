"""What the verdict rules look at for one namespace: its restart, its trouble, its traffic since.

Pure helpers shared by the signature rules (diagnose.py) and the inferences
(inference.py): which exchanges failed, which were cut by the downtime, whether the
namespace was busy or idle when the trouble began, and whether a request is hung.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from statistics import median

from .. import records as R
from .clients import Behaviour
from .lifecycle import PROBE_REJECTED, SETUP_METHODS, answered
from .model import ClientIdentity, Exchange, Generation, NamespaceLifecycle, RestartWindow


IN_FLIGHT_GRACE = 1.0  # s: a call waiting this long for its answer at the end of a capture is no evidence either way
END_CUT = 0.25  # s: a connection closed this close to the capture's end was closed by the end of the recording


@dataclass
class Context:
    """One namespace, judged against one restart (or against its own first failure)."""

    ns: NamespaceLifecycle
    window: RestartWindow | None
    trouble_t: float  # when this namespace's trouble began
    t0: float
    t_end: float  # end of the capture (or the start of the next restart)
    last_refusal: float | None  # last refused connection of the window (unattributed attempts)
    old_sids: set[str]  # session ids minted before the trouble
    after: list[Exchange]  # the namespace's exchanges from the trouble on (until the next restart)
    horizon: float  # when the next restart began (inf: none)
    patience: float  # thresholds.give_up_after: how long a silent client may still be retrying
    hung_after: float  # thresholds.hung_after
    client: ClientIdentity = field(default_factory=ClientIdentity)
    behaviour: Behaviour = field(default_factory=Behaviour)
    answers: list[float] = field(default_factory=list)  # sorted times this server answered anybody
    modern: bool = False  # the namespace speaks the sessionless 2026-07-28 revision
    lost: list[tuple[float, float, str, str, str]] = field(default_factory=list)  # (from, to, server, conn, bytes): client bytes the capture lost

    @property
    def t_back(self) -> float | None:
        return self.window.t_back if self.window else None

    def rel(self, t: float) -> str:
        return f"+{t - self.t0:.2f}s"

    def new_generations(self) -> list[Generation]:
        return [g for g in self.ns.generations if g.t_start >= self.trouble_t and g.session_id not in self.old_sids]

    def gen_exchanges(self, gen: Generation) -> list[Exchange]:
        return [ex for ex in self.ns.exchanges if ex.generation == gen.index and ex.t < self.horizon]

    def answered_after(self, t: float) -> int:
        """How many answers the server gave (to anybody) after ``t``."""
        return len(self.answers) - bisect_right(self.answers, t)

    def waited(self, ex: Exchange) -> float:
        """How long a request waited for its answer: to the end of the capture, or until its
        connection was closed or reset (a client shut down, a proxy between them gone)."""
        end = ex.t_end if ex.outcome in (R.CLOSED, R.RESET) and ex.t_end is not None else self.t_end
        return end - ex.t

    def hung(self, ex: Exchange) -> bool:
        """Unanswered far longer than ``hung_after`` while the server went on answering others."""
        if ex.method != "POST" or not ex.rpc_ids or answered(ex) or ex.outcome not in (R.OPEN_AT_END, "", R.CLOSED, R.RESET):
            return False
        if ex.outcome in (R.CLOSED, R.RESET) and ex.status is None:
            return False  # cut before any answer began: a broken connection, not a request left waiting
        return self.waited(ex) >= self.hung_after and self.answered_after(ex.t + 0.5) - self.answered_after(ex.t + self.waited(ex)) > 0

    def in_flight(self, ex: Exchange) -> bool:
        """Still waiting for its answer when the capture ended, and not for long: no failure yet.

        Waiting longer than ``IN_FLIGHT_GRACE`` and ten times the namespace's usual answer
        time is overdue: not a failure yet, but no proof the session works either.
        """
        if ex.outcome != R.OPEN_AT_END and not self.cut_at_end(ex):
            return False
        return self.waited(ex) < max(IN_FLIGHT_GRACE, 10 * self.usual_answer())

    def cut_at_end(self, ex: Exchange) -> bool:
        """Its connection was closed, before its answer, as the capture ended: the recording's own
        teardown (a proxy or client stopped with it), not the server failing the request."""
        return ex.outcome in (R.CLOSED, R.RESET) and not answered(ex) and ex.t_end is not None and self.t_end - ex.t_end <= END_CUT

    def usual_answer(self) -> float:
        """The median time the namespace's calls took to be answered."""
        times = [ex.t_end - ex.t for ex in self.ns.exchanges[-50:] if is_call(ex) and ex.t_end is not None and ex.outcome == R.COMPLETE and ex.count == 1]
        return median(times) if times else 0.0

    def lost_between(self, start: float, end: float) -> str:
        """Evidence that requests of this server may be missing from the capture between two times
        (client bytes lost on any of its connections: a pooled connection carries every namespace)."""
        server = self.ns.exchanges[0].server
        lost = [g for g in self.lost if g[0] <= end + 0.5 and g[1] >= start - 0.5 and (not g[2] or g[2] == server)]
        if not lost:
            return ""
        total = sum(int(g[4]) for g in lost if g[4].isdigit())
        return f"the capture lost {total or 'some'} bytes of client requests ({len(lost)} gap(s), connection {lost[0][3]}, after {self.rel(lost[0][0])}): the request that seems missing may be among them"

    def silent_since(self) -> float:
        """The namespace's last activity: its last request, the last refusal of the window, the trouble."""
        return max([ex.t for ex in self.after] + [self.last_refusal or 0.0, self.trouble_t])


def failed(ex: Exchange) -> bool:
    if ex.error == PROBE_REJECTED:
        return False  # a version probe an older server did not know: the client falls back, nothing failed
    return bool(ex.error) or (ex.status is not None and ex.status >= 400) or not answered(ex)


def is_stream(ex: Exchange) -> bool:
    """A long-lived stream of server messages: the 2025 GET stream or a 2026 subscriptions/listen."""
    return ex.method == "GET" or "subscriptions/listen" in ex.rpc_methods


NOT_CALLS = SETUP_METHODS | {"server/discover", "subscriptions/listen"}


def is_call(ex: Exchange) -> bool:
    """A normal request (not session set-up or version discovery, not a stream)."""
    return ex.method == "POST" and bool(ex.rpc_methods) and not NOT_CALLS.intersection(ex.rpc_methods)


def cut_by_downtime(ctx: Context) -> Exchange | None:
    """The namespace's exchange that the server's going down cut off (its GET stream, usually)."""
    cut = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t and ex.outcome in (R.CLOSED, R.RESET) and (ex.t_end or ex.t) >= ctx.trouble_t - 1.0]
    return max(cut, key=lambda ex: (is_stream(ex), ex.t_end or ex.t), default=None)


def ended_by_restart(ctx: Context) -> Exchange | None:
    """The namespace's stream (GET or subscriptions/listen) that ended when the server went down,
    cut or closed cleanly (a server may end a listen gracefully at shutdown)."""
    ended = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t and is_stream(ex) and ex.status == 200 and ex.t_end is not None and ctx.trouble_t - 1.0 <= ex.t_end <= ctx.trouble_t + 5.0]
    return max(ended, key=lambda ex: ex.t_end or ex.t, default=None)


def call_period(exchanges: list[Exchange]) -> float | None:
    """The namespace's usual time between calls (merged routine calls included)."""
    gaps: list[float] = []
    times: list[float] = []
    for ex in exchanges:
        if not is_call(ex) or "tools/list" in ex.rpc_methods:
            continue
        if ex.count > 1 and ex.t_end is not None:
            gaps.append((ex.t_end - ex.t) / (ex.count - 1))
        times.append(ex.t)
    gaps.extend(b - a for a, b in zip(times, times[1:]))
    gaps = [g for g in gaps[-12:] if g > 0]
    return median(gaps) if gaps else None


IDLE_AFTER = 10.0  # s without a call before the trouble: the namespace was idle (only its stream open)


def activity(ctx: Context) -> bool | None:
    """Was the namespace calling tools when its trouble began (False: busy) or only holding its
    stream (True: idle)?  None when the traffic does not tell."""
    before = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t]
    if any(is_call(ex) and ex.outcome in (R.CLOSED, R.RESET, R.OPEN_AT_END) and (ex.t_end or ex.t) >= ctx.trouble_t - 0.5 for ex in before):
        return False  # a call was in flight when the server went down
    calls = [ex for ex in before if is_call(ex) and "tools/list" not in ex.rpc_methods]
    period = call_period(before)
    stream_open = any(is_stream(ex) and ex.status == 200 and (ex.t_end is None or ex.t_end >= ctx.trouble_t - 1.0) for ex in before)
    if not calls:
        return True if stream_open else None
    since = ctx.trouble_t - max(ex.t_end or ex.t for ex in calls)
    if period is not None and since <= 3 * period + 0.5:
        return False
    if stream_open and since >= max(3 * (period or 0.0), IDLE_AFTER):
        return True
    return None
