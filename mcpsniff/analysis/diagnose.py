"""Per-namespace verdicts: rebound / stalled / not-affected / unknown, and why.

In four passes over the namespaces:

1. each namespace gets its context: the restart it is judged against, when its own
   trouble began, its client (analysis/clients.py) and that client's known behaviour;
2. the refused connections of each restart are attributed to namespaces by fitting
   their known retry schedules (analysis/attempts.py);
3. what the wire proves is decided: a new session that works (``rebound``), the old
   one still accepted (a stateless server), or a signature rule (rules.py) whose hit
   is definitive; the rest is decided by inference.py (schedule exhausted, siblings
   alive, a hung request, silence), each verdict saying its ``basis``;
4. every stalled namespace is compared with the siblings that rebound (siblings.py)
   and matched against known public reports (knownbugs.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .. import records as R
from ..config import Config
from . import inference
from .attempts import Fit, Plan, Refusal, attribute
from .catalog import drift_findings, session_catalogs
from .clients import behaviour
from .context import Context, activity, call_period, cut_by_downtime, failed, is_call
from .knownbugs import known_reports
from .lifecycle import SETUP_METHODS, LifecycleBuilder, answered, build_generations, connection_summary
from .model import (
    HUNG,
    INFERRED,
    MIXED,
    NOT_AFFECTED,
    PROVEN,
    REBOUND,
    SCHEDULE_EXHAUSTED,
    SIBLINGS_ALIVE,
    SESSIONLESS,
    SILENCE,
    STALLED,
    UNKNOWN,
    Analysis,
    Attempt,
    Diagnosis,
    Exchange,
    Generation,
    NamespaceLifecycle,
    RestartWindow,
)
from .revision import DISCOVER, LISTEN, build_instances, is_modern, revision_of
from .rules import RULES, SESSIONLESS_RULES, Hit, attempt_times, fit_attempts, result_text, rule_call_lost_after_rebind, rule_gave_up_while_down, stall_point
from .schedules import attempt_gaps, match_schedule
from .siblings import divergence
from .texts import ADVICE, EXPLANATION, NEXT_CAPTURE


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
    """The first new session that was set up (initialized, tools/list) and whose calls then worked.

    A set-up step that is not in the capture only because the capture lost client bytes
    meanwhile is not held against the session when its calls work.
    """
    for gen in ctx.new_generations():
        calls = [ex for ex in ctx.gen_exchanges(gen) if ex.method == "POST" and not SETUP_METHODS.intersection(ex.rpc_methods)]
        if gen.tools_list_xid is None or gen.initialized_xid is None:
            first_call = next((ex for ex in calls if not failed(ex) and "tools/list" not in ex.rpc_methods), None)
            if first_call is None or not ctx.lost_between(gen.t_start, first_call.t):
                continue
        last_failure = max((ex.t for ex in calls if failed(ex) and not ctx.in_flight(ex)), default=None)
        if last_failure is None or any(ex.t > last_failure and not failed(ex) for ex in calls):
            return gen
    return None


def _sessionless_rebind(ctx: Context) -> tuple[str, Exchange] | None:
    """Sessionless: after the restart the namespace's requests are answered again.

    A namespace that only held a subscriptions/listen stream is back when it opens one
    again; one that made calls, when its calls are answered (and the last one is not hung).
    """
    back = ctx.t_back
    later = [ex for ex in ctx.after if back is None or (ex.t_end or ex.t) >= back]  # answered once the server was back
    before = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t]
    if any(LISTEN in ex.rpc_methods for ex in before) and not any(is_call(ex) and "tools/list" not in ex.rpc_methods for ex in before):
        relisten = next((ex for ex in later if LISTEN in ex.rpc_methods and ex.status == 200), None)
        return ("listen-reissued", relisten) if relisten is not None else None
    calls = [ex for ex in later if is_call(ex)]
    good = [ex for ex in calls if not failed(ex)]
    if not good:
        return None
    last_failure = max((ex.t for ex in calls if failed(ex) and not ctx.in_flight(ex)), default=None)
    if last_failure is not None and not any(ex.t > last_failure for ex in good):
        return None
    rebuilt = any(DISCOVER in ex.rpc_methods and ex.ok for ex in ctx.after if ex.t <= good[0].t)
    return ("rebuilt-client" if rebuilt else "requests-resumed"), good[0]


def _sessionless_findings(ctx: Context) -> list[str]:
    """What a rebound sessionless namespace still lost: its listen stream, a request the restart broke."""
    out = []
    cut = cut_by_downtime(ctx)
    if cut is not None and LISTEN in cut.rpc_methods and not any(LISTEN in ex.rpc_methods and ex.status == 200 for ex in ctx.after):
        out.append(f"subscription-not-reissued: its subscriptions/listen stream was cut at {ctx.rel(cut.t_end or cut.t)} and never opened again; its calls work, but server notifications (list_changed, ...) no longer reach it")
    for ex in ctx.ns.exchanges:
        if ex.t < ctx.trouble_t and is_call(ex) and ex.outcome in (R.CLOSED, R.RESET) and not answered(ex) and (ex.t_end or ex.t) >= ctx.trouble_t - 1.0:
            if not any(later.rpc_methods == ex.rpc_methods and later.mcp_name == ex.mcp_name for later in ctx.after):
                out.append(f"request-not-reissued: {ex.label}{' ' + ex.mcp_name if ex.mcp_name else ''} was cut at {ctx.rel(ex.t_end or ex.t)} and never sent again with a new id")
    return out


def _survived(ctx: Context) -> Exchange | None:
    """A stateless server (or one that kept its sessions) accepted the old session after the trouble."""
    for ex in ctx.after:
        if ex.session_id in ctx.old_sids and ex.ok and answered(ex) and ex.method == "POST" and (ctx.t_back is None or ex.t >= ctx.t_back) and not SETUP_METHODS.intersection(ex.rpc_methods):
            return ex
    return None


def _times(ex: Exchange, most: int = 6) -> list[float]:
    """Request times of an exchange; routine calls merged into one (compact analysis) spread evenly."""
    if ex.count <= 1 or ex.t_end is None:
        return [ex.t]
    step = (ex.t_end - ex.t) / (ex.count - 1)
    return [ex.t + i * step for i in range(min(ex.count, most))]


def _steady(times: list[float]) -> float | None:
    """The interval of attempts that repeat like clockwork (at least three, within 10%)."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    if len(gaps) < 2 or min(gaps) <= 0.2:
        return None
    mean = sum(gaps) / len(gaps)
    return mean if all(abs(g - mean) <= 0.1 * mean for g in gaps) else None


