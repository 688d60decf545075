"""The real captures (official SDK clients and servers, tcpdump on lo): every namespace gets the
verdict its client really ended in (truth.json, from the client's own log), with the basis,
signature, stall point and protocol revision an expert reads off the same bytes.

Each stall point was checked by hand against the capture (tshark) and the client log: a
request's frame is the one Wireshark shows the (reassembled) HTTP request in, its last
packet; a refused connection's frame is the SYN the client's own log places at that moment
(tests/analysis/test_wireshark_agrees.py asks tshark itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mcpsniff.analysis.model import FALLBACK, SESSIONLESS, SESSIONS
from mcpsniff.api import analyze_files

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CASES = sorted(p.name for p in REAL.iterdir() if (p / "capture.pcap").exists())


@dataclass(frozen=True)
class E:
    verdict: str
    basis: str
    inference: str
    signature: str
    stall: tuple[int, str] | None  # (frame, result)
    revision: str


def rebound(signature: str, revision: str) -> E:
    return E("rebound", "proven", "", signature, None, revision)


def stalled(inference: str, signature: str, stall: tuple[int, str] | None, revision: str) -> E:
    """``inference`` "PROVEN" for a stall the wire proves."""
    return E("stalled", "proven" if inference == "PROVEN" else "inferred", "" if inference == "PROVEN" else inference, signature, stall, revision)


EXPECTED: dict[str, dict[str, E]] = {
    "healthy-cc": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": rebound("new-session", SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "mixed-eras": {
        "ci-infra": rebound("new-session", SESSIONS),
        "dev-agents": rebound("rebuilt-client", SESSIONLESS),
        "sprint": rebound("new-session", SESSIONS),
        "tasks": rebound("rebuilt-client", SESSIONLESS),
    },
    "one-stale": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (372, "404 session-not-found"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "py-fallback": {
        "tasks": rebound("new-session", FALLBACK),
        "dev-agents": rebound("new-session", FALLBACK),
        "sprint": stalled("siblings-alive", "retries-exhausted-while-down", (143, "200, stream closed"), FALLBACK),
        "ci-infra": rebound("new-session", FALLBACK),
    },
    "py-healthy": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": rebound("new-session", SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "py-idle-get": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("schedule-exhausted", "backoff-gave-up", (518, "refused"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "py-mixed-long-loop": {  # sprint's 404s go on for 40 s: not evidence of a second restart
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": stalled("PROVEN", "tools-never-relisted", (2655, "200"), SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (446, "404 session-not-found"), SESSIONS),
        "ci-infra": stalled("siblings-alive", "retries-exhausted-while-down", (115, "200, stream closed"), SESSIONS),
    },
    "py-teardown-reset": {  # dev-agents' last call reset by the end of the run, after its 200 headers
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (433, "404 session-not-found"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "py-teardown-cut": {  # the last calls cut in the capture's last 0.1 s by the proxy stopping with it
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (556, "404 session-not-found"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "sessionless-graceful-listen": {
        "tasks": rebound("rebuilt-client", SESSIONLESS),
        "dev-agents": rebound("listen-reissued", SESSIONLESS),
        "sprint": stalled("siblings-alive", "subscription-not-reissued", (58, "200"), SESSIONLESS),
        "ci-infra": rebound("rebuilt-client", SESSIONLESS),
    },
    "sessionless-healthy": {
        "tasks": rebound("rebuilt-client", SESSIONLESS),
        "dev-agents": rebound("rebuilt-client", SESSIONLESS),
        "sprint": rebound("rebuilt-client", SESSIONLESS),
        "ci-infra": rebound("rebuilt-client", SESSIONLESS),
    },
    "sessionless-listen": {
        "tasks": rebound("rebuilt-client", SESSIONLESS),
        "dev-agents": rebound("listen-reissued", SESSIONLESS),
        "sprint": stalled("siblings-alive", "subscription-not-reissued", (58, "200, stream closed"), SESSIONLESS),
        "ci-infra": rebound("rebuilt-client", SESSIONLESS),
    },
    "sessionless-one-dies": {
        "tasks": rebound("rebuilt-client", SESSIONLESS),
        "dev-agents": rebound("rebuilt-client", SESSIONLESS),
        "sprint": stalled("siblings-alive", "client-gave-up", (124, "200, stream closed"), SESSIONLESS),
        "ci-infra": rebound("rebuilt-client", SESSIONLESS),
    },
    "ts-backoff-exhausted": {
        "tasks": stalled("schedule-exhausted", "backoff-gave-up", (362, "refused"), SESSIONS),
        "dev-agents": stalled("schedule-exhausted", "backoff-gave-up", (364, "refused"), SESSIONS),
        "sprint": stalled("schedule-exhausted", "backoff-gave-up", (366, "refused"), SESSIONS),
        "ci-infra": stalled("schedule-exhausted", "backoff-gave-up", (368, "refused"), SESSIONS),
    },
    "ts-fallback": {
        "tasks": rebound("new-session", FALLBACK),
        "dev-agents": rebound("new-session", FALLBACK),
        "sprint": rebound("new-session", FALLBACK),
        "ci-infra": rebound("new-session", FALLBACK),
    },
    "ts-fallback-stall": {
        "tasks": rebound("new-session", FALLBACK),
        "dev-agents": stalled("PROVEN", "stale-session-loop", (396, "404 session-not-found"), FALLBACK),
        "sprint": stalled("siblings-alive", "retries-exhausted-while-down", (134, "200, stream closed"), FALLBACK),
        "ci-infra": rebound("new-session", FALLBACK),
    },
    "ts-hang": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("hung", "hung-request", (488, "200, no JSON-RPC response"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-healthy": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": rebound("new-session", SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-idle-get": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("schedule-exhausted", "backoff-gave-up", (284, "refused"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-idle-get-fast": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (301, "404 session-not-found"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-one-stale": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("PROVEN", "stale-session-loop", (333, "404 session-not-found"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-reinit-once": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": stalled("siblings-alive", "reinit-once-gave-up", (329, "refused"), SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
    "ts-sessionless": {
        "tasks": rebound("rebuilt-client", SESSIONLESS),
        "dev-agents": rebound("requests-resumed", SESSIONLESS),
        "sprint": stalled("siblings-alive", "client-gave-up", (70, "200, stream closed"), SESSIONLESS),
        "ci-infra": rebound("requests-resumed", SESSIONLESS),
    },
    "ts-stateless": {
        "tasks": rebound("new-session", SESSIONS),
        "dev-agents": rebound("new-session", SESSIONS),
        "sprint": rebound("new-session", SESSIONS),
        "ci-infra": rebound("new-session", SESSIONS),
    },
}


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[str, dict, object]:
    folder = REAL / request.param
    truth = json.loads((folder / "truth.json").read_text())
    return request.param, truth, analyze_files([folder / "capture.pcap"], full=False)


def test_every_capture_has_expectations() -> None:
    assert sorted(EXPECTED) == CASES


def test_every_namespace_matches_what_its_client_ended_in(case: tuple[str, dict, object]) -> None:
    _, truth, analysis = case
    got = {ns.name: ns.diagnosis.verdict for ns in analysis.namespaces}  # type: ignore[attr-defined]
    assert got == {name: ns["expected"] for name, ns in truth["namespaces"].items()}


def test_basis_signature_stall_point_and_revision(case: tuple[str, dict, object]) -> None:
    name, _, analysis = case
    for ns in analysis.namespaces:  # type: ignore[attr-defined]
        d = ns.diagnosis
        stall = (d.stall_point.frame, d.stall_point.result) if d.stall_point is not None else None
        got = E(d.verdict, d.basis, d.inference, d.signature, stall, ns.revision)
        assert got == EXPECTED[name][ns.name], f"{name}/{ns.name}: {d.evidence[-2:]} {d.inference_detail}"


def test_revision_matches_the_clients_own_account(case: tuple[str, dict, object]) -> None:
    _, truth, analysis = case
    for ns in analysis.namespaces:  # type: ignore[attr-defined]
        told = truth["namespaces"][ns.name].get("revision")
        if told:
            assert ns.revision == told, ns.name


def test_restart_window_matches_server_log(case: tuple[str, dict, object]) -> None:
    _, truth, analysis = case
    assert len(analysis.restarts) == 1  # type: ignore[attr-defined]
    window = analysis.restarts[0]  # type: ignore[attr-defined]
    restart = truth["restart"]
    # The server stopped at server_stopped_at and was listening again from server_started_at;
    # its return shows as the first connection accepted after that, if any client came back.
    assert restart["server_stopped_at"] - 1 <= window.t_down <= restart["server_started_at"]
    if window.t_back is not None:
        assert window.t_back >= restart["server_started_at"] - 0.05
    else:
        assert all(ns.diagnosis.verdict == "stalled" for ns in analysis.namespaces)  # type: ignore[attr-defined]


def test_stalled_namespaces_say_why_not_their_siblings(case: tuple[str, dict, object]) -> None:
    name, _, analysis = case
    rebound_names = {ns.name for ns in analysis.namespaces if ns.diagnosis.verdict == "rebound"}  # type: ignore[attr-defined]
    for ns in analysis.namespaces:  # type: ignore[attr-defined]
        d = ns.diagnosis
        if d.verdict != "stalled":
            continue
        siblings = {other.name for other in analysis.namespaces if other.client.key == ns.client.key} & rebound_names  # type: ignore[attr-defined]
        if siblings:
            assert d.divergence is not None and ns.name in d.divergence.text and set(d.divergence.siblings) <= siblings, (name, ns.name)
        assert d.explanation and d.advice and ns.client.family != "unrecognised"


def test_the_full_analysis_says_what_the_compact_one_says(case: tuple[str, dict, object]) -> None:
    """`--full` / `--html` keep every exchange; the diagnosis must not change with it."""
    name, _, compact = case

    def said(analysis: object) -> dict[str, tuple]:
        return {ns.name: (ns.diagnosis.verdict, ns.diagnosis.basis, ns.diagnosis.signature, ns.diagnosis.stall_point, len(ns.diagnosis.attempts), ns.diagnosis.divergence, ns.revision) for ns in analysis.namespaces}  # type: ignore[attr-defined]

    assert said(analyze_files([REAL / name / "capture.pcap"], full=True)) == said(compact)
