"""Public reports of clients that fail to rebind (known-client-bugs.md), matched on the wire.

A report is named as "matches the pattern of <reference>": the wire pattern is what
matches, not proof that the client is the one in the report.  When the client is
recognised and differs from the report's, the line says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .context import Context
from .model import NamespaceLifecycle
from .schedules import CLAUDE_CODE, TS_GET

Match = Callable[[NamespaceLifecycle, Context], bool]


@dataclass(frozen=True)
class Report:
    ref: str
    client: str  # the client family the report is about ("" for any)
    what: str  # the pattern, in a few words
    match: Match


def _sig(*names: str) -> Match:
    return lambda ns, ctx: ns.diagnosis.signature in names


def _stale(statuses: set[int], methods: set[str] | None = None) -> Match:
    def match(ns: NamespaceLifecycle, ctx: Context) -> bool:
        if ns.diagnosis.signature not in ("stale-session-loop", "resume-without-initialize"):
            return False
        stale = [ex for ex in ctx.after if ex.session_id in ctx.old_sids and ex.status in statuses]
        return bool(stale) and (methods is None or all(ex.method in methods for ex in stale))

    return match


def _fast_404(ns: NamespaceLifecycle, ctx: Context) -> bool:
    return ns.diagnosis.signature in ("resume-without-initialize", "call-lost-after-rebind") and any(ex.status == 404 and ex.t_response is not None and ex.t_response - ex.t < 0.05 for ex in ctx.after)


def _schedule(name: str) -> Match:
    return lambda ns, ctx: ns.diagnosis.signature in ("backoff-gave-up", "retries-exhausted-while-down") and ns.diagnosis.schedule_match == name


def _proxy_init(ns: NamespaceLifecycle, ctx: Context) -> bool:
    return ns.diagnosis.signature in ("non-retried-status", "reinit-once-gave-up") and any("initialize" in ex.rpc_methods and ex.status in (502, 503) for ex in ctx.after)


def _finding(name: str, family: str) -> Match:
    return lambda ns, ctx: ns.client.family == family and any(f.startswith(name) for f in ns.diagnosis.findings)


REPORTS: tuple[Report, ...] = (
    Report("anthropics/claude-code #8338, #9608, #27142, #50450, #60949, #62008", "claude-code", "keeps POSTing the old Mcp-Session-Id after a restart and gets 404 every time; no new initialize", _stale({404}, {"POST"})),
    Report("microsoft/vscode #253854", "vscode", "after a restart sends GET with the old session id, gets 404, gives up", _stale({404}, {"GET"})),
    Report("cursor/cursor #3640 (server side: PrefectHQ/fastmcp #3073)", "cursor", "the server answers 400 'No valid session ID provided' instead of 404; the client stays stuck", _stale({400})),
    Report("openai/codex #12869", "codex", "401 'Session not found' for the old session, never re-initialized", _stale({401})),
    Report("anthropics/claude-code #83404", "claude-code", "a 404 that arrives within ~50 ms is taken for a timeout; no re-initialize, the call is not re-sent", _fast_404),
    Report("anthropics/claude-code #94273", "claude-code", "re-initializes once after the failure; when that initialize fails too it stops for good", _sig("reinit-once-gave-up")),
    Report("anthropics/claude-code #55228, #58122", "claude-code", "5 reconnect attempts 1, 2, 4, 8, 16 s apart (31 s in all), then 'Max reconnection attempts (5) reached'", _schedule(CLAUDE_CODE)),
    Report("modelcontextprotocol/typescript-sdk #2098", "ts-sdk", "the GET stream gives up after its 2 retries (+1.0 s, +2.5 s) and nothing reopens it", _schedule(TS_GET)),
    Report("anthropics/claude-code #83147, #33779", "claude-code", "after a reconnect tools/list is never sent again", _sig("tools-never-relisted")),
    Report("modelcontextprotocol/typescript-sdk #1211, #949", "ts-sdk", "a GET reconnect answered 409 because the server still holds the old stream", _sig("get-conflict")),
    Report("github/copilot-cli #4466", "copilot", "a 502 on initialize marks the server failed for the whole session", _proxy_init),
    Report("modelcontextprotocol/python-sdk #3257, #3356", "python-sdk", "a GET stream that ends normally resets the retry counter: reopened every second forever", _finding("reconnect-storm", "python-sdk")),
    Report("cline/cline #12119", "cline", "a GET answered 200 and closed at once is reopened forever", _finding("reconnect-storm", "cline")),
)


def known_reports(ns: NamespaceLifecycle, ctx: Context) -> list[str]:
    out = []
    for report in REPORTS:
        if not report.match(ns, ctx):
            continue
        note = ""
        if report.client and ns.client.family not in ("unrecognised", report.client) and not (report.client == "ts-sdk" and ns.client.family == "claude-code"):
            note = f"; reported for {report.client}, seen here from {ns.client.label}"
        out.append(f"matches the pattern of {report.ref}: {report.what}{note}")
    return out