class Judge:
    """Holds every namespace's context while the passes run."""

    def __init__(self, builder: LifecycleBuilder, windows: list[RestartWindow], config: Config) -> None:
        self.builder = builder
        self.windows = windows
        self.config = config
        self.t0 = builder.t0 or 0.0
        self.contexts: dict[str, Context] = {}
        self.fits: dict[str, Fit] = {}
        self.unexplained: dict[str, list[Refusal]] = {}  # per namespace: its downtime's refusals no fit explains
        self.diags: dict[str, Diagnosis] = {}
        self.hits: dict[str, Hit | None] = {}
        answers: dict[str, list[float]] = defaultdict(list)
        for ns in builder.namespaces.values():
            for ex in ns.exchanges:
                if ex.t_response is not None:
                    answers[ex.server].append(ex.t_end if ex.count > 1 and ex.t_end is not None else ex.t_response)
        self.answers = {server: sorted(times) for server, times in answers.items()}

    # -- pass 1 ---------------------------------------------------------------------
    def context(self, ns: NamespaceLifecycle) -> Context | Diagnosis:
        window, horizon = _window_for(ns, self.windows)
        t_end = min(self.builder.t_last, horizon)
        if window is not None:
            trouble_t = window.t_down
        else:
            failures = [ex for ex in ns.exchanges if failed(ex) and not (ex.method == "GET" and ex.status == 200)]
            if not failures:
                return Diagnosis(verdict=NOT_AFFECTED, basis=PROVEN, evidence=["no restart and no failed exchange seen for this namespace"])
            trouble_t = failures[0].t
        old_sids = {g.session_id for g in ns.generations if g.t_start < trouble_t and g.session_id}
        if window is not None and not old_sids and not [ex for ex in ns.exchanges if ex.t < trouble_t]:
            return Diagnosis(verdict=NOT_AFFECTED, basis=PROVEN, evidence=["the namespace first appears after the restart"])
        after = [ex for ex in ns.exchanges if trouble_t <= ex.t < horizon]
        th = self.config.thresholds
        server = ns.exchanges[0].server
        before = [ex for ex in ns.exchanges if ex.t < trouble_t]
        modern = ns.revision == SESSIONLESS or (ns.revision == MIXED and is_modern((before or after or ns.exchanges)[-1]))
        return Context(ns, window, trouble_t, self.t0, t_end, window.t_last_refused if window else None, old_sids, after, horizon, th.give_up_after, th.hung_after, ns.client, behaviour(ns.client), self.answers.get(server, []), modern, self.builder.lost_requests)

    # -- pass 2 ---------------------------------------------------------------------
    def plan(self, ctx: Context) -> Plan:
        cut = cut_by_downtime(ctx)
        stream_cut = cut.t_end if cut is not None and cut.method == "GET" and cut.t_end is not None else None
        beh = ctx.behaviour
        delays, name = (beh.stream_retry, beh.stream_retry_name) if not ctx.modern else ((), "")  # no SDK re-issues a 2026 listen
        retry = next((tick.retry for tick in reversed(cut.events) if tick.retry is not None), None) if cut is not None else None
        if retry is not None and delays:
            delays, name = tuple(retry / 1000.0 for _ in delays), f"{name.split(' (')[0]} after the server's retry: {retry} ms"
        back = ctx.t_back
        visible = [t for ex in ctx.after if back is not None and ex.t >= back for t in _times(ex)]
        before = [ex for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t]
        period = call_period(before)
        calls = [ex.t_end or ex.t for ex in before if is_call(ex) and "tools/list" not in ex.rpc_methods]
        return Plan(
            ns=ctx.ns.name,
            trouble=ctx.trouble_t,
            address=ctx.client.address,
            cut=stream_cut,
            idle=activity(ctx),
            stream_delays=delays,
            stream_name=name,
            stream_gets=[ex for ex in ctx.after if ex.method == "GET"],
            first_visible=visible[0] if visible else None,
            next_call=max(calls) + period if calls and period is not None else None,
            period=_steady([t for ex in ctx.after if back is not None and ex.t >= back and is_call(ex) for t in _times(ex)][:6]),
        )

    def attribute(self) -> None:
        by_window: dict[int, list[Context]] = defaultdict(list)
        for ctx in self.contexts.values():
            if ctx.window is not None:
                by_window[id(ctx.window)].append(ctx)
        for group in by_window.values():
            window = group[0].window
            assert window is not None
            until = window.t_back if window.t_back is not None else group[0].t_end
            refusals = [
                Refusal(u["t"], u.get("frame"), str(u.get("client", "")).rpartition(":")[0], u["conn"], u["event"])
                for u in self.builder.unattributed
                if u["event"] == "refused" and (not window.server or u.get("server") == window.server) and window.t_down - 1.0 <= u["t"] <= until + 0.5
            ]
            plans = [self.plan(ctx) for ctx in group]
            within = {p.ns: max(2.0, 3 * (call_period([ex for ex in self.contexts[p.ns].ns.exchanges if ex.t < p.trouble]) or 0.7)) for p in plans}
            fits, left = attribute(plans, refusals, within)
            self.fits.update(fits)
            for ctx in group:
                self.unexplained[ctx.ns.name] = left

    # -- pass 3 ---------------------------------------------------------------------
    def proven_rebind(self, ctx: Context) -> Diagnosis | None:
        diag = Diagnosis(verdict=UNKNOWN)
        diag.evidence.extend(ctx.window.evidence if ctx.window else [f"first failed exchange at {ctx.rel(ctx.trouble_t)}"])
        if ctx.modern:
            back = _sessionless_rebind(ctx)
            if back is not None:
                diag.verdict, diag.signature, diag.basis = REBOUND, back[0], PROVEN
                diag.t_rebound = back[1].t_end or back[1].t
                diag.evidence.append(f"{back[1].label}{' ' + back[1].mcp_name if back[1].mcp_name else ''} answered at {ctx.rel(back[1].t)} after the restart" + (" by a new client instance (server/discover first)" if back[0] == "rebuilt-client" else ""))
                diag.findings.extend(_sessionless_findings(ctx))
                return diag
            if ctx.window is None and not ctx.after:
                return Diagnosis(verdict=NOT_AFFECTED, basis=PROVEN)
            return None
        gen = _rebind(ctx)
        if gen is not None and rule_call_lost_after_rebind(ctx) is None:
            diag.verdict, diag.signature, diag.basis = REBOUND, "new-session", PROVEN
            diag.t_rebound = gen.first_ok_call_t or gen.t_last
            if gen.tools_list_xid is not None and gen.initialized_xid is not None:
                diag.evidence.append(f"new session {gen.session_id} initialized at {ctx.rel(gen.t_start)} with tools/list ({gen.tool_count if gen.tool_count is not None else '?'} tools)")
            else:
                missing = "tools/list" if gen.tools_list_xid is None else "notifications/initialized"
                diag.evidence.append(f"new session {gen.session_id} initialized at {ctx.rel(gen.t_start)} and its calls were answered; its {missing} is not in the capture, but {ctx.lost_between(gen.t_start, gen.t_last or gen.t_start)}")
            return diag
        survivor = _survived(ctx)
        if survivor is not None:
            diag.verdict, diag.signature, diag.t_rebound, diag.basis = REBOUND, "session-survived", survivor.t, PROVEN
            diag.evidence.append(f"the old session {survivor.session_id} was still accepted at {ctx.rel(survivor.t)}")
            return diag
        if ctx.window is None and not ctx.after:
            return Diagnosis(verdict=NOT_AFFECTED, basis=PROVEN)
        return None

    def judge(self, ctx: Context, siblings: list[inference.Sibling]) -> Diagnosis:
        diag = Diagnosis(verdict=UNKNOWN)
        diag.evidence.extend(ctx.window.evidence if ctx.window else [f"first failed exchange at {ctx.rel(ctx.trouble_t)}"])
        fit = self.fits.get(ctx.ns.name)
        rules = SESSIONLESS_RULES if ctx.modern else RULES
        hit = next((h for h in (rule(ctx) for rule in rules) if h is not None), None) or rule_gave_up_while_down(ctx, fit)
        if hit is not None and ctx.modern and hit.signature in ("retries-exhausted-while-down", "backoff-gave-up", "reinit-once-gave-up"):
            hit.signature = "client-gave-up"
        self.hits[ctx.ns.name] = hit
        th = self.config.thresholds
        if (hit is None or not hit.definitive) and inference.pending_step(ctx, fit) is not None:
            self._unknown(ctx, diag, None, fit)  # still on its schedule: nothing to name yet
            return diag
        if hit is not None:
            diag.evidence.extend(hit.evidence)
            diag.signature = hit.signature
        why: tuple[str, str] | None = None
        if hit is not None and hit.definitive:
            self._stalled(diag, hit, PROVEN)
            return diag
        if hit is not None and hit.signature == "hung-request" and isinstance(hit.stall, Exchange) and ctx.hung(hit.stall):
            why = (HUNG, f"{hit.stall.label} at {ctx.rel(hit.stall.t)} was never answered in {ctx.waited(hit.stall):.1f}s (hung_after {th.hung_after:g}s) while the server kept answering others, and the namespace sent nothing after it")
        else:
            for name, text in (
                (SCHEDULE_EXHAUSTED, inference.exhausted(ctx, fit, th.schedule_margin)),
                (SIBLINGS_ALIVE, inference.siblings_alive(ctx, fit, siblings, th.sibling_margin, self._unexplained_after(ctx, fit))),
                (SILENCE, inference.silence(ctx, th.give_up_after) if hit is not None or ctx.window is not None else None),
            ):
                if text:
                    why = (name, text)
                    break
        if why is not None:
            if hit is None:
                hit = Hit("no-rebind", None, False, [])
                diag.signature = hit.signature
            diag.inference, diag.inference_detail = why
            self._stalled(diag, hit, INFERRED)
            return diag
        self._unknown(ctx, diag, hit, fit)
        return diag

    def _unexplained_after(self, ctx: Context, fit: Fit | None) -> int:
        """Unexplained refusals after the namespace's last known attempt (with no attempt known: after
        the first second of its trouble, when its own failed call is refused)."""
        since = fit.last_t + 0.06 if fit is not None else ctx.trouble_t + 0.9
        return sum(1 for r in self.unexplained.get(ctx.ns.name, ()) if r.t > since)

    def _stalled(self, diag: Diagnosis, hit: Hit, basis: str) -> None:
        diag.verdict, diag.signature, diag.basis = STALLED, hit.signature, basis
        diag.stall_point = stall_point(hit.stall) if hit.stall is not None else None
        diag.explanation = EXPLANATION.get(hit.signature, "")
        diag.advice = ADVICE.get(hit.signature, "")

    def _unknown(self, ctx: Context, diag: Diagnosis, hit: Hit | None, fit: Fit | None) -> None:
        quiet = ctx.t_end - ctx.silent_since()
        due = inference.pending_step(ctx, fit)
        if due is not None and fit is not None:
            diag.missing = f"still retrying: its attempts follow {fit.schedule} (step {len(fit.steps)} of {len(fit.delays)}), the next is due at {ctx.rel(due)}, after the capture ends"
        elif hit is not None and hit.signature == "hung-request" and isinstance(hit.stall, Exchange):
            call, waited = hit.stall, ctx.waited(hit.stall)
            others = ctx.answered_after(call.t + 0.5) - ctx.answered_after(call.t + waited)
            diag.missing = (f"looks like hung-request: {call.label} has waited {waited:.1f}s for its answer while the server answered {others} other request(s), "
                            f"but a call counts as hung only after {self.config.thresholds.hung_after:.0f}s (thresholds.hung_after): the capture ends before that")
        elif hit is not None:
            diag.missing = f"looks like {hit.signature}, but the capture ends {quiet:.1f}s after the last attempt, and neither a known schedule nor a sibling of the same client decides it; known clients retry for up to {self.config.thresholds.give_up_after:.0f}s"
        else:
            diag.missing = f"the capture ends {quiet:.1f}s after the namespace's last activity, before known retry schedules play out"
        if ctx.window is not None and ctx.window.t_back is None:
            diag.missing += "; the server's return is not in the capture either"
        diag.next_capture = NEXT_CAPTURE["retrying" if due is not None else ("down" if ctx.window is not None and ctx.window.t_back is None else "short")]

    # -- pass 4 ---------------------------------------------------------------------
    def attempts(self, ctx: Context) -> list[Attempt]:
        """Every try to get back: the requests on the wire up to the first one that worked after the
        server was back (an initialize, or a sessionless call), and the attributed refusals."""
        out = fit_attempts(self.fits.get(ctx.ns.name))
        back = ctx.t_back
        for ex in ctx.after:
            label = ex.label + (f" {ex.mcp_name}" if ex.mcp_name else "")  # Mcp-Name (2026-07-28) or the tool called
            out.append(Attempt(t=ex.t if ex.t_frame is None else ex.t_frame, kind="request", label=label, result=result_text(ex), attributed_by="request on the wire", frame=ex.frame, xid=ex.xid, conn=ex.conn))
            if ex.ok and answered(ex) and ("initialize" in ex.rpc_methods or (ctx.modern and (back is None or ex.t >= back))):
                break
        return sorted(out, key=lambda a: a.t)[:100]

    def timing(self, ctx: Context, diag: Diagnosis) -> None:
        diag.t_server_back = ctx.t_back
        if ctx.t_back is not None:
            later = [ex.t for ex in ctx.after if ex.t >= ctx.t_back]
            diag.t_first_try_after_back = later[0] if later else None
        fit = self.fits.get(ctx.ns.name)
        diag.attempt_gaps = attempt_gaps(attempt_times(ctx, fit))
        diag.schedule_match = (fit.schedule if fit is not None and len(fit.steps) >= 2 else "") or match_schedule(diag.attempt_gaps) or ""
        diag.attempts = self.attempts(ctx)


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


