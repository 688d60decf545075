"""Reconnect attempts of each namespace, including refused connections that carry no request.

A refused SYN has no path, so it cannot say which namespace sent it; its time can.
Each namespace in trouble gets a *plan* (when its stream was cut, whether it was busy
calling tools or idle with only its GET stream, its client's known schedules), and
the refusals of the downtime are attributed to the plans by timing fit, most certain
first:

1. the SDK's own stream reconnects of idle namespaces, anchored at the exact time the
   server cut their stream (TS SDK: +1.0 s, +2.5 s; Python SDK: +1.0 s);
2. host reconnect schedules (Claude Code's 1, 2, 4, 8, 16 s) of namespaces whose
   later attempt is on the wire, fitted backwards from that attempt;
3. host schedules of busy namespaces that never showed up again, fitted forwards
   from the first unclaimed refusal after their trouble began.

A refusal is given to one namespace at most; the client's source address, where the
namespaces' clients differ, rules out the others.  Pure: no clocks, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import Exchange
from .schedules import HOST_SCHEDULES

STREAM_TOL = 0.12  # s (+3% of the offset): a stream reconnect is timed from an exact cut
HOST_TOL = 0.25  # s (+5% of the offset): a host's failure time is itself only a refusal
BURST = 0.06  # refusals this close together are one attempt of one client (IPv6 + IPv4, retries of the connect)


@dataclass
class Refusal:
    """A connection refused (or reset) before it carried a request."""

    t: float
    frame: int | None
    address: str  # client IP
    conn: str
    event: str = "refused"


@dataclass
class Plan:
    """What one namespace in trouble is expected to do, from its own traffic and its client."""

    ns: str
    trouble: float  # when this namespace's trouble began
    address: str = ""  # client IP(s), comma separated ("" unknown)
    cut: float | None = None  # when the server cut its stream
    idle: bool | None = None  # True: only its stream was open; False: it was calling tools; None: unclear
    stream_delays: tuple[float, ...] = ()  # the SDK's own reconnect delays after the cut
    stream_name: str = ""
    stream_gets: list[Exchange] = field(default_factory=list)  # its GET requests after the cut, on the wire
    first_visible: float | None = None  # its first request on the wire after the server came back
    next_call: float | None = None  # when its next call was due, from its rhythm before the trouble
    period: float | None = None  # the steady interval of its attempts on the wire after the server came back


@dataclass
class Fit:
    """The schedule a namespace's attempts were fitted to, and how far it got."""

    schedule: str
    delays: tuple[float, ...]
    anchor: float  # the cut or the failure the delays count from
    steps: list[tuple[float, Refusal | Exchange]]  # (expected time, what matched), in order
    anchor_refusal: Refusal | None = None  # the refused connection of the failure itself
    kind: str = "host"  # "stream": the SDK's own stream reconnects; "host": a host's reconnect schedule; "periodic": open-ended

    @property
    def complete(self) -> bool:
        return len(self.steps) == len(self.delays)

    @property
    def last_t(self) -> float:
        if not self.steps:
            return self.anchor
        got = self.steps[-1][1]
        return got.t

    def next_due(self) -> float | None:
        """When the schedule's next step is due (None: it has no more)."""
        if self.complete:
            return None
        return self.last_t + self.delays[len(self.steps)]


def _tol(base: float, offset: float, share: float) -> float:
    return base + share * offset


def _compatible(refusal: Refusal, address: str) -> bool:
    return not address or not refusal.address or refusal.address in address.split(",")


