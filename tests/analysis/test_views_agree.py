"""Every view of one proxied run agrees (real SDK clients -> mitmdump + addon -> real SDK server).

The run's capture.pcapng holds both hops: the client hop (the clients' requests to the
proxy, 502s while the server is down) and the server hop (the proxy's requests to the
server, refused connections while it is down); run.jsonl is the addon's record.  Each view
alone, and the pcap with both hops together, must give every namespace the same verdict,
basis, inference and signature, the verdict its client really ended in, and no doubled
sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
RUNS = sorted(p for p in REAL.iterdir() if (p / "proxied-truth.json").exists())


@pytest.mark.parametrize("folder", RUNS, ids=[p.name for p in RUNS])
def test_server_hop_client_hop_both_hops_and_jsonl_agree(folder: Path) -> None:
    truth = json.loads((folder / "proxied-truth.json").read_text())
    pcap = folder / "capture.pcapng"
    views = {
        "server hop": analyze_files([pcap], ports=[truth["port"]], full=False),
        "client hop": analyze_files([pcap], ports=[truth["proxy_port"]], full=False),
        "both hops": analyze_files([pcap], full=False),
        "run.jsonl": analyze_files([folder / "run.jsonl"], full=False),
    }
    told = {name: ns["expected"] for name, ns in truth["namespaces"].items()}
    seen = {}
    for view, analysis in views.items():
        got = {ns.name: (ns.diagnosis.verdict, ns.diagnosis.basis, ns.diagnosis.inference, ns.diagnosis.signature) for ns in analysis.namespaces}
        assert {name: v[0] for name, v in got.items()} == told, view
        seen[view] = got
    first = seen["server hop"]
    for view, got in seen.items():
        assert got == first, f"{view} differs from the server hop"
    sessions = {view: {ns.name: len(ns.generations) for ns in a.namespaces} for view, a in views.items()}
    assert sessions["both hops"] == sessions["server hop"]
    assert any("both hops of a proxy" in w for w in views["both hops"].warnings)
    # the client hop saw the proxy's 502s, not refused connections (tshark sees no RST there)
    client_hop = " ".join(views["client hop"].restarts[0].evidence)
    assert "a proxy answered" in client_hop and "502/503" in client_hop and "refused" not in client_hop.split("with 502/503")[0]
