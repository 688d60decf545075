"""The stall signatures of mcp-wire.md as a table of small rule functions.

The first rule that matches a namespace that did not rebind names the signature
and the stall point, by one canonical rule per signature (README, "Stall points"):
the first rejected request after the server came back for a loop, the last attempt
for an exhausted schedule (or the exchange the downtime cut, when no attempt can be
attributed), the last request of the new session for ``tools-never-relisted``, the
hung request itself.  A hit is ``definitive`` when the wire alone proves the stall;
otherwise inference.py decides from client behaviour, siblings and silence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import records as R
from .attempts import Fit, Refusal
from .context import Context, activity, cut_by_downtime, ended_by_restart, failed, is_call, is_stream
from .lifecycle import SETUP_METHODS, answered
from .model import Attempt, Exchange, StallPoint
from .schedules import attempt_gaps, match_schedule

NON_RETRIED = {401, 403, 404, 405}


@dataclass
class Hit:
    signature: str
    stall: Exchange | Attempt | None
    definitive: bool  # the wire proves the stall; otherwise an inference must
    evidence: list[str]


Rule = Callable[[Context], Hit | None]


def result_text(ex: Exchange) -> str:
    """How an exchange ended, as the stall point shows it."""
    if ex.outcome == R.REFUSED:
        return "refused"
    if ex.status is None:
        return {"reset": "reset, no response", "closed": "closed, no response", "open-at-end": "no response"}.get(ex.outcome, ex.outcome or "no response")
    text = str(ex.status)
    if ex.error and ex.error not in (f"http-{ex.status}",):
        text += f" {ex.error}"
    if is_stream(ex) and ex.status == 200 and ex.outcome in ("closed", "reset"):
        text += f", stream {ex.outcome}"
    elif not answered(ex):
        text += ", no JSON-RPC response"
    return text


def stall_point(stall: Exchange | Attempt) -> StallPoint:
    if isinstance(stall, Attempt):
        return StallPoint(t=stall.t, xid=stall.xid, conn=stall.conn, frame=stall.frame, method="", target="", rpc_method="", result=stall.result, attributed_by=stall.attributed_by)
    t = stall.t_frame if stall.t_frame is not None else stall.t  # the time of its frame, as Wireshark shows it
    return StallPoint(t=t, xid=stall.xid, conn=stall.conn, frame=stall.frame, method=stall.method, target=stall.target, rpc_method=",".join(stall.rpc_methods), result=result_text(stall))


def refusal_attempt(refusal: Refusal, how: str) -> Attempt:
    return Attempt(t=refusal.t, kind=refusal.event, label="connection", result=refusal.event, attributed_by=how, frame=refusal.frame, conn=refusal.conn)


def fit_attempts(fit: Fit | None) -> list[Attempt]:
    """The refused connections a fit attributed, as attempts (the failure that started it first)."""
    if fit is None:
        return []
    out = []
    if fit.anchor_refusal is not None:
        out.append(refusal_attempt(fit.anchor_refusal, f"timing fit: the failure {fit.schedule} counts from"))
    for i, (_, got) in enumerate(fit.steps, start=1):
        if isinstance(got, Refusal):
            step = "like its attempts after the server came back" if fit.kind == "periodic" else f"step {i} of {len(fit.delays)}"
            out.append(refusal_attempt(got, f"timing fit: {fit.schedule}, {step}"))
    return out


# -- the rules, most specific first ----------------------------------------------


def rule_get_conflict(ctx: Context) -> Hit | None:
    conflicts = [ex for ex in ctx.after if ex.method == "GET" and ex.status == 409]
    if not conflicts:
        return None
    last = conflicts[-1]
    if any(ex.method == "GET" and ex.status == 200 and ex.t > last.t for ex in ctx.after):
        return None
    return Hit("get-conflict", last, False, [f"{len(conflicts)} GET stream reconnect(s) answered 409 Conflict; last at {ctx.rel(last.t)}"])


def rule_reinit_with_stale_header(ctx: Context) -> Hit | None:
    bad = [ex for ex in ctx.after if "initialize" in ex.rpc_methods and ex.session_id and failed(ex) and ex.status is not None]
    if not bad:
        return None
    return Hit("reinit-with-stale-header", bad[-1], len(bad) >= 2, [f"{len(bad)} initialize request(s) carried the old session id {bad[-1].session_id} and were rejected ({result_text(bad[-1])})"])


def rule_phantom_session(ctx: Context) -> Hit | None:
    created = {g.session_id for g in ctx.ns.generations}
    for ex in ctx.after:
        sid = ex.new_session_id
        if sid and ex.status is not None and ex.status >= 400 and sid not in created:
            users = [u for u in ctx.after if u.session_id == sid and u.t > ex.t]
            if users:
                return Hit("phantom-session", ex, True, [f"session id {sid} came on a {ex.status} response and was used by {len(users)} later request(s) without initialize"])
    return None


def _stale_failure(ctx: Context, ex: Exchange) -> bool:
    if ex.session_id not in ctx.old_sids or ex.outcome == R.REFUSED:
        return False
    if ex.error == "session-not-found" or ex.status in (400, 404):
        return True
    return ex.status == 503 and ctx.t_back is not None and ex.t >= ctx.t_back


def rule_stale_session(ctx: Context) -> Hit | None:
    if any("initialize" in ex.rpc_methods and not ex.session_id for ex in ctx.after):
        return None  # it did try to start over; other rules judge how that went
    stale = [ex for ex in ctx.after if _stale_failure(ctx, ex)]
    back = ctx.t_back
    first = next((ex for ex in stale if back is None or ex.t >= back), stale[0] if stale else None)
    if len(stale) >= 2 and first is not None:
        what = "GET stream reconnects" if all(ex.method == "GET" for ex in stale) else "requests"
        return Hit("stale-session-loop", first, True, [f"{len(stale)} {what} kept the old session id {first.session_id} and were rejected ({result_text(first)}), first at {ctx.rel(stale[0].t)}, last at {ctx.rel(stale[-1].t)}; no initialize followed"])
    resumed = [ex for ex in ctx.after if ex.session_id in ctx.old_sids and ex.status is not None and ex.outcome != R.REFUSED and (back is None or ex.t >= back)]
    if resumed and stale:
        return Hit("resume-without-initialize", resumed[0], False, [f"after the restart the first request ({resumed[0].label}) resumed the old session id {resumed[0].session_id} ({result_text(resumed[0])}); no initialize followed"])
    return None


def rule_initialized_missing(ctx: Context) -> Hit | None:
    for gen in ctx.new_generations():
        exs = ctx.gen_exchanges(gen)
        init = next((ex for ex in exs if ex.xid == gen.initialize_xid), None)
        notified = next((ex for ex in exs if ex.xid == gen.initialized_xid), None)
        others = [ex for ex in exs if ex.method == "POST" and not SETUP_METHODS.intersection(ex.rpc_methods)]
        if notified is None:
            lost = ctx.lost_between(gen.t_start, others[0].t if others else ctx.t_end)
            return Hit("initialized-missing", init, bool(others) and not lost, [f"session {gen.session_id} was initialized at {ctx.rel(gen.t_start)} but notifications/initialized was never sent"] + ([lost] if lost else []))
        if notified.status not in (200, 202):
            return Hit("initialized-missing", notified, bool(others), [f"notifications/initialized in session {gen.session_id} was answered {result_text(notified)}, not 202"])
        early = [ex for ex in others if ex.t < notified.t]
        if early:
            return Hit("initialized-missing", init, True, [f"{len(early)} request(s) were sent before notifications/initialized in session {gen.session_id}"])
    return None


def rule_tools_never_relisted(ctx: Context) -> Hit | None:
    for gen in ctx.new_generations():
        if gen.tools_list_xid is None and gen.initialized_xid is not None:
            exs = [ex for ex in ctx.gen_exchanges(gen) if ex.method == "POST"]
            if any("tools/list" in ex.rpc_methods for ex in exs):
                return None  # it did ask (the answer is missing or failed): other rules judge that
            calls = [ex for ex in exs if not SETUP_METHODS.intersection(ex.rpc_methods)]
            lost = ctx.lost_between(gen.t_start, exs[-1].t)
            return Hit("tools-never-relisted", exs[-1], bool(calls) and not lost, [f"session {gen.session_id} was established at {ctx.rel(gen.t_start)} but tools/list was never sent in it" + (f"; {len(calls)} other request(s) were" if calls else "")] + ([lost] if lost else []))
    return None


def rule_call_lost_after_rebind(ctx: Context) -> Hit | None:
    """A new session was set up, but the call the restart broke was never sent again (and no other call was)."""
    gens = [g for g in ctx.new_generations() if g.tools_list_xid is not None]
    if not gens:
        return None
    gen = gens[0]
    lost = [ex for ex in ctx.ns.exchanges if is_call(ex) and "tools/list" not in ex.rpc_methods and ex.t < gen.t_start and (ex.t_end or ex.t) >= ctx.trouble_t - 0.5 and failed(ex) and ex.outcome != R.REFUSED]
    later_calls = [ex for ex in ctx.gen_exchanges(gen) if is_call(ex) and "tools/list" not in ex.rpc_methods]
    if not lost or later_calls:
        return None
    return Hit("call-lost-after-rebind", lost[-1], False, [f"{lost[-1].label} failed at {ctx.rel(lost[-1].t)} ({result_text(lost[-1])}); session {gen.session_id} was set up at {ctx.rel(gen.t_start)} but the call was never sent again"])


def rule_unanswered_last(ctx: Context) -> Hit | None:
    posts = [ex for ex in ctx.after if ex.method == "POST" and ex.outcome != R.REFUSED]
    if not posts or answered(posts[-1]) or posts[-1].rpc_ids == [] or ctx.in_flight(posts[-1]):
        return None  # (a call still in flight when the capture ended is no evidence yet)
    last = posts[-1]
    reused = not last.xid.endswith(".1")  # xids number the exchanges of a connection: c7.1, c7.2, ...
    if last.status is None and last.outcome in (R.RESET, R.CLOSED) and reused:
        return Hit("dead-pooled-socket", last, False, [f"{last.label} was written on reused keep-alive connection {last.conn}, which the server had already closed: {result_text(last)}"])
    evidence = [f"{last.label} at {ctx.rel(last.t)} never got its response ({result_text(last)})"]
    if ctx.hung(last):
        pings = sum(1 for tick in last.events if tick.event == R.SSE_COMMENT)
        answers = ctx.answered_after(last.t + 0.5)
        evidence.append(f"it waited {ctx.waited(last):.1f}s while the server answered {answers} other request(s)" + (f" and sent {pings} keep-alive comment(s) on its stream" if pings else ""))
    return Hit("hung-request", last, False, evidence)


def rule_non_retried_status(ctx: Context) -> Hit | None:
    attempts = [ex for ex in ctx.after if ex.outcome != R.REFUSED]
    if not attempts:
        return None
    last = attempts[-1]
    if last.status in NON_RETRIED and last.error != "session-not-found":
        return Hit("non-retried-status", last, False, [f"{last.label} got {result_text(last)} at {ctx.rel(last.t)} and was never retried"])
    return None


def attempt_times(ctx: Context, fit: Fit | None) -> list[float]:
    """When the namespace tried again: from the cut of its stream (or its failure), then each attempt."""
    cut = cut_by_downtime(ctx)
    times = [ex.t for ex in ctx.after if failed(ex) or "initialize" in ex.rpc_methods]
    times += [a.t for a in fit_attempts(fit)]
    start = [cut.t_end or cut.t] if cut is not None and not (fit and fit.anchor_refusal) else []
    return sorted(start + times)


def rule_version_mismatch_loop(ctx: Context) -> Hit | None:
    """400 -32020 (headers do not match the body) or -32022 (unsupported version), again and again."""
    bad = [ex for ex in ctx.after if ex.error in ("header-mismatch", "unsupported-version", "missing-capability")]
    if len(bad) < 2 or any(ex.ok and answered(ex) and ex.t > bad[-1].t for ex in ctx.after):
        return None
    return Hit("version-mismatch-loop", bad[0], True, [f"{len(bad)} requests were rejected with {bad[0].error_detail[:80]} (first at {ctx.rel(bad[0].t)}, last at {ctx.rel(bad[-1].t)}); none was answered after"])


LISTEN = "subscriptions/listen"


def rule_subscription_not_reissued(ctx: Context) -> Hit | None:
    """An idle namespace's subscriptions/listen stream ended with the restart and was never opened
    again (the 2026-07-28 form of the idle GET stream stall)."""
    ended = ended_by_restart(ctx)
    if ended is None or LISTEN not in ended.rpc_methods or activity(ctx) is not True:
        return None
    if any(LISTEN in ex.rpc_methods for ex in ctx.after) or any(is_call(ex) for ex in ctx.after):
        return None
    how = "was cut" if ended.outcome in (R.CLOSED, R.RESET) else "was ended by the server"
    return Hit("subscription-not-reissued", ended, False, [f"its subscriptions/listen stream (from {ctx.rel(ended.t)}) {how} at {ctx.rel(ended.t_end or ended.t)} and never opened again; a 2026-07-28 stream cannot be resumed, the client must send the request again"])


def rule_request_not_reissued(ctx: Context) -> Hit | None:
    """A request whose stream the restart broke was never sent again with a new id."""
    cut = cut_by_downtime(ctx)
    if cut is None or is_stream(cut) or not is_call(cut) or answered(cut):
        return None
    again = [ex for ex in ctx.after if ex.rpc_methods == cut.rpc_methods and ex.mcp_name == cut.mcp_name]
    if again or ctx.after:
        return None
    return Hit("request-not-reissued", cut, False, [f"{cut.label}{' ' + cut.mcp_name if cut.mcp_name else ''} was cut at {ctx.rel(cut.t_end or cut.t)} without its answer and never sent again"])


def rule_gave_up_while_down(ctx: Context, fit: Fit | None = None) -> Hit | None:
    if ctx.window is None:
        return None
    back = ctx.t_back
    if back is not None and any(ex.t >= back for ex in ctx.after):
        return None
    visible = [ex for ex in ctx.after if failed(ex)]
    attributed = [a for a in fit_attempts(fit) if fit is None or a.t > fit.anchor + 0.06]
    tries: list[Exchange | Attempt] = sorted([*visible, *attributed], key=lambda a: a.t)
    earlier = ctx.after or [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t]
    stall = tries[-1] if tries else (cut_by_downtime(ctx) or (earlier[-1] if earlier else None))
    gaps = attempt_gaps(attempt_times(ctx, fit))
    schedule = fit.schedule if fit is not None and fit.complete else match_schedule(gaps)
    where = "before the server came back" if back is not None else "and the server's return is not in the capture"
    if tries:
        evidence = [f"{len(tries)} attempt(s) of this namespace failed while the server was down, none after it came back" + (f" ({len(attributed)} of them refused connections attributed by timing)" if attributed else "")]
    else:
        evidence = ["the namespace sent nothing after its traffic was cut"]
        if ctx.window.refused:
            evidence.append(f"{ctx.window.refused} refused connection(s) during the downtime carry no request and none fits this namespace's schedules")
    inits = [ex for ex in visible if "initialize" in ex.rpc_methods]
    one_reinit = (fit is not None and fit.kind == "host" and len(fit.steps) == 1) or (len(inits) == 1 and visible[-1] is inits[0])
    if schedule and tries:
        return Hit("backoff-gave-up", stall, False, evidence + [f"attempt gaps {', '.join(f'{g:.1f}s' for g in gaps)} match {schedule}; the schedule ended {where}"])
    if one_reinit and tries:
        return Hit("reinit-once-gave-up", stall, False, evidence + ["after the failure it tried to re-initialize once, and stopped when that failed"])
    return Hit("retries-exhausted-while-down", stall, False, evidence)


RULES: tuple[Rule, ...] = (
    rule_version_mismatch_loop,
    rule_get_conflict,
    rule_reinit_with_stale_header,
    rule_phantom_session,
    rule_stale_session,
    rule_initialized_missing,
    rule_tools_never_relisted,
    rule_call_lost_after_rebind,
    rule_unanswered_last,
    rule_non_retried_status,
)

# the 2026-07-28 revision: no sessions, so no session rules; its own stream rules
SESSIONLESS_RULES: tuple[Rule, ...] = (
    rule_version_mismatch_loop,
    rule_subscription_not_reissued,
    rule_request_not_reissued,
    rule_unanswered_last,
    rule_non_retried_status,
)
