"""Inferences that decide a stall the wire alone does not prove.

Each returns a sentence saying why (or None when it does not apply):

- schedule exhausted: the namespace's attempts followed a known finite schedule to
  its last step, and nothing followed;
- siblings alive: the same client rebound its other namespaces (or kept retrying
  them) while this one stayed silent for clearly longer than they needed;
- silence: nothing for longer than any known client retry schedule.

None of them may fire for a namespace that is still on a schedule whose next step
has not come yet: that one is ``unknown``, never ``stalled``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .attempts import Fit
from .context import Context, activity


@dataclass
class Sibling:
    """Another namespace of the same client, as the sibling inference needs it."""

    name: str
    rebound: bool
    trouble: float
    t_return: float | None  # its first request after the server came back
    t_last_try: float | None  # its last attempt while the server was down
    steps: int = 0  # attempts of its fitted schedule


def _rel(ctx: Context, t: float) -> str:
    return ctx.rel(t)


def exhausted(ctx: Context, fit: Fit | None, margin: float) -> str | None:
    """The fit's finite schedule ran to its last step and nothing followed for ``margin`` s."""
    if fit is None or not fit.complete:
        return None
    last = fit.last_t
    steps = {id(got) for _, got in fit.steps}
    if any(ex.t > last + 0.05 for ex in ctx.after if id(ex) not in steps):
        return None
    if ctx.t_end - last < margin:
        return None
    times = ", ".join(_rel(ctx, got.t) for _, got in fit.steps)
    return f"its attempts ({times}) followed {fit.schedule} to the last step; the client does not try again after it, and nothing came in the {ctx.t_end - last:.1f}s the capture goes on"


def pending_step(ctx: Context, fit: Fit | None) -> float | None:
    """When the namespace's schedule still has a step due after the end of the capture."""
    if fit is None:
        return None
    due = fit.next_due()
    if due is not None and due > ctx.t_end:
        return due
    return None


def siblings_alive(ctx: Context, fit: Fit | None, siblings: list[Sibling], minimum: float, unexplained: int = 0) -> str | None:
    """The client is alive (it rebound or kept retrying its other namespaces); this one is not.

    ``unexplained``: refused connections of the downtime after this namespace's last known
    attempt that no namespace's schedule explains (they could be its own attempts).
    """
    if not siblings or pending_step(ctx, fit) is not None:
        return None
    return _came_back(ctx, fit, siblings, minimum) or _kept_retrying(ctx, fit, siblings, minimum, unexplained)


def _came_back(ctx: Context, fit: Fit | None, siblings: list[Sibling], minimum: float) -> str | None:
    """Siblings rebound and this one stayed silent clearly longer than they needed.

    The margin scales with how long the slowest sibling took, since a namespace whose
    failure came a little later can miss the server by one step of a doubling backoff.
    """
    returned = [s for s in siblings if s.rebound and s.t_return is not None]
    if not returned or ctx.t_back is None:
        return None
    last_self = max([ex.t for ex in ctx.after] + ([fit.last_t] if fit is not None else []) + [ctx.trouble_t])
    slowest = max(s.t_return for s in returned if s.t_return is not None)
    took = max((s.t_return or 0.0) - s.trouble for s in returned)
    margin = max(minimum, 1.25 * took + 2.0)
    ref = max(slowest, last_self)
    if ctx.t_end - ref < margin:
        return None
    names = ", ".join(s.name for s in returned)
    return f"the same client came back on {names} (the slowest at {_rel(ctx, slowest)}), but this namespace stayed silent for {ctx.t_end - ref:.1f}s after that (more than the {margin:.1f}s its siblings' schedule could still need)"


def _kept_retrying(ctx: Context, fit: Fit | None, siblings: list[Sibling], minimum: float, unexplained: int) -> str | None:
    """This namespace's attempts stopped (after one step, or at once) while the same client kept
    retrying its siblings on a known schedule past the step this one should have made next."""
    if ctx.after or unexplained:
        return None  # something of its own on the wire, or attempts no schedule explains: not told apart
    own = len(fit.steps) if fit is not None else 0
    retrying = [s for s in siblings if s.t_last_try is not None and s.steps >= 2 and s.steps > own]
    if not retrying:
        return None
    if fit is not None and fit.kind == "host":
        due = fit.next_due()
        what = f"its attempts stopped after {len(fit.steps)} of the {len(fit.delays)} steps of {fit.schedule} (the next was due at {_rel(ctx, due or 0.0)})"
    elif fit is None and activity(ctx) is False:
        due = ctx.trouble_t + 1.0 + 0.5  # the first step of any known host schedule, with slack
        what = "it made no attempt at all after its call failed (a client that ends on a connection error, like the Python SDK's)"
    else:
        return None
    latest = max(s.t_last_try for s in retrying if s.t_last_try is not None)
    if due is None or latest <= due or ctx.t_end - due < minimum / 2:
        return None
    names = ", ".join(s.name for s in retrying)
    return f"{what}, while the same client kept retrying {names} until {_rel(ctx, latest)}"


def silence(ctx: Context, give_up_after: float) -> str | None:
    quiet = ctx.t_end - ctx.silent_since()
    if quiet >= give_up_after:
        return f"nothing more from this namespace for {quiet:.1f}s (longer than any known client retry schedule)"
    return None
