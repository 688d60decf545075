"""A capture that lost packets (tcpdump drops under load) must not turn a missing request into a
proven stall: a real capture with the frame of one set-up request removed by `editcap`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


@pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap (Wireshark) is installed by scripts/setup.sh")
@pytest.mark.parametrize("method", ["tools/list", "notifications/initialized"])
def test_a_lost_set_up_request_is_no_proof_of_a_stall(tmp_path: Path, method: str) -> None:
    capture = REAL / "ts-healthy" / "capture.pcap"
    full = analyze_files([capture])
    sprint = next(ns for ns in full.namespaces if ns.name == "sprint")
    assert sprint.diagnosis.verdict == "rebound"
    new = sprint.generations[-1]
    request = next(ex for ex in sprint.exchanges if ex.generation == new.index and method in ex.rpc_methods)
    assert request.frame is not None
    cut = tmp_path / "lost.pcap"
    subprocess.run(["editcap", str(capture), str(cut), str(request.frame)], check=True, capture_output=True)

    ns = next(ns for ns in analyze_files([cut], full=False).namespaces if ns.name == "sprint")
    d = ns.diagnosis
    assert d.verdict == "rebound", (d.signature, d.evidence[-2:])
    assert any("the capture lost" in line and "bytes of client requests" in line for line in d.evidence), d.evidence
