"""Machine-readable output: Analysis.to_dict() as JSON, described by schemas/analysis.schema.json."""

from __future__ import annotations

import json

from ..analysis.model import Analysis


def render_json(analysis: Analysis) -> str:
    return json.dumps(analysis.to_dict(), indent=1, ensure_ascii=False, default=str)
