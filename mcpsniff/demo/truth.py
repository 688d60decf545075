"""What each demo client itself ended in, from its own JSON-lines log (never from mcpsniff).

Every client host of the demo writes the same log shape (``{"t", "ns", "event", "detail"}``
per line): the Python SDK 1.x clients (``clients.py``), the TS SDK 1.32 host
(``ts/host.mjs``), the mcp 2.x host (``modern/clients.py``) and the TS SDK 2.4 host
(``ts/host2.mjs``).  The 2.x hosts also say in each ``connected`` event which protocol
revision the connection speaks (``era``): ``2026-07-28 sessionless``, ``negotiated
fallback`` (a ``server/discover`` probe refused by a 1.x server, then a 2025 session) or
``2025-era sessions``; the 1.x hosts only speak 2025-era sessions.

A namespace *rebound* when its log has, after the server was back, a successful tool call
in a client generation that listed its tools (for the 1.x hosts: a generation after the
first, i.e. a new session; a sessionless 2.x client may go on with the same ``Client``),
or, for a client that only listens (``listen-only``/``listen-dies``), a
``subscriptions/listen`` stream opened again.  Else it *stalled*; ``hung`` when a call was
still pending (``HUNG_AFTER`` s or more) when the client stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import NAMESPACES

SESSIONS, SESSIONLESS, FALLBACK = "2025-era sessions", "2026-07-28 sessionless", "negotiated fallback"
HUNG_AFTER = 5.0  # s: a call still pending this long when the client stopped is a hung call
LISTEN_ONLY = {"listen-only", "listen-dies"}  # mcp 2.x host: no calls, only a subscriptions/listen stream
# 2.x host policy -> signature when the namespace rebound / stalled (the client's own account)
MODERN_SIGNATURES: dict[str, tuple[str, str]] = {
    "rebuild": ("rebuilt-client", "client-gave-up"),
    "dies": ("rebuilt-client", "client-died"),
    "listen-only": ("re-listened", "subscription-not-reissued"),
    "listen-dies": ("re-listened", "subscription-not-reissued"),
    # TS 2.4 host: the same Client keeps calling; a sessionless client needs nothing else
    "keep": ("calls-resumed-listen-not-reissued", "stalled"),
    "relisten": ("calls-resumed-relistened", "stalled"),
}


def read_events(*paths: Path) -> list[dict[str, Any]]:
    """The clients' JSON-lines log(s), merged by time (a partial last line is skipped)."""
    events = []
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if len(paths) > 1:
        events.sort(key=lambda ev: ev.get("t", 0))
    return events