def _siblings(judge: Judge, namespaces: list[NamespaceLifecycle], ns: NamespaceLifecycle) -> list[inference.Sibling]:
    """Other namespaces of the same client process (same identity, or sharing its connections)."""
    mates = judge.builder.clients.pool_mates(ns.name)
    out = []
    for other in namespaces:
        if other is ns or other.name not in judge.contexts:
            continue
        if other.name not in mates and (not ns.client.key or other.client.key != ns.client.key):
            continue
        octx = judge.contexts[other.name]
        diag = judge.diags.get(other.name)
        back = octx.t_back
        returned = [ex.t for ex in octx.after if back is not None and ex.t >= back]
        fit = judge.fits.get(other.name)
        tries = [a.t for a in fit_attempts(fit)] + [ex.t for ex in octx.after if back is None or ex.t < back]
        out.append(inference.Sibling(other.name, diag is not None and diag.verdict == REBOUND, octx.trouble_t, returned[0] if returned else None, max(tries, default=None), len(fit.steps) if fit else 0))
    return out


def analyze_records(records: Iterable[R.Record], config: Config, sources: list[str], compact: bool = False) -> Analysis:
    """The whole analysis: records in, Analysis out."""
    builder = LifecycleBuilder(config, compact=compact)
    builder.feed_all(records)
    builder.finish()
    return judge_state(builder, config, sources)


