"""Verdicts while a capture is still coming in (diagnose.snapshot, what `mcpsniff watch` shows).

The records of each real capture are fed one by one into one builder, with a snapshot every
few hundred records: the last snapshot equals `analyze` of the whole capture, no snapshot
contradicts what the clients really ended in (as with cut captures), and taking snapshots
changes nothing the builder goes on with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpsniff.analysis.diagnose import analyze_records, snapshot
from mcpsniff.analysis.lifecycle import LifecycleBuilder
from mcpsniff.api import read_file
from mcpsniff.config import Config

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CASES = ["ts-idle-get", "ts-hang", "ts-reinit-once", "sessionless-one-dies", "ts-fallback-stall", "py-healthy"]


def verdicts(analysis: object) -> dict[str, tuple[str, str, str]]:
    return {ns.name: (ns.diagnosis.verdict, ns.diagnosis.basis, ns.diagnosis.signature) for ns in analysis.namespaces}  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES)
def test_snapshots_converge_to_the_analysis_and_never_contradict_the_truth(case: str) -> None:
    truth = {name: ns["expected"] for name, ns in json.loads((REAL / case / "truth.json").read_text())["namespaces"].items()}
    records = list(read_file(REAL / case / "capture.pcap"))
    config = Config()
    builder = LifecycleBuilder(config, compact=True)
    taken = 0
    for i, rec in enumerate(records):
        builder.feed(rec)
        if i % 100 == 99:
            taken += 1
            for ns in snapshot(builder, config, [case]).namespaces:
                if truth[ns.name] == "rebound":
                    assert ns.diagnosis.verdict != "stalled", (case, i, ns.name, ns.diagnosis.inference_detail)
    assert taken >= 2
    final = verdicts(snapshot(builder, config, [case]))
    assert final == verdicts(analyze_records(iter(records), config, [case], compact=True))
    assert {name: v[0] for name, v in final.items()} == truth