def _starts(events: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per namespace its host's ``client`` and ``policy``, from the ``start`` lines (one per host process)."""
    out: dict[str, dict[str, str]] = {}
    for ev in events:
        if ev.get("event") == "start":
            detail = ev.get("detail", {})
            for ns, policy in (detail.get("policies") or {}).items():
                out[ns] = {"client": str(detail.get("client", "unknown")), "policy": str(policy)}
    return out


def revision_of(events: list[dict[str, Any]], ns: str) -> str:
    """The revision the namespace's client last connected with (its own ``era``; 1.x hosts: sessions)."""
    eras = [ev["detail"]["era"] for ev in events if ev.get("ns") == ns and ev.get("event") == "connected" and ev.get("detail", {}).get("era")]
    return eras[-1] if eras else SESSIONS


def _modern(events: list[dict[str, Any]]) -> set[str]:
    """Namespaces run by a 2.x host (it names the revision of each connection)."""
    return {ev.get("ns", "") for ev in events if ev.get("event") == "connected" and "era" in ev.get("detail", {})}


def first_ok_after(events: list[dict[str, Any]], restarted_at: float) -> dict[str, float]:
    """Per namespace the time of its client's first success after ``restarted_at`` (see the module doc)."""
    modern, starts = _modern(events), _starts(events)
    listed: dict[str, set[int]] = {ns: set() for ns in NAMESPACES}
    first: dict[str, float] = {}
    for ev in events:
        ns, detail, kind, t = ev.get("ns"), ev.get("detail", {}), ev.get("event"), ev.get("t", 0)
        if ns not in listed:
            continue
        gen = detail.get("gen") or 0
        if kind == "tools_listed":
            listed[ns].add(gen)
        if t <= restarted_at or ns in first:
            continue
        if starts.get(ns, {}).get("policy") in LISTEN_ONLY:
            ok = kind == "listen_open"
        else:
            ok = kind == "call_ok" and gen in listed[ns] and (ns in modern or gen > 1)
        if ok:
            first[ns] = t
    return first


def client_truth(events: list[dict[str, Any]], restarted_at: float) -> dict[str, str]:
    """Per namespace ``rebound`` or ``stalled`` (see the module doc)."""
    first = first_ok_after(events, restarted_at)
    return {ns: "rebound" if ns in first else "stalled" for ns in NAMESPACES}


def summary_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-namespace part of the clients' ``summary`` lines, one per host process ({} if none)."""
    out: dict[str, Any] = {}
    for ev in events:
        if ev.get("event") == "summary":
            out.update(ev.get("detail", {}).get("namespaces", {}) or {})
    return out


def client_outcomes(events: list[dict[str, Any]], restarted_at: float) -> dict[str, str]:
    """``client_truth`` plus ``hung``: a namespace whose call was still pending (at least
    ``HUNG_AFTER`` s, e.g. a tool that never answers) when the client stopped."""
    truth = client_truth(events, restarted_at)
    for ns, row in summary_of(events).items():
        if ns in truth and (row.get("state") == "hung" or any(p.get("waiting_s", 0) >= HUNG_AFTER for p in row.get("pending") or [])):
            truth[ns] = "hung"
    return truth


def client_signature(events: list[dict[str, Any]], ns: str, policy: str, outcome: str, stateless: bool = False) -> str:
    """A short label of what the client of ``ns`` did, from its own log (not from the wire)."""
    evs = [ev for ev in events if ev.get("ns") == ns]
    names = {ev.get("event") for ev in evs}
    messages = [str(ev.get("detail", {}).get("message", "")) for ev in evs if ev.get("event") in ("sdk_error", "sdk_log")]
    if outcome == "hung":
        return "hung-call"
    if policy in MODERN_SIGNATURES:
        good, bad = MODERN_SIGNATURES[policy]
        if revision_of(events, ns) != SESSIONLESS:
            good = "new-session" if good == "rebuilt-client" else good  # a 2025 session (or fallback) re-initialized
            bad = "stale-session-404-loop" if policy == "keep" else bad  # the same Client keeps its dead session id
        return good if outcome == "rebound" else bad
    if outcome == "rebound":
        return "stateless-reinit" if stateless else "new-session"
    if "gave_up" in names:
        if policy == "reinit-once":
            return "reinit-once-gave-up"
        if policy == "give-up":
            return "retries-exhausted"
        return "backoff-gave-up"
    if policy == "idle":
        gave_up = any("maximum reconnection attempts" in m.lower() or "max reconnection attempts" in m.lower() for m in messages)
        get_404 = any(ev.get("event") == "sdk_error" and ev.get("detail", {}).get("code") == 404 and "Failed to open SSE stream" in str(ev.get("detail", {}).get("message")) for ev in evs)
        if gave_up:
            return "idle-get-404-gave-up" if get_404 else "idle-get-retries-exhausted"
        return "idle-no-calls"
    if policy == "stale":
        return "stale-session-404-loop"
    if policy == "no-relist":
        return "tools-never-relisted"
    return "stalled"


def listen_reissued(events: list[dict[str, Any]], ns: str, stopped_at: float, restarted_at: float) -> bool | None:
    """Whether a ``subscriptions/listen`` stream open before the restart was opened again after it
    (None: the namespace had none)."""
    opened = [ev.get("t", 0) for ev in events if ev.get("ns") == ns and ev.get("event") == "listen_open"]
    if not any(t < stopped_at for t in opened):
        return None
    return any(t > restarted_at for t in opened)


def truth_document(scenario: Any, events: list[dict[str, Any]], outcomes: dict[str, str], restart: dict[str, float], port: int, mode: str, proxy_port: int | None = None) -> dict[str, Any]:
    """truth.json, in the shape of the shared real captures' truth.json (``scenario``: a run.Scenario)."""
    starts = _starts(events)
    ready = restart.get("server_ready_at", 0.0)
    first = first_ok_after(events, ready)
    clients = sorted({row["client"] for row in starts.values()})
    doc: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "port": port,
        "client": " + ".join(clients) if clients else "unknown",
        "mode": mode,
        "restart": {k: restart[k] for k in ("server_stopped_at", "server_started_at", "server_ready_at") if k in restart},
        "namespaces": {
            ns: {
                "expected": "rebound" if outcomes.get(ns) == "rebound" else "stalled",
                "signature": client_signature(events, ns, scenario.policy(ns), outcomes.get(ns, "stalled"), scenario.stateless),
                "revision": revision_of(events, ns),
                "client": starts.get(ns, {}).get("client", "unknown"),
                "policy": scenario.policy(ns),
                "first_ok_after_restart": first.get(ns),
                "listen_reissued": listen_reissued(events, ns, restart.get("server_stopped_at", ready), ready),
            }
            for ns in NAMESPACES
        },
    }
    if proxy_port is not None:
        doc["proxy_port"] = proxy_port
    return doc
