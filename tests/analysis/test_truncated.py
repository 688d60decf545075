"""Real captures cut short on purpose: evidence may disappear, a verdict may not flip.

Each real capture in tests/data/real (official SDK clients and server, tcpdump on lo)
is cut with Wireshark's ``editcap -B`` at points from the server going down to the end
of the capture.  At every cut, a namespace whose clients really rebound must not be
``stalled``, and one that really stalled must not be ``rebound`` once the capture holds its
stall point (a client that rebound and then hung on a call was rebound until it hung): the
verdict may only fall back to ``unknown`` (or ``not-affected`` before the restart is in the
capture).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mcpsniff.analysis.context import IN_FLIGHT_GRACE
from mcpsniff.api import analyze_files

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CASES = sorted(p.name for p in REAL.iterdir() if (p / "capture.pcap").exists() and (p / "truth.json").exists())
CUTS = 14  # cut points per capture, spread from the restart to the end

pytestmark = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (Wireshark) is installed by scripts/setup.sh")


def cut_points(analysis: object) -> list[float]:
    """Absolute times: just after the restart began, around the server's return, then evenly to the end."""
    window = analysis.restarts[0]  # type: ignore[attr-defined]
    end = analysis.t_last  # type: ignore[attr-defined]
    points = {window.t_down + 0.5, window.t_down + 1.5, window.t_down + 3.0}
    if window.t_back is not None:
        points |= {window.t_back - 0.2, window.t_back + 0.5, window.t_back + 2.0, window.t_back + 5.0}
    step = (end - window.t_down) / CUTS
    points |= {window.t_down + i * step for i in range(1, CUTS)}
    return sorted(p for p in points if window.t_down < p < end)


@pytest.mark.parametrize("case", CASES)
def test_a_cut_capture_never_flips_a_verdict(case: str, tmp_path: Path) -> None:
    folder = REAL / case
    truth = {name: ns["expected"] for name, ns in json.loads((folder / "truth.json").read_text())["namespaces"].items()}
    full = analyze_files([folder / "capture.pcap"], full=False)
    assert {ns.name: ns.diagnosis.verdict for ns in full.namespaces} == truth
    stalls = {ns.name: ns.diagnosis.stall_point.t for ns in full.namespaces if ns.diagnosis.stall_point is not None}
    for t in cut_points(full):
        cut = tmp_path / "cut.pcap"
        subprocess.run(["editcap", "-B", f"{t:.6f}", "-F", "pcap", str(folder / "capture.pcap"), str(cut)], check=True, capture_output=True)
        analysis = analyze_files([cut], full=False)
        for ns in analysis.namespaces:
            verdict = ns.diagnosis.verdict
            where = f"{case} cut at +{t - full.t0:.2f}s: {ns.name} is {verdict} ({ns.diagnosis.signature}; {ns.diagnosis.inference_detail or ns.diagnosis.missing})"
            if truth[ns.name] == "rebound":
                assert verdict != "stalled", where
            elif analysis.t_last >= stalls.get(ns.name, full.t0) + IN_FLIGHT_GRACE:  # a call younger than that looks like any call
                assert verdict != "rebound", where


def test_a_call_cut_before_it_counts_as_hung_says_how_long_it_waited(tmp_path: Path) -> None:
    """ts-hang cut 5 s into sprint's unanswered call: not yet hung (hung_after 10 s), and the
    verdict says so with the wait and the threshold, not a retry schedule's story."""
    folder = REAL / "ts-hang"
    full = analyze_files([folder / "capture.pcap"], full=False)
    call = next(ns.diagnosis.stall_point for ns in full.namespaces if ns.name == "sprint")
    cut = tmp_path / "cut.pcap"
    subprocess.run(["editcap", "-B", f"{call.t + 5.0:.6f}", "-F", "pcap", str(folder / "capture.pcap"), str(cut)], check=True, capture_output=True)
    sprint = next(ns.diagnosis for ns in analyze_files([cut], full=False).namespaces if ns.name == "sprint")
    assert (sprint.verdict, sprint.signature) == ("unknown", "hung-request")
    waited = re.search(r"has waited (\d+\.\d)s for its answer", sprint.missing)
    assert waited and 4.0 <= float(waited.group(1)) <= 5.0 and "thresholds.hung_after" in sprint.missing, sprint.missing  # (to the last packet before the cut)