def snapshot(builder: LifecycleBuilder, config: Config, sources: list[str]) -> Analysis:
    """The verdicts so far, while records are still coming in (``mcpsniff watch``).

    The builder keeps every record it was fed and goes on afterwards: exchanges still
    open count as open at the end of the capture so far only for this judgement, and
    sessions are split again from the exchanges, so nothing already read is read again.
    """
    saved = [(ex, ex.outcome, ex.error) for ex in builder.open.values()]
    for ex in builder.open.values():
        ex.outcome = ex.outcome or R.OPEN_AT_END
        if ex.status is None and not ex.error:
            ex.error = R.OPEN_AT_END
    try:
        for ns in builder.namespaces.values():
            ns.exchanges.sort(key=lambda e: e.t)
            ns.generations = build_generations(ns.exchanges)
        return judge_state(builder, config, sources)
    finally:
        for ex, outcome, error in saved:
            ex.outcome, ex.error = outcome, error


def judge_state(builder: LifecycleBuilder, config: Config, sources: list[str]) -> Analysis:
    """Verdicts for what ``builder`` holds (its sessions split: after ``finish()``, or by ``snapshot``)."""
    compact = builder.compact
    windows = builder.restarts.windows(builder.t0 or 0.0)
    namespaces = sorted(builder.namespaces.values(), key=lambda ns: ns.exchanges[0].t)
    t0 = builder.t0 or 0.0
    for ns in namespaces:
        ns.client = builder.clients.identify(ns.name)
        ns.revision, ns.probe = revision_of(ns.exchanges, t0)
        if ns.revision in (SESSIONLESS, MIXED):
            ns.generations += build_instances(ns.exchanges, [w.t_down for w in windows], len(ns.generations) + 1)
    judge = Judge(builder, windows, config)
    for ns in namespaces:  # pass 1
        got = judge.context(ns)
        if isinstance(got, Diagnosis):
            judge.diags[ns.name] = got
        else:
            judge.contexts[ns.name] = got
    judge.attribute()  # pass 2
    for name, context in judge.contexts.items():  # pass 3: what the wire proves ...
        diag = judge.proven_rebind(context)
        if diag is not None:
            judge.diags[name] = diag
    for ns in namespaces:  # ... then the rules and inferences, siblings' verdicts known
        ctx = judge.contexts.get(ns.name)
        if ctx is not None and ns.name not in judge.diags:
            judge.diags[ns.name] = judge.judge(ctx, _siblings(judge, namespaces, ns))
    for ns in namespaces:  # pass 4
        ns.diagnosis = judge.diags[ns.name]
        ctx = judge.contexts.get(ns.name)
        if ctx is not None and ns.diagnosis.verdict != NOT_AFFECTED:
            judge.timing(ctx, ns.diagnosis)
        ns.diagnosis.findings.extend(storm_findings(ns, config.thresholds.storm_min_reopens))
        if ctx is not None:
            ns.diagnosis.findings.extend(drift_findings(ns, ctx.trouble_t, ctx.rel))
        else:
            session_catalogs(ns)
    for ns in namespaces:
        ctx = judge.contexts.get(ns.name)
        if ctx is not None and ns.diagnosis.verdict == STALLED:
            ns.diagnosis.divergence = divergence(ctx, judge.contexts, judge.diags, judge.fits, [s.name for s in _siblings(judge, namespaces, ns)])
        if ctx is not None and (ns.diagnosis.verdict == STALLED or ns.diagnosis.findings):
            ns.diagnosis.known_reports = known_reports(ns, ctx)
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
        conformance=builder.conformance.report(t0),
    )
