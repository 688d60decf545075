"""Per-namespace verdicts: rebound / stalled / not-affected / unknown, and why.

The stall signatures of mcp-wire.md are a table of small rule functions; the first
that matches a namespace that did not rebind names the signature and the stall
point (the request after which the expected next step never came).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import records as R
from ..config import Config
from .lifecycle import SETUP_METHODS, LifecycleBuilder, answered, connection_summary
from .model import (
    NOT_AFFECTED,
    REBOUND,
    STALLED,
    UNKNOWN,
    Analysis,
    Diagnosis,
    Exchange,
    Generation,
    NamespaceLifecycle,
    RestartWindow,
    StallPoint,
)
from .schedules import attempt_gaps, match_schedule
from .texts import ADVICE, EXPLANATION

NON_RETRIED = {401, 403, 404, 405}


@dataclass
class Context:
    """What the rules look at for one namespace."""

    ns: NamespaceLifecycle
    window: RestartWindow | None
    trouble_t: float  # when this namespace's trouble began
    t0: float
    t_end: float  # end of the capture
    last_refusal: float | None  # last refused connection of the window (unattributed attempts)
    old_sids: set[str]  # session ids minted before the trouble
    after: list[Exchange]  # the namespace's exchanges from the trouble on (until the next restart)
    horizon: float  # when the next restart began (inf: none)
    patience: float  # thresholds.give_up_after: how long a silent client may still be retrying

    @property
    def t_back(self) -> float | None:
        return self.window.t_back if self.window else None

    def new_generations(self) -> list[Generation]:
        return [g for g in self.ns.generations if g.t_start >= self.trouble_t and g.session_id not in self.old_sids]

    def in_flight(self, ex: Exchange) -> bool:
        """Still waiting for its answer when the capture ended, and not for long: no failure yet."""
        return ex.outcome == R.OPEN_AT_END and self.t_end - ex.t < self.patience

    def gen_exchanges(self, gen: Generation) -> list[Exchange]:
        return [ex for ex in self.ns.exchanges if ex.generation == gen.index and ex.t < self.horizon]


@dataclass
class Hit:
    signature: str
    stall: Exchange | None
    definitive: bool  # the wire proves the stall; otherwise only silence long enough does
    evidence: list[str]


Rule = Callable[[Context], Hit | None]


def failed(ex: Exchange) -> bool:
    return bool(ex.error) or (ex.status is not None and ex.status >= 400) or not answered(ex)


def result_text(ex: Exchange) -> str:
    """How an exchange ended, as the stall point shows it."""
    if ex.outcome == R.REFUSED:
        return "refused"
    if ex.status is None:
        return {"reset": "reset, no response", "closed": "closed, no response", "open-at-end": "no response"}.get(ex.outcome, ex.outcome or "no response")
    text = str(ex.status)
    if ex.error and ex.error not in (f"http-{ex.status}",):
        text += f" {ex.error}"
    if ex.method == "GET" and ex.status == 200 and ex.outcome in ("closed", "reset"):
        text += f", stream {ex.outcome}"
    elif not answered(ex):
        text += ", no JSON-RPC response"
    return text


def stall_point(ex: Exchange) -> StallPoint:
    return StallPoint(
        t=ex.t,
        xid=ex.xid,
        conn=ex.conn,
        frame=ex.frame,
        method=ex.method,
        target=ex.target,
        rpc_method=",".join(ex.rpc_methods),
        result=result_text(ex),
    )


def _rel(ctx: Context, t: float) -> str:
    return f"+{t - ctx.t0:.2f}s"


# -- the rules, most specific first ----------------------------------------------


def rule_get_conflict(ctx: Context) -> Hit | None:
    conflicts = [ex for ex in ctx.after if ex.method == "GET" and ex.status == 409]
    if not conflicts:
        return None
    last = conflicts[-1]
    later_ok = [ex for ex in ctx.after if ex.method == "GET" and ex.status == 200 and ex.t > last.t]
    if later_ok:
        return None
    return Hit("get-conflict", last, False, [f"{len(conflicts)} GET stream reconnect(s) answered 409 Conflict; last at {_rel(ctx, last.t)}"])


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
    if len(stale) >= 2:
        return Hit("stale-session-loop", stale[0], True, [f"{len(stale)} requests kept the old session id {stale[0].session_id} and were rejected ({result_text(stale[0])}), first at {_rel(ctx, stale[0].t)}, last at {_rel(ctx, stale[-1].t)}; no initialize followed"])
    resumed = [ex for ex in ctx.after if ex.session_id in ctx.old_sids and ex.status is not None and ex.outcome != R.REFUSED and (ctx.t_back is None or ex.t >= ctx.t_back)]
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
            return Hit("initialized-missing", init, bool(others), [f"session {gen.session_id} was initialized at {_rel(ctx, gen.t_start)} but notifications/initialized was never sent"])
        if notified.status not in (200, 202):
            return Hit("initialized-missing", notified, bool(others), [f"notifications/initialized in session {gen.session_id} was answered {result_text(notified)}, not 202"])
        early = [ex for ex in others if ex.t < notified.t]
        if early:
            return Hit("initialized-missing", init, True, [f"{len(early)} request(s) were sent before notifications/initialized in session {gen.session_id}"])
    return None


def rule_tools_never_relisted(ctx: Context) -> Hit | None:
    for gen in ctx.new_generations():
        if gen.tools_list_xid is None and gen.initialized_xid is not None:
            exs = ctx.gen_exchanges(gen)
            notified = next(ex for ex in exs if ex.xid == gen.initialized_xid)
            calls = [ex for ex in exs if ex.method == "POST" and ex.t > notified.t and not SETUP_METHODS.intersection(ex.rpc_methods)]
            return Hit("tools-never-relisted", notified, bool(calls), [f"session {gen.session_id} was established at {_rel(ctx, gen.t_start)} but tools/list was never sent in it" + (f"; {len(calls)} other request(s) were" if calls else "")])
    return None


def rule_unanswered_last(ctx: Context) -> Hit | None:
    posts = [ex for ex in ctx.after if ex.method == "POST" and ex.outcome != R.REFUSED]
    if not posts or answered(posts[-1]) or posts[-1].rpc_ids == []:
        return None
    last = posts[-1]
    reused = not last.xid.endswith(".1")  # xids number the exchanges of a connection: c7.1, c7.2, ...
    if last.status is None and last.outcome in (R.RESET, R.CLOSED) and reused:
        return Hit("dead-pooled-socket", last, False, [f"{last.label} was written on reused keep-alive connection {last.conn}, which the server had already closed: {result_text(last)}"])
    return Hit("hung-request", last, False, [f"{last.label} at {_rel(ctx, last.t)} never got its response ({result_text(last)})"])


def rule_non_retried_status(ctx: Context) -> Hit | None:
    attempts = [ex for ex in ctx.after if ex.outcome != R.REFUSED]
    if not attempts:
        return None
    last = attempts[-1]
    if last.status in NON_RETRIED and last.error != "session-not-found":
        return Hit("non-retried-status", last, False, [f"{last.label} got {result_text(last)} at {_rel(ctx, last.t)} and was never retried"])
    return None


def cut_by_downtime(ctx: Context) -> Exchange | None:
    """The namespace's exchange that the server's going down cut off (its GET stream, usually)."""
    cut = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t and ex.outcome in (R.CLOSED, R.RESET) and (ex.t_end or ex.t) >= ctx.trouble_t - 1.0]
    return max(cut, key=lambda ex: (ex.method == "GET", ex.t_end or ex.t), default=None)


def attempt_times(ctx: Context) -> list[float]:
    """When the namespace tried again: from the cut of its stream, then each failed attempt."""
    cut = cut_by_downtime(ctx)
    times = [ex.t for ex in ctx.after if failed(ex) or "initialize" in ex.rpc_methods]
    return ([cut.t_end or cut.t] if cut is not None else []) + times


def rule_gave_up_while_down(ctx: Context) -> Hit | None:
    if ctx.window is None:
        return None
    back = ctx.t_back
    if back is not None and any(ex.t >= back for ex in ctx.after):
        return None
    attempts = [ex for ex in ctx.after if failed(ex)]
    stall = attempts[-1] if attempts else (cut_by_downtime(ctx) or (ctx.after or [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t] or [None])[-1])
    gaps = attempt_gaps(attempt_times(ctx))
    schedule = match_schedule(gaps)
    where = "before the server came back" if back is not None else "and the server's return is not in the capture"
    evidence = [f"{len(attempts)} attempt(s) of this namespace failed while the server was down, none after it came back" if attempts else "the namespace sent nothing after its traffic was cut"]
    if not attempts and ctx.window.refused:
        evidence.append(f"{ctx.window.refused} refused connection(s) during the downtime carry no request, so they cannot be tied to a namespace")
    if schedule and attempts:
        return Hit("backoff-gave-up", stall, False, evidence + [f"attempt gaps {', '.join(f'{g:.1f}s' for g in gaps)} match {schedule}; the schedule ended {where}"])
    return Hit("retries-exhausted-while-down", stall, False, evidence)


RULES: tuple[Rule, ...] = (
    rule_get_conflict,
    rule_reinit_with_stale_header,
    rule_phantom_session,
    rule_stale_session,
    rule_initialized_missing,
    rule_tools_never_relisted,
    rule_unanswered_last,
    rule_non_retried_status,
    rule_gave_up_while_down,
)


# -- verdicts ---------------------------------------------------------------------


def _window_for(ns: NamespaceLifecycle, windows: list[RestartWindow]) -> tuple[RestartWindow | None, float]:
    """The restart this namespace is judged against, and when the next one (if any) began.

    The last restart the server came back from wins: a final shutdown at the end of a
    CI run must not hide how the namespace handled the restart before it.
    """
    first = ns.exchanges[0].t
    servers = {ex.server for ex in ns.exchanges}
    affecting = [w for w in windows if w.t_down > first and (not w.server or w.server in servers)]
    if not affecting:
        return None, float("inf")
    chosen = ([w for w in affecting if w.t_back is not None] or affecting)[-1]
    later = [w.t_down for w in affecting if w.t_down > chosen.t_down]
    return chosen, min(later, default=float("inf"))


def _rebind(ctx: Context) -> Generation | None:
    """The first new session that was set up (initialized, tools/list) and whose calls then worked."""
    for gen in ctx.new_generations():
        if gen.tools_list_xid is None or gen.initialized_xid is None:
            continue
        calls = [ex for ex in ctx.gen_exchanges(gen) if ex.method == "POST" and not SETUP_METHODS.intersection(ex.rpc_methods)]
        last_failure = max((ex.t for ex in calls if failed(ex) and not ctx.in_flight(ex)), default=None)
        if last_failure is None or any(ex.t > last_failure and not failed(ex) for ex in calls):
            return gen
    return None


def _survived(ctx: Context) -> Exchange | None:
    """A stateless server (or one that kept its sessions) accepted the old session after the trouble."""
    for ex in ctx.after:
        if ex.session_id in ctx.old_sids and ex.ok and answered(ex) and ex.method == "POST" and (ctx.t_back is None or ex.t >= ctx.t_back) and not SETUP_METHODS.intersection(ex.rpc_methods):
            return ex
    return None


def diagnose(ns: NamespaceLifecycle, windows: list[RestartWindow], builder: LifecycleBuilder, config: Config) -> Diagnosis:
    t0 = builder.t0 or 0.0
    window, horizon = _window_for(ns, windows)
    t_end = min(builder.t_last, horizon)
    if window is not None:
        trouble_t = window.t_down
    else:
        failures = [ex for ex in ns.exchanges if failed(ex) and not (ex.method == "GET" and ex.status == 200)]
        if not failures:
            return Diagnosis(verdict=NOT_AFFECTED, evidence=["no restart and no failed exchange seen for this namespace"])
        trouble_t = failures[0].t
    old_sids = {g.session_id for g in ns.generations if g.t_start < trouble_t and g.session_id}
    after = [ex for ex in ns.exchanges if trouble_t <= ex.t < horizon]
    ctx = Context(ns, window, trouble_t, t0, t_end, window.t_last_refused if window else None, old_sids, after, horizon, config.thresholds.give_up_after)
    if window is not None and not old_sids and not [ex for ex in ns.exchanges if ex.t < trouble_t]:
        return Diagnosis(verdict=NOT_AFFECTED, evidence=["the namespace first appears after the restart"])
    diag = Diagnosis(verdict=UNKNOWN)
    diag.evidence.extend(window.evidence if window else [f"first failed exchange at {_rel(ctx, trouble_t)}"])
    _timing(ctx, diag)
    gen = _rebind(ctx)
    if gen is not None:
        diag.verdict, diag.signature = REBOUND, "new-session"
        diag.t_rebound = gen.first_ok_call_t or gen.t_last
        diag.evidence.append(f"new session {gen.session_id} initialized at {_rel(ctx, gen.t_start)} with tools/list ({gen.tool_count if gen.tool_count is not None else '?'} tools)")
        return diag
    survivor = _survived(ctx)
    if survivor is not None:
        diag.verdict, diag.signature, diag.t_rebound = REBOUND, "session-survived", survivor.t
        diag.evidence.append(f"the old session {survivor.session_id} was still accepted at {_rel(ctx, survivor.t)}")
        return diag
    if window is None and not after:
        return Diagnosis(verdict=NOT_AFFECTED)
    last_activity = max([ex.t for ex in after] + [ctx.last_refusal or 0.0, trouble_t])
    silence = t_end - last_activity
    for rule in RULES:
        hit = rule(ctx)
        if hit is None:
            continue
        diag.evidence.extend(hit.evidence)
        if hit.definitive or silence >= config.thresholds.give_up_after:
            diag.verdict, diag.signature = STALLED, hit.signature
            diag.stall_point = stall_point(hit.stall) if hit.stall else None
            diag.explanation = EXPLANATION.get(hit.signature, "")
            diag.advice = ADVICE.get(hit.signature, "")
            if not hit.definitive:
                diag.evidence.append(f"nothing more from this namespace for {silence:.1f}s (longer than any known client retry schedule)")
        else:
            diag.signature = hit.signature
            diag.missing = f"looks like {hit.signature}, but the capture ends {silence:.1f}s after the last attempt; known clients retry for up to {config.thresholds.give_up_after:.0f}s"
            if window is not None and window.t_back is None:
                diag.missing += "; the server's return is not in the capture either"
        return diag
    if silence >= config.thresholds.give_up_after:
        diag.verdict, diag.signature = STALLED, "no-rebind"
        diag.explanation = EXPLANATION["no-rebind"]
        diag.advice = ADVICE["no-rebind"]
    else:
        diag.missing = f"the capture ends {silence:.1f}s after the namespace's last activity, before known retry schedules play out"
    return diag


def _timing(ctx: Context, diag: Diagnosis) -> None:
    diag.t_server_back = ctx.t_back
    if ctx.t_back is not None:
        later = [ex.t for ex in ctx.after if ex.t >= ctx.t_back]
        diag.t_first_try_after_back = later[0] if later else None
    diag.attempt_gaps = attempt_gaps(attempt_times(ctx))
    diag.schedule_match = match_schedule(diag.attempt_gaps) or ""


def storm_findings(ns: NamespaceLifecycle, min_reopens: int) -> list[str]:
    """reconnect-storm: GET streams that end cleanly and are reopened at a fixed interval."""
    gets = [ex.t for ex in ns.exchanges if ex.method == "GET" and ex.status == 200 and ex.outcome == R.COMPLETE]
    best: list[float] = []
    run: list[float] = []
    for gap in attempt_gaps(gets):
        if run and abs(gap - run[0]) <= max(0.25 * run[0], 0.2):
            run.append(gap)
        else:
            run = [gap]
        if len(run) > len(best):
            best = list(run)
    if len(best) + 1 < min_reopens:
        return []
    mean = sum(best) / len(best)
    return [f"reconnect-storm: {len(best) + 1} GET streams in a row closed cleanly and were reopened every {mean:.1f}s"]


def analyze_records(records: Iterable[R.Record], config: Config, sources: list[str], compact: bool = False) -> Analysis:
    """The whole analysis: records in, Analysis out."""
    builder = LifecycleBuilder(config, compact=compact)
    builder.feed_all(records)
    builder.finish()
    windows = builder.restarts.windows(builder.t0 or 0.0)
    namespaces = sorted(builder.namespaces.values(), key=lambda ns: ns.exchanges[0].t)
    for ns in namespaces:
        ns.diagnosis = diagnose(ns, windows, builder, config)
        ns.diagnosis.findings.extend(storm_findings(ns, config.thresholds.storm_min_reopens))
    exchanges = sum(ex.count for ns in namespaces for ex in ns.exchanges)  # merged routine calls included
    return Analysis(
        sources=sources,
        t0=builder.t0 or 0.0,
        t_last=builder.t_last,
        namespaces=namespaces,
        restarts=windows,
        connections={} if compact else connection_summary(builder),
        unattributed=builder.unattributed,
        warnings=builder.warnings,
        stats={"connections": len(builder.conns), "exchanges": exchanges, "non_mcp_requests": builder.skipped_requests},
    )