class Attributor:
    """Hands out refusals to plans; each refusal goes to one plan at most."""

    def __init__(self, refusals: Iterable[Refusal]) -> None:
        self.refusals = sorted(refusals, key=lambda r: r.t)
        self.times = [r.t for r in self.refusals]
        self.index = {id(r): i for i, r in enumerate(self.refusals)}
        self.used: set[int] = set()

    def _nearest(self, t: float, tol: float, address: str, after: float = float("-inf")) -> Refusal | None:
        best: tuple[float, int] | None = None
        for i in range(bisect_left(self.times, t - tol), len(self.refusals)):
            r = self.refusals[i]
            if r.t <= after:
                continue
            if r.t > t + tol:
                break
            if i in self.used or not _compatible(r, address):
                continue
            err = abs(r.t - t)
            if best is None or err < best[0]:
                best = (err, i)
        if best is None:
            return None
        self.used.add(best[1])
        return self.refusals[best[1]]

    def _at(self, refusal: Refusal) -> int:
        return self.index[id(refusal)]

    def _release(self, refusals: Iterable[Refusal]) -> None:
        for r in list(refusals):
            self.used.discard(self._at(r))

    def stream(self, plan: Plan) -> Fit | None:
        """The SDK's stream reconnects after the cut: each step a refusal or a GET of its own on the wire."""
        if plan.cut is None or not plan.stream_delays:
            return None
        fit = Fit(plan.stream_name, plan.stream_delays, plan.cut, [], kind="stream")
        prev = plan.cut
        for delay in plan.stream_delays:
            expected = prev + delay
            tol = _tol(STREAM_TOL, delay, 0.03)
            get = next((ex for ex in plan.stream_gets if abs(ex.t - expected) <= tol), None)
            got: Refusal | Exchange | None = get if get is not None else self._nearest(expected, tol, plan.address)
            if got is None:
                break
            fit.steps.append((expected, got))
            prev = got.t
            if get is not None and get.status == 200:
                break  # the stream is back: no more reconnects
        return fit if fit.steps else None

    def _chain(self, start: float, delays: tuple[float, ...], address: str, backwards: bool = False) -> list[tuple[float, Refusal]]:
        """Refusals that follow ``delays`` one after another from ``start`` (each timed from the one
        before, so a client's own overhead per attempt does not add up), claimed tentatively."""
        out: list[tuple[float, Refusal]] = []
        prev = start
        for delay in (reversed(delays) if backwards else delays):
            expected = prev - delay if backwards else prev + delay
            got = self._nearest(expected, _tol(HOST_TOL, delay, 0.1), address, after=float("-inf") if backwards else start + BURST)
            if got is None:
                break
            out.append((expected, got))
            prev = got.t
        return out

    def _claim(self, steps: Iterable[tuple[float, Refusal]]) -> None:
        for _, got in steps:
            self.used.add(self._at(got))

    def _failure(self, plan: Plan, expected: float) -> tuple[float, Refusal | None] | None:
        """What started a host schedule whose first step came ``expected`` + delay: the refused
        connection of the failed call, or the cut of the namespace's stream (hosts that react to it)."""
        got = self._nearest(expected, HOST_TOL, plan.address)
        if got is not None:
            return got.t, got
        if plan.cut is not None and abs(plan.cut - expected) <= HOST_TOL:
            return plan.cut, None
        return None

    def backward(self, plan: Plan) -> Fit | None:
        """A host schedule that ends in the namespace's first attempt on the wire after the server was back."""
        if plan.first_visible is None:
            return None
        best: Fit | None = None
        for name, delays in HOST_SCHEDULES.items():
            for k in range(1, len(delays)):  # the visible attempt is step k+1; steps 1..k were refused
                chain = self._chain(plan.first_visible, delays[1 : k + 1], plan.address, backwards=True)
                start = self._failure(plan, chain[-1][1].t - delays[0]) if len(chain) == k else None
                self._release([got for _, got in chain] + ([start[1]] if start and start[1] else []))
                if start is None or start[0] < plan.trouble - 0.5:
                    continue
                if best is None or k > len(best.steps):
                    best = Fit(name, delays, start[0], list(reversed(chain)), start[1])  # type: ignore[arg-type]
        if plan.period is not None:  # a client that retries at its calls' rhythm: whichever explains more wins
            steady = self._periodic(plan, plan.period)
            if steady is not None and (best is None or len(steady.steps) > len(best.steps)):
                best = steady
        if best is not None:
            self._claim_fit(best)
        return best

    def _claim_fit(self, fit: Fit) -> None:
        if fit.anchor_refusal is not None:
            self._claim([(fit.anchor, fit.anchor_refusal)])
        self._claim(fit.steps)  # type: ignore[arg-type]

    def _periodic(self, plan: Plan, period: float) -> Fit | None:
        """A client that retries at a fixed interval: the rhythm of its visible attempts, continued back
        into the downtime (an open-ended schedule: it never counts as exhausted)."""
        assert plan.first_visible is not None
        steps = int((plan.first_visible - plan.trouble) / period) + 1
        chain = self._chain(plan.first_visible, (period,) * steps, plan.address, backwards=True)
        self._release(got for _, got in chain)
        chain = [(e, got) for e, got in chain if got.t >= plan.trouble - 0.5]
        if len(chain) < 2:
            return None
        anchor = chain[-1][1]
        return Fit(f"a fixed {period:.1f} s interval", (period,) * 1000, anchor.t, list(reversed(chain[:-1])), anchor, kind="periodic")

    def forward(self, plan: Plan, within: float) -> Fit | None:
        """A host schedule started by the namespace's failure soon after the trouble: an unclaimed
        refused connection (its failed call), or the cut of its stream."""
        starts: list[tuple[float, Refusal | None]] = [(plan.cut, None)] if plan.cut is not None else []
        first, last = bisect_left(self.times, plan.trouble - 0.05), bisect_left(self.times, plan.trouble + within + 1e-9)
        starts += [(self.refusals[i].t, self.refusals[i]) for i in range(first, last) if i not in self.used and _compatible(self.refusals[i], plan.address)]
        best: Fit | None = None
        for t, refusal in starts:
            if refusal is not None:
                self.used.add(self._at(refusal))
            for name, delays in HOST_SCHEDULES.items():
                chain = self._chain(t, delays, plan.address)
                self._release(got for _, got in chain)
                if chain and (best is None or len(chain) > len(best.steps)):
                    best = Fit(name, delays, t, chain, refusal)  # type: ignore[arg-type]
            if refusal is not None:
                self.used.discard(self._at(refusal))
        if best is not None and len(best.steps) == 1 and best.anchor_refusal is not None and not self._expected_failure(plan, best.anchor):
            best = None  # one step is a coincidence unless the failure came when the namespace's next call was due
        if best is not None:
            self._claim_fit(best)
        return best

    @staticmethod
    def _expected_failure(plan: Plan, t: float) -> bool:
        return plan.next_call is not None and abs(t - max(plan.trouble, plan.next_call)) <= 0.3

    def unclaimed(self) -> list[Refusal]:
        return [r for i, r in enumerate(self.refusals) if i not in self.used]


def attribute(plans: list[Plan], refusals: list[Refusal], busy_within: dict[str, float]) -> tuple[dict[str, Fit], list[Refusal]]:
    """Fit every plan (see the module docstring for the order); also the refusals nobody explains."""
    attributor = Attributor(refusals)
    fits: dict[str, Fit] = {}
    for plan in sorted(plans, key=lambda p: p.cut or p.trouble):
        if plan.idle:
            fit = attributor.stream(plan)
            if fit is not None:
                fits[plan.ns] = fit
    for plan in plans:
        if plan.ns not in fits and plan.idle is False:
            fit = attributor.backward(plan)
            if fit is not None:
                fits[plan.ns] = fit
    for plan in sorted(plans, key=lambda p: p.trouble):
        if plan.ns not in fits and plan.idle is False and plan.first_visible is None:
            fit = attributor.forward(plan, busy_within.get(plan.ns, 2.0))
            if fit is not None:
                fits[plan.ns] = fit
    left = attributor.unclaimed()
    for name, fit in list(fits.items()):
        if fit.kind == "host" and len(fit.steps) == 1 and any(r.t > fit.last_t + BURST for r in left):
            del fits[name]  # a single try that "stopped", while unexplained attempts went on: not told apart
    return fits, left
