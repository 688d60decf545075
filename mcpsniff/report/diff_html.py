"""`mcpsniff diff BEFORE AFTER --html`: the comparison table and the two timelines, aligned.

One self-contained file built as the report is (``html.prepare``, ``html.assets``, the same
script and templates), under the same rules: both analyses are redacted by one Redactor (so
with ``share`` a host or session seen in both captures has one pseudonym), the comparison's
strings too; capture text reaches the markup only through jinja2's escaping and the script
only as escaped JSON; the strict CSP lets nothing but our script run and nothing load.

The timelines are two panes of the report's timeline over one time axis: t = 0 is each
capture's first restart (the server going down), or its start when it saw none, so zoom
and pan move both and the restarts stand one above the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..analysis.compare import Comparison, Row, Side
from ..analysis.model import Analysis
from ..config import Config
from ..errors import BadInputError
from .html import assets, environment, prepare
from .redact import Redactor, paused_gc

SIDES = (("BEFORE", "before-"), ("AFTER", "after-"))


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _short(schedule: str) -> str:
    return schedule.split(" (")[0] if schedule else ""


def _pair(before: str, after: str, present: tuple[bool, bool]) -> dict[str, Any]:
    """A cell: one value when both sides agree, else before → after (a side missing from a capture shows as –)."""
    b = before if present[0] else ""
    a = after if present[1] else ""
    return {"before": b or "–", "after": a or "–", "same": b == a}


def _origin(analysis: Analysis) -> float:
    """Where the timelines put t = 0: the first restart's server-down time, else the capture start."""
    return analysis.restarts[0].t_down if analysis.restarts else analysis.t0


def _stall_index(analysis: Analysis) -> dict[str, tuple[int, str | None]]:
    """Namespace name -> (its index in the embedded data, its stall point on the shared axis)."""
    origin = _origin(analysis)
    out: dict[str, tuple[int, str | None]] = {}
    for i, ns in enumerate(analysis.namespaces):
        sp = ns.diagnosis.stall_point
        out.setdefault(ns.name, (i, None if sp is None else f"t = {'+' if sp.t >= origin else '−'}{abs(sp.t - origin):.2f} s"))
    return out


def _row(row: Row, index: list[dict[str, tuple[int, str | None]]]) -> dict[str, Any]:
    b, a = row.before, row.after
    present = (b.verdict != "missing", a.verdict != "missing")

    def cell(get: Any) -> dict[str, Any]:
        return _pair(get(b), get(a), present)

    def stall(side: Side, i: int) -> dict[str, Any] | None:
        n, at = index[i].get(row.namespace, (None, None))
        return None if not side.stall or n is None else {"text": side.stall, "panel": i, "ns": n, "at": at}

    return {
        "name": row.namespace, "worse": row.worse, "better": row.better, "mark": "worse" if row.worse else "better" if row.better else "",
        "verdict": {"before": b.verdict, "after": a.verdict, "same": b.verdict == a.verdict},
        "signature": cell(lambda s: s.signature), "basis": cell(lambda s: s.basis), "revision": cell(lambda s: s.revision), "client": cell(lambda s: s.client),
        "rebind": _pair(_secs(b.rebind_seconds), _secs(a.rebind_seconds), (True, True)),
        "schedule": cell(lambda s: _short(s.schedule)), "schedule_title": " → ".join(x for x in (b.schedule, a.schedule) if x),
        "attempts": cell(lambda s: str(s.attempts) if s.attempts else ""),
        "tools": _pair(str(len(b.tools)) if b.tools else "", str(len(a.tools)) if a.tools else "", present),
        "tools_missing": row.tools_missing, "tools_added": row.tools_added,
        "stalls": [s for s in (stall(b, 0), stall(a, 1)) if s is not None],
    }


def render_diff_html(before: Analysis, after: Analysis, comparison: Comparison, config: Config | None = None, share: bool = False) -> str:
    """The diff page as one string; ``comparison`` is ``compare(before, after, ...)`` of the unredacted analyses."""
    with paused_gc():
        return _render(before, after, comparison, config, share)


def _render(before: Analysis, after: Analysis, comparison: Comparison, config: Config | None, share: bool) -> str:
    env = environment()
    csp, script, style = assets(env)
    redactor = Redactor(config, share)
    if share:  # every pseudonym known before either side is redacted: one name per host or session in both
        redactor.learn(before)
        redactor.learn(after)
    pages = [prepare(before, redactor), prepare(after, redactor)]
    safe: Comparison = redactor.value(comparison)  # namespace names, clients (hosts), signatures, stall points, tool names
    if share:
        safe.before = [os.path.basename(s) for s in safe.before]
        safe.after = [os.path.basename(s) for s in safe.after]
    index = [_stall_index(page["safe"]) for page in pages]
    rows = [_row(r, index) for r in safe.rows]
    sides = []
    for (label, prefix), page in zip(SIDES, pages):
        s = page["safe"]
        sides.append({
            "label": label, "prefix": prefix, "sources": s.sources, "started": page["started"], "duration": page["duration"], "restarts": page["restarts"],
            "verdicts": page["verdicts"], "data": page["data"], "bodies": page["bodies"], "exchanges": page["exchanges"],
            "origin": page["restarts"][0]["down"] if page["restarts"] else None,
            "pane": {"prefix": prefix, "label": label, "viewer": False, "align": True},
        })
    warnings = [f"{side['label']}: {w}" for side, page in zip(sides, pages) for w in page["safe"].warnings]
    worse = [r for r in rows if r["mark"] == "worse"]
    return env.get_template("diff.html").render(
        csp=csp, script=script, style=style, share=share, sides=sides, rows=rows, worse=worse, slower_than=comparison.slower_than,
        warnings=warnings, stats={},
    )


def write_diff_html(before: Analysis, after: Analysis, comparison: Comparison, path: Path, config: Config | None = None, share: bool = False) -> None:
    """Render the diff page and write it to ``path`` (BadInputError if it cannot be written)."""
    html = render_diff_html(before, after, comparison, config, share)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the HTML diff: {exc.strerror or exc}") from None
