"""The terminal report: one row per namespace, then why each stalled namespace stalled."""

from __future__ import annotations

import textwrap

import click

from ..analysis.model import REBOUND, STALLED, UNKNOWN, Analysis, NamespaceLifecycle

COLORS = {REBOUND: "green", STALLED: "red", UNKNOWN: "yellow"}
COLUMNS = ("namespace", "verdict", "basis", "client", "revision", "sessions", "server back", "first try after", "stall point")
REVISION_SHORT = {"2025-era sessions": "2025", "2026-07-28 sessionless": "2026-07-28", "negotiated fallback": "fallback", "both revisions": "both"}
MAX_ATTEMPTS_SHOWN = 8


def _rel(t: float | None, t0: float) -> str:
    return "-" if t is None else f"+{t - t0:.2f}s"


def _row(ns: NamespaceLifecycle, analysis: Analysis) -> tuple[str, ...]:
    d = ns.diagnosis
    back = d.t_server_back
    if back is None:
        first_try = "-"
    elif d.t_first_try_after_back is None:
        first_try = "never"
    else:
        first_try = f"+{d.t_first_try_after_back - back:.2f}s"
    if d.stall_point is not None:
        stall = f"{d.stall_point.describe(analysis.t0)}  [{d.signature}]"
        if d.stall_point.display_filter:
            stall += f"  {d.stall_point.display_filter}"
    elif d.verdict == STALLED:
        stall = f"[{d.signature}]"
    elif d.verdict == UNKNOWN and d.missing:
        stall = f"unknown: {d.missing}"
    else:
        stall = "-"
    basis = d.basis + (f" ({d.inference})" if d.inference else "") if d.basis else "-"
    return (ns.name, d.verdict, basis, ns.client.family, REVISION_SHORT.get(ns.revision, ns.revision or "-"), str(len(ns.generations)), _rel(back, analysis.t0), first_try, stall)


def _client_line(ns: NamespaceLifecycle) -> str:
    c = ns.client
    what = c.label + (f" {c.version}" if c.version else "") + (f", host {c.host}" if c.host else "")
    how = "; ".join(c.recognised_by[:4])
    return f"  client: {what}" + (f" ({how})" if how else "")


def render_text(analysis: Analysis, color: bool = False) -> str:
    """The table, the restart windows, details for stalled/unknown namespaces and warnings."""
    rows = [_row(ns, analysis) for ns in analysis.namespaces]
    widths = [max([len(COLUMNS[i])] + [len(r[i]) for r in rows]) for i in range(len(COLUMNS) - 1)]
    lines = []

    def fmt(cells: tuple[str, ...], verdict: str | None = None) -> str:
        parts = [c.ljust(w) for c, w in zip(cells, widths)]
        if verdict and color and verdict in COLORS:
            parts[1] = click.style(parts[1], fg=COLORS[verdict], bold=verdict == STALLED)
        return "  ".join(parts + [cells[-1]]).rstrip()

    lines.append(fmt(COLUMNS))
    for row in rows:
        lines.append(fmt(row, row[1]))
    if not rows:
        lines.append("(no MCP traffic found)")
    for w in analysis.restarts:
        back = f"back at {_rel(w.t_back, analysis.t0)}" if w.t_back is not None else "not back before the capture ends"
        lines.append("")
        lines.append(f"server restart: down from {_rel(w.t_down, analysis.t0)}, {back}; " + "; ".join(w.evidence))
    for ns in analysis.namespaces:
        d = ns.diagnosis
        if d.verdict not in (STALLED, UNKNOWN) and not d.findings:
            continue
        lines.append("")
        title = f"{ns.name}: {d.verdict}" + (f" [{d.signature}]" if d.signature else "")
        lines.append(click.style(title, bold=True) if color else title)
        if d.explanation:
            lines.extend(textwrap.wrap(d.explanation, 100, initial_indent="  ", subsequent_indent="  "))
        lines.append(_client_line(ns))
        sp = d.stall_point
        if sp is not None and sp.frame is not None:
            where = f"; display filter: {sp.display_filter}" if sp.display_filter else ""
            lines.append(f"  in Wireshark: frame {sp.frame} at {_rel(sp.t, analysis.t0)}{where}")
        if ns.revision:
            lines.append(f"  revision: {ns.revision}" + (f" (probe: {ns.probe})" if ns.probe else ""))
        if d.basis:
            lines.append(f"  basis: {d.basis}" + (f" ({d.inference}): {d.inference_detail}" if d.inference else " (the wire shows it)"))
        for item in d.evidence:
            lines.append(f"  - {item}")
        if d.attempts:
            shown = d.attempts[-MAX_ATTEMPTS_SHOWN:]
            more = f" (the last {len(shown)} of {len(d.attempts)})" if len(d.attempts) > len(shown) else ""
            lines.append(f"  - attempts{more}:")
            for at in shown:
                frame = f" #{at.frame}" if at.frame is not None else ""
                how = "" if at.kind == "request" else f" [{at.attributed_by}]"
                lines.append(f"      {_rel(at.t, analysis.t0)}{frame} {at.label} -> {at.result}{how}")
        if d.attempt_gaps:
            match = f" ({d.schedule_match})" if d.schedule_match else ""
            lines.append(f"  - attempt gaps: {', '.join(f'{g:.2f}s' for g in d.attempt_gaps[:12])}{match}")
        for finding in d.findings:
            lines.append(f"  - finding: {finding}")
        if d.divergence is not None:
            lines.extend(textwrap.wrap(f"why this one: {d.divergence.text}", 100, initial_indent="  ", subsequent_indent="    "))
        for report in d.known_reports:
            lines.extend(textwrap.wrap(report, 100, initial_indent="  known report: ", subsequent_indent="    "))
        if d.missing:
            lines.append(f"  - missing evidence: {d.missing}")
        if d.next_capture:
            lines.append(f"  to decide: {d.next_capture}")
        if d.advice:
            lines.append(f"  advice: {d.advice}")
    for server, items in analysis.conformance.items():
        lines.append("")
        lines.append(f"conformance of {server}:")
        lines.extend(f"  - {item}" for item in items)
    if analysis.warnings:
        lines.append("")
        shown = analysis.warnings[:20]
        lines.extend(f"warning: {w}" for w in shown)
        if len(analysis.warnings) > len(shown):
            lines.append(f"warning: ... and {len(analysis.warnings) - len(shown)} more (see --format json)")
    return "\n".join(lines)
