"""Machine-readable output: Analysis.to_dict() as JSON, described by schemas/analysis.schema.json."""

from __future__ import annotations

from ..analysis.model import ANALYSIS_VERSION, Analysis
from . import jsonfast


def render_json(analysis: Analysis) -> str:
    """``json.dumps(analysis.to_dict(), indent=1, ensure_ascii=False, default=str)``, without the copy."""
    return jsonfast.dumps(analysis, {"version": ANALYSIS_VERSION})
