"""Shared pieces for report tests: sample analyses and the real captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_synth import build_analysis, hostile_analysis

from mcpsniff.analysis.model import Analysis

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "data" / "real"
ARTIFACTS = REPO / "test-artifacts"
REAL_CAPTURES = sorted(p.name for p in REAL.iterdir() if (p / "capture.pcap").exists()) if REAL.exists() else []


@pytest.fixture
def sample() -> Analysis:
    return build_analysis()


@pytest.fixture
def hostile() -> Analysis:
    return hostile_analysis()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def truth(name: str) -> dict:
    return json.loads((REAL / name / "truth.json").read_text())


_cache: dict[str, Analysis] = {}


def real_analysis(name: str) -> Analysis:
    """The real capture analyzed by the engine (bodies kept, as for the HTML report)."""
    if name not in _cache:
        from mcpsniff.api import analyze_files

        _cache[name] = analyze_files([REAL / name / "capture.pcap"], full=True)
    return _cache[name]
