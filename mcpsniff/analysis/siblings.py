"""Why this namespace and not its siblings: where a stalled namespace's story parted from
the namespaces of the same client that rebound.

Each namespace's restart is told as a few stages (what it was doing when the server
went down, what broke, what it tried while the server was down, how it came back, how
its new session went); the first stage whose kind differs from the rebound siblings'
is the divergence, said in one sentence (text, JSON and the HTML stall card show it).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import records as R
from .attempts import Fit
from .context import Context, activity, cut_by_downtime, failed, is_call
from .lifecycle import answered
from .model import REBOUND, Diagnosis, Divergence


@dataclass
class Stage:
    name: str  # "before", "trouble", "downtime", "return", "session"
    kind: str  # compared between namespaces
    phrase: str  # "had a tool call fail at +4.20s" (the subject is added by the caller)
    t: float | None = None


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def story(ctx: Context, diag: Diagnosis, fit: Fit | None) -> list[Stage]:
    rel = ctx.rel
    stages: list[Stage] = []
    idle = activity(ctx)
    cut = cut_by_downtime(ctx)
    back = ctx.t_back
    if idle is True:
        stream = "subscriptions/listen stream" if any("subscriptions/listen" in ex.rpc_methods for ex in ctx.ns.exchanges if ex.t < ctx.trouble_t) else "GET stream"
        stages.append(Stage("before", "idle", f"had no call going, only its {stream} open"))
    elif idle is False:
        stages.append(Stage("before", "busy", "were calling tools", ctx.trouble_t))
    else:
        stages.append(Stage("before", "quiet", "had made no recent call"))
    during = [ex for ex in ctx.after if back is None or ex.t < back]
    failed_calls = [ex for ex in during if is_call(ex) and failed(ex)]
    if failed_calls:
        stages.append(Stage("trouble", "call-failed", f"had a call fail at {rel(failed_calls[0].t)} ({failed_calls[0].label})", failed_calls[0].t))
    elif cut is not None and cut.method == "POST":
        stages.append(Stage("trouble", "call-failed", f"had a call cut at {rel(cut.t_end or cut.t)}", cut.t_end or cut.t))
    elif fit is not None and fit.anchor_refusal is not None:
        stages.append(Stage("trouble", "call-failed", f"had a call fail at {rel(fit.anchor_refusal.t)} (a refused connection)", fit.anchor_refusal.t))
    elif idle is False:
        stages.append(Stage("trouble", "call-failed", "had its next call fail (a refused connection: no request on the wire)", ctx.trouble_t))
    elif cut is not None:
        stages.append(Stage("trouble", "stream-cut", f"only had its {'GET stream' if cut.method == 'GET' else 'subscriptions/listen stream'} cut at {rel(cut.t_end or cut.t)}", cut.t_end or cut.t))
    else:
        stages.append(Stage("trouble", "nothing", "had nothing open that the restart broke"))
    tries = [got.t for _, got in fit.steps] if fit is not None else []
    tries += [ex.t for ex in during if failed(ex) and ex not in failed_calls[:1]]
    tries.sort()
    returned = [ex for ex in ctx.after if back is not None and ex.t >= back]
    if fit is not None and fit.kind == "stream":
        inside = all(t < back for t in tries) if back is not None else True
        where = "inside the downtime" if inside else "before it gave up"
        stages.append(Stage("downtime", "sdk-retries", f"had only its client SDK's {len(tries)} stream retr{'y' if len(tries) == 1 else 'ies'} ({', '.join(rel(t) for t in tries)}), which fell {where}", tries[-1] if tries else None))
    elif tries and not returned:
        stages.append(Stage("downtime", "stopped", f"tried {len(tries)} time(s) ({', '.join(rel(t) for t in tries[:6])}) and then stopped", tries[-1]))
    elif tries:
        stages.append(Stage("downtime", "retried", f"kept retrying ({len(tries)} attempt(s) while the server was down)", tries[-1]))
    else:
        stages.append(Stage("downtime", "none", "made no attempt while the server was down"))
    if not returned:
        stages.append(Stage("return", "silent", "sent nothing after the server came back" if back is not None else "sent nothing more"))
    else:
        first = returned[0]
        if "initialize" in first.rpc_methods and not first.session_id:
            stages.append(Stage("return", "reinit", f"re-initialized at {rel(first.t)}", first.t))
        elif first.session_id in ctx.old_sids:
            stages.append(Stage("return", "old-id", f"came back with its old session id at {rel(first.t)} ({first.status or 'no answer'})", first.t))
        else:
            stages.append(Stage("return", "other", f"came back at {rel(first.t)} with {first.label}", first.t))
    if diag.verdict == REBOUND:
        stages.append(Stage("session", "working", "got answers in the new session", diag.t_rebound))
    elif returned:
        last = [ex for ex in returned if ex.method == "POST"][-1:] or returned[-1:]
        ex = last[0]
        if ex.outcome in (R.OPEN_AT_END, "") and not answered(ex):
            stages.append(Stage("session", "hung", f"then waited on {ex.label} from {rel(ex.t)} on, which was never answered", ex.t))
        else:
            stages.append(Stage("session", "broken", f"then stopped after {ex.label} at {rel(ex.t)} ({diag.signature})", ex.t))
    return stages


def divergence(ctx: Context, contexts: dict[str, Context], diags: dict[str, Diagnosis], fits: dict[str, Fit], siblings: list[str]) -> Divergence | None:
    """The first stage where ``ctx``'s namespace differs from the siblings that rebound."""
    rebound = [name for name in siblings if diags.get(name) is not None and diags[name].verdict == REBOUND and name in contexts]
    if not rebound:
        return None
    mine = story(ctx, diags[ctx.ns.name], fits.get(ctx.ns.name))
    theirs = {name: story(contexts[name], diags[name], fits.get(name)) for name in rebound}
    for i, stage in enumerate(mine):
        others = [s[i] for s in theirs.values() if len(s) > i]
        if not others:
            break
        differing = [o for o in others if o.kind != stage.kind]
        if len(differing) * 2 < len(others) or not differing:
            continue  # most rebound siblings did the same here
        names = [name for name, s in theirs.items() if len(s) > i and s[i].kind != stage.kind]
        sib = differing[0]
        rest = [s[j].phrase for s in theirs.values() for j in range(i + 1, len(s)) if s[j].name == "return"][:1]
        sib_text = sib.phrase + (f" and {rest[0]}" if rest and sib.name != "return" else "")
        tail = "; nothing reconnected it" if mine[-1].kind == "silent" else ""
        return Divergence(stage.t if stage.t is not None else sib.t, names, f"{_names(names)} {sib_text}; {ctx.ns.name} {stage.phrase}{tail}")
    return None
