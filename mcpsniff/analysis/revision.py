"""Which protocol revision a namespace speaks, and its 2026-07-28 client instances.

- 2025-era sessions: ``initialize`` mints an ``Mcp-Session-Id`` that every later request
  carries (lifecycle.build_generations splits those into sessions);
- 2026-07-28 sessionless: every request carries its protocol version (header and
  ``params._meta``), there is no session: the history is told as client *instances*,
  each starting at a ``server/discover`` or at the first request after a transport error
  or a restart;
- negotiated fallback: a client that speaks both probed with ``server/discover``, an older
  server answered 4xx (the Python 1.x server: 400 "Missing session ID", with a throwaway
  session id nobody uses), and the client went on 2025-style with ``initialize``.

Pure: exchanges in, labels and instances out.
"""

from __future__ import annotations

from .. import records as R
from .conformance import modern
from .lifecycle import PROBE_REJECTED, answered
from .model import FALLBACK, INSTANCE, MIXED, SESSIONLESS, SESSIONS, Exchange, Generation

LISTEN = "subscriptions/listen"
DISCOVER = "server/discover"


def is_modern(ex: Exchange) -> bool:
    """A request of the sessionless revision (the probe of a client that then fell back included)."""
    return modern(ex.protocol)


def revision_of(exchanges: list[Exchange], t0: float) -> tuple[str, str]:
    """(revision, probe description) of a namespace."""
    probes = [ex for ex in exchanges if ex.error == PROBE_REJECTED]
    sessions = any("initialize" in ex.rpc_methods or ex.session_id for ex in exchanges)
    spoken = any(is_modern(ex) and ex.error != PROBE_REJECTED for ex in exchanges)
    probe = ""
    if probes:
        first = probes[0]
        minted = f", minting a throwaway session id {first.new_session_id[:12]}" if first.new_session_id else ""
        probe = f"server/discover (MCP-Protocol-Version {first.protocol}) answered {first.status}{minted} at +{first.t - t0:.2f}s; then initialize" + (f" ({len(probes)} probes in all, one per client)" if len(probes) > 1 else "")
    if spoken and sessions:
        return MIXED, probe
    if spoken:
        return SESSIONLESS, probe
    if probes and sessions:
        return FALLBACK, probe
    if sessions:
        return SESSIONS, probe
    return "", probe


def build_instances(exchanges: list[Exchange], breaks: list[float], first_index: int) -> list[Generation]:
    """Client instances of the sessionless requests (see the module docstring)."""
    gens: list[Generation] = []
    current: Generation | None = None
    broken = False  # the last request ended in a transport error
    pending_breaks = sorted(breaks)
    for ex in exchanges:
        if not is_modern(ex) or ex.error == PROBE_REJECTED:
            continue
        crossed = bool(pending_breaks) and ex.t >= pending_breaks[0]
        while pending_breaks and ex.t >= pending_breaks[0]:
            pending_breaks.pop(0)
        if current is None or DISCOVER in ex.rpc_methods or broken or crossed:
            current = Generation(index=first_index + len(gens), session_id=None, t_start=ex.t, kind=INSTANCE, revision=ex.protocol)
            gens.append(current)
        broken = ex.status is None and ex.outcome in (R.RESET, R.CLOSED, R.REFUSED, R.ERROR)
        ex.generation = current.index
        current.t_last = max(current.t_last or ex.t, ex.t_end or ex.t)
        if DISCOVER in ex.rpc_methods and current.initialize_xid is None:
            current.initialize_xid = ex.xid
        elif "tools/list" in ex.rpc_methods and ex.ok and answered(ex) and current.tools_list_xid is None:
            current.tools_list_xid, current.tool_count = ex.xid, ex.tool_count
        elif LISTEN in ex.rpc_methods and ex.status == 200:
            current.streams.append((ex.t_response or ex.t, ex.t_end, ex.xid))
        elif ex.ok and answered(ex) and ex.method == "POST" and current.first_ok_call_t is None and DISCOVER not in ex.rpc_methods:
            current.first_ok_call_t = ex.t_end or ex.t_response
    return gens
