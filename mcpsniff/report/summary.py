"""summary.json of ``mcpsniff ci`` and ``mcpsniff check --json``: the gate's verdicts, small and redacted.

Meant for scripts and dashboards that want "which namespace failed and why"
without reading the whole analysis (``mcpsniff analyze --format json`` has that).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..analysis.gate import GateResult
from ..analysis.model import Analysis
from ..config import Config
from ..errors import BadInputError
from .har import mcpsniff_version
from .redact import Redactor

SUMMARY_VERSION = 1


def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 3)


def gate_summary(analysis: Analysis, gate: GateResult, config: Config | None = None, **extra: Any) -> dict[str, Any]:
    """The document (``extra`` keys are added at the top level, e.g. the CI command)."""
    text = Redactor(config).text
    namespaces = {}
    for r in gate.results:
        namespaces[r.name] = {
            "verdict": r.verdict, "passed": r.passed, "checked": r.checked, "message": text(r.message), "signature": r.signature,
            "stall_point": text(r.stall) or None, "server_back": _rel(r.t_back, analysis.t0),
            "rebind_seconds": None if r.rebind_seconds is None else round(r.rebind_seconds, 3),
        }
    return {
        "version": SUMMARY_VERSION,
        "mcpsniff": mcpsniff_version(),
        **extra,
        "gate": {"rule": gate.rule.describe(), "require": gate.rule.require, "within": gate.rule.within, "passed": gate.passed, "problems": gate.problems},
        "namespaces": namespaces,
        "stalled": [ns.name for ns in analysis.stalled],
        "restarts": [{"down": _rel(w.t_down, analysis.t0), "back": _rel(w.t_back, analysis.t0), "refused": w.refused} for w in analysis.restarts],
        "sources": [text(s) for s in analysis.sources],
        "t0": analysis.t0,
        "warnings": [text(w) for w in analysis.warnings[:50]],
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    try:
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write: {exc.strerror or exc}") from None
