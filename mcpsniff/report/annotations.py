"""What ``mcpsniff annotate`` writes into a capture: one readable line per packet comment.

Pure: an ``Analysis`` in, ``Note``s out (``capture/annotate.py`` writes them as pcapng
``opt_comment``s).  A Wireshark user then sees the diagnosis on the packets themselves:
the stall point (namespace, verdict, signature, basis), each namespace's session starts
and rebinds, the server going down and coming back, and the failures (requests that got
an error or no answer, refused connections attributed to a namespace).

A note has a frame when the analysis knows it (requests, refused SYNs), else only a
time (a restart's first sign of trouble, the server's return, the FIN or RST that cut
an exchange): the writer puts it on the first packet at that time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.model import STALLED, Analysis, Exchange, NamespaceLifecycle
from ..analysis.rules import result_text

PREFIX = "mcpsniff: "
MAX_FAILURES = 50  # failure notes per namespace (a 404 loop can go on for thousands of requests)
_CUT = ("reset", "closed", "refused", "gap", "error")  # End outcomes of an exchange that did not finish


@dataclass(frozen=True)
class Note:
    """One packet comment: on ``frame`` (1-based), or when None on the first packet at ``t``."""

    frame: int | None
    t: float
    text: str


def annotations(analysis: Analysis) -> list[Note]:
    """Every note for the capture, in time order (the stall point first among notes of one packet)."""
    notes: list[tuple[int, Note]] = []  # (rank within one packet, note)
    for i, w in enumerate(analysis.restarts, start=1):
        server = f"server {w.server}" if w.server else "the server"
        why = f": {w.evidence[0]}" if w.evidence else ""
        notes.append((1, Note(None, w.t_down, f"{PREFIX}{server} goes down (restart {i}){why}")))
        if w.t_back is not None:
            notes.append((1, Note(None, w.t_back, f"{PREFIX}{server} is back (restart {i}): first connection accepted after {w.t_back - w.t_down:.2f}s down")))
    for ns in analysis.namespaces:
        notes.extend(_namespace(ns, analysis))
    notes.sort(key=lambda rn: (rn[1].t, rn[1].frame or 0, rn[0]))
    return [note for _, note in notes]


def _namespace(ns: NamespaceLifecycle, analysis: Analysis) -> list[tuple[int, Note]]:
    d = ns.diagnosis
    out: list[tuple[int, Note]] = []
    by_xid = {ex.xid: ex for ex in ns.exchanges}
    first_down = min((w.t_down for w in analysis.restarts), default=None)
    sp = d.stall_point
    if sp is not None:
        basis = d.basis + (f" ({d.inference})" if d.inference else "")
        verdict = d.verdict.upper() if d.verdict == STALLED else d.verdict
        where = f", {sp.display_filter}" if sp.display_filter else ""
        out.append((0, Note(sp.frame, sp.t, f"{PREFIX}{ns.name}: {verdict} here [{d.signature}]: {sp.describe(analysis.t0)}; basis {basis}{where}")))
    for gen in ns.generations:
        ex = by_xid.get(gen.initialize_xid or "")
        if ex is None or ex.frame is None:
            continue
        what = "client instance" if gen.kind == "instance" else "session"
        sid = f" {gen.session_id[:8]}" if gen.session_id else ""
        after = first_down is not None and gen.t_start >= first_down and gen.index > 1
        how = f" (rebind after the restart; verdict {d.verdict})" if after else ""
        out.append((2, Note(ex.frame, _t(ex), f"{PREFIX}{ns.name}: {what} {gen.index}{sid} starts with {ex.label}{how}")))
    failures = 0
    stall_frame = sp.frame if sp is not None else None
    for ex in ns.exchanges:
        if failures >= MAX_FAILURES or ex.frame is None or ex.frame == stall_frame or not _failed(ex):
            continue
        failures += 1
        if ex.error or (ex.status is not None and ex.status >= 400) or ex.t_end is None:
            out.append((3, Note(ex.frame, _t(ex), f"{PREFIX}{ns.name}: {ex.label} failed: {result_text(ex)}")))
        else:  # cut by its connection's end: on the packet that ended it (the first at that time)
            out.append((3, Note(None, ex.t_end, f"{PREFIX}{ns.name}: {ex.label} of frame {ex.frame} cut: {result_text(ex)}")))
    for at in d.attempts:
        if at.kind != "request" and at.frame is not None and at.frame != stall_frame:
            out.append((3, Note(at.frame, at.t, f"{PREFIX}{ns.name}: connection {at.result} ({at.attributed_by})")))
    return out


def _t(ex: Exchange) -> float:
    return ex.t_frame if ex.t_frame is not None else ex.t


def _failed(ex: Exchange) -> bool:
    """An error status or classification, or an exchange its connection's end cut (a call left
    unanswered, a stream the restart closed)."""
    return bool(ex.error) or (ex.status is not None and ex.status >= 400) or ex.outcome in _CUT
