"""`mcpsniff diff` output: the per-namespace comparison as a table (text) or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from ..analysis.compare import Comparison, Side

COLUMNS = ("namespace", "verdict", "signature", "rebind after back", "schedule", "tools", "")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _pair(before: str, after: str) -> str:
    return before if before == after else f"{before or '-'} -> {after or '-'}"


def _tools(row_before: Side, row_after: Side) -> str:
    if not row_before.tools and not row_after.tools:
        return "-"
    return _pair(str(len(row_before.tools)), str(len(row_after.tools)))


def render_diff_text(comparison: Comparison, color: bool = False) -> str:
    rows = []
    for r in comparison.rows:
        mark = "WORSE" if r.worse else ("better" if r.better else "")
        rows.append((r.namespace, _pair(r.before.verdict, r.after.verdict), _pair(r.before.signature, r.after.signature), _pair(_secs(r.before.rebind_seconds), _secs(r.after.rebind_seconds)), _pair(_short(r.before.schedule), _short(r.after.schedule)), _tools(r.before, r.after), mark))
    widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) if rows else len(COLUMNS[i]) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        text = "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        if color and cells[-1] == "WORSE":
            return click.style(text, fg="red", bold=True)
        return text

    out = [f"BEFORE: {', '.join(comparison.before)}", f"AFTER:  {', '.join(comparison.after)}", "", line(COLUMNS)]
    out += [line(row) for row in rows]
    for r in comparison.rows:
        notes = [f"  - worse: {w}" for w in r.worse] + [f"  - better: {b}" for b in r.better]
        if r.before.revision != r.after.revision and r.before.verdict != "missing" and r.after.verdict != "missing":
            notes.append(f"  - revision: {r.before.revision or '-'} -> {r.after.revision or '-'}")
        if r.before.client != r.after.client and r.before.verdict != "missing" and r.after.verdict != "missing":
            notes.append(f"  - client: {r.before.client} -> {r.after.client}")
        if r.tools_missing or r.tools_added:
            notes.append(f"  - tools: missing after: {', '.join(r.tools_missing) or 'none'}; added after: {', '.join(r.tools_added) or 'none'}")
        if r.after.stall and r.worse:
            notes.append(f"  - stall point after: {r.after.stall}")
        if notes:
            out += ["", f"{r.namespace}:", *notes]
    out += ["", f"AFTER is worse for {len(comparison.worse)} namespace(s): {', '.join(r.namespace for r in comparison.worse)}" if comparison.worse else "AFTER is not worse for any namespace"]
    return "\n".join(out)


def _short(schedule: str) -> str:
    return schedule.split(" (")[0] if schedule else "-"


def render_diff_json(comparison: Comparison) -> str:
    data = asdict(comparison)
    data["worse"] = [r.namespace for r in comparison.worse]
    return json.dumps(data, indent=1, ensure_ascii=False)
