"""The real captures (official SDK clients and server, tcpdump on lo): verdicts must match truth.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CASES = sorted(p.name for p in REAL.iterdir() if (p / "capture.pcap").exists())


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[dict, object]:
    folder = REAL / request.param
    truth = json.loads((folder / "truth.json").read_text())
    return truth, analyze_files([folder / "capture.pcap"])


def test_every_namespace_matches_truth(case: tuple[dict, object]) -> None:
    truth, analysis = case
    got = {ns.name: ns.diagnosis.verdict for ns in analysis.namespaces}
    want = {name: ns["expected"] for name, ns in truth["namespaces"].items()}
    assert got == want


def test_restart_window_matches_server_log(case: tuple[dict, object]) -> None:
    truth, analysis = case
    assert len(analysis.restarts) == 1
    window = analysis.restarts[0]
    restart = truth["restart"]
    # The server stopped at server_stopped_at and was listening again before server_ready_at.
    assert restart["server_stopped_at"] - 1 <= window.t_down <= restart["server_started_at"]
    assert window.t_back is not None and window.t_back >= restart["server_started_at"]


def test_stalled_namespaces_are_pinpointed(case: tuple[dict, object]) -> None:
    truth, analysis = case
    for ns in analysis.namespaces:
        expected = truth["namespaces"][ns.name]
        if expected["expected"] == "stalled":
            d = ns.diagnosis
            assert d.signature == "stale-session-loop"
            assert d.stall_point is not None and d.stall_point.target == f"/{ns.name}/mcp"
            assert d.stall_point.result.startswith("404")
            assert d.stall_point.frame is not None
        else:
            assert ns.diagnosis.stall_point is None
            assert len(ns.generations) >= 2  # the original session and the new one
