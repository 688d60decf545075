"""Diagnosis on record streams as the proxy path writes them (refusals attributed to requests).

Packet-level scenarios for every signature live in test_signatures.py; here the
records are written directly, the way the mitmproxy addon produces them, which is
the only path where a refused attempt carries its namespace and path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from mcpsniff import records as R
from mcpsniff.analysis.diagnose import analyze_records
from mcpsniff.analysis.schedules import attempt_gaps, match_schedule
from mcpsniff.config import Config

SERVER = "127.0.0.1:5076"


@dataclass
class Script:
    """Writes the records of a proxied MCP client, one exchange at a time."""

    recs: list[R.Record] = field(default_factory=list)
    n: int = 0
    sids: dict[str, str] = field(default_factory=dict)

    def exchange(self, t: float, ns: str, method: str, status: int | None, *, sid: str | None = None, new_sid: str | None = None, rid: int | None = 1, body: str = "", outcome: str = R.COMPLETE, http: str = "POST") -> None:
        self.n += 1
        conn, xid = f"c{self.n}", f"c{self.n}.1"
        headers: tuple[tuple[str, str], ...] = (("mcp-session-id", sid),) if sid else ()
        msg: dict[str, object] = {"jsonrpc": "2.0", "method": method}
        if rid is not None:
            msg["id"] = rid
        self.recs.append(R.Request(t=t, conn=conn, xid=xid, method=http, target=f"/{ns}/mcp", headers=headers, body=json.dumps(msg) if http == "POST" else "", server=SERVER))
        if status is not None:
            rh = (("mcp-session-id", new_sid),) if new_sid else ()
            result = {"tools": [{"name": "a"}, {"name": "b"}]} if method == "tools/list" else {}
            rbody = body or (json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) if rid is not None and status == 200 else "")
            self.recs.append(R.Response(t=t + 0.01, xid=xid, status=status, headers=rh, body=rbody, t_end=t + 0.01))
        self.recs.append(R.End(t=t + 0.02, xid=xid, outcome=outcome))

    def setup(self, t: float, ns: str, sid: str) -> None:
        self.exchange(t, ns, "initialize", 200, new_sid=sid)
        self.exchange(t + 0.1, ns, "notifications/initialized", 202, sid=sid, rid=None)
        self.exchange(t + 0.2, ns, "tools/list", 200, sid=sid)
        self.exchange(t + 0.3, ns, "tools/call", 200, sid=sid)

    def refused(self, t: float, ns: str, method: str = "initialize", sid: str | None = None) -> None:
        self.exchange(t, ns, method, None, sid=sid, outcome=R.REFUSED)

    def analyze(self) -> dict[str, object]:
        ordered = sorted(self.recs, key=lambda r: r.t)  # captures deliver records in time order
        analysis = analyze_records(iter(ordered), Config(), sources=["test"])
        return {ns.name: ns.diagnosis for ns in analysis.namespaces}


def healthy_pair(s: Script) -> None:
    """Namespace `ok`: set up, refused while down, re-initialized when back."""
    s.setup(0.0, "ok", "old-ok")
    s.refused(10.0, "ok")
    s.setup(16.0, "ok", "new-ok")


def test_attributed_refusals_that_end_before_the_server_is_back() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "gone", "old-gone")
    for t in (10.1, 10.5, 12.9):  # irregular: no known schedule
        s.refused(t, "gone")
    s.exchange(60.0, "ok", "tools/call", 200, sid="new-ok")  # capture goes on long after
    d = s.analyze()
    assert d["ok"].verdict == "rebound"
    gone = d["gone"]
    assert gone.verdict == "stalled"
    assert gone.signature == "retries-exhausted-while-down"
    assert gone.stall_point is not None and gone.stall_point.result == "refused" and gone.stall_point.t == 12.9


def test_attempts_on_a_known_schedule_are_backoff_gave_up() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "cc", "old-cc")
    for t in (10.0, 11.0, 13.0):  # 1, 2 s: Claude Code's schedule
        s.refused(t, "cc")
    s.exchange(60.0, "ok", "tools/call", 200, sid="new-ok")
    d = s.analyze()["cc"]
    assert d.signature == "backoff-gave-up"
    assert "Claude Code" in d.schedule_match


def test_short_capture_after_failure_is_unknown_and_says_why() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "slow", "old-slow")
    s.refused(10.0, "slow")
    s.exchange(20.0, "ok", "tools/call", 200, sid="new-ok")  # capture ends 10 s after the failure
    d = s.analyze()["slow"]
    assert d.verdict == "unknown"
    assert "capture ends" in d.missing


def test_namespace_seen_only_after_the_restart_is_not_affected() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(17.0, "late", "late-1")
    assert s.analyze()["late"].verdict == "not-affected"


def test_no_restart_no_failure_is_not_affected() -> None:
    s = Script()
    s.setup(0.0, "calm", "s1")
    s.exchange(5.0, "calm", "tools/call", 200, sid="s1")
    assert s.analyze()["calm"].verdict == "not-affected"


def test_route_not_mounted_404_is_not_a_session_error() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "route", "old-route")
    s.exchange(16.5, "route", "initialize", 404, body='{"detail":"Not Found"}')
    s.exchange(60.0, "ok", "tools/call", 200, sid="new-ok")
    d = s.analyze()["route"]
    assert d.signature == "non-retried-status"
    assert d.stall_point is not None and d.stall_point.result == "404 route-not-mounted"


def test_stateless_server_keeps_the_old_session() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "stateless", "same")
    s.refused(10.0, "stateless", "tools/call", sid="same")
    s.exchange(16.2, "stateless", "tools/call", 200, sid="same")
    d = s.analyze()["stateless"]
    assert (d.verdict, d.signature) == ("rebound", "session-survived")


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 1, 3, 7, 15, 31], "Claude Code"),
        ([0, 1.0, 2.5], "TS SDK"),
        ([0, 1.0, 2.0], None),  # the Python SDK's GET stream retries once (1 s), so two 1 s gaps are no known schedule
        ([0, 5, 10], None),
        ([0], None),
    ],
)
def test_schedule_matching(times: list[float], expected: str | None) -> None:
    name = match_schedule(attempt_gaps(times))
    assert (name is None) if expected is None else (name is not None and expected in name)


def test_a_call_still_in_flight_when_the_capture_ends_does_not_undo_a_rebind() -> None:
    s = Script()
    healthy_pair(s)
    s.exchange(20.0, "ok", "tools/call", 200, sid="new-ok")
    s.exchange(20.5, "ok", "tools/call", None, sid="new-ok", outcome=R.OPEN_AT_END)  # capture stopped mid-call
    assert s.analyze()["ok"].verdict == "rebound"


def test_a_call_that_never_gets_its_answer_after_the_rebind_is_hung() -> None:
    s = Script()
    healthy_pair(s)
    s.exchange(17.0, "ok", "tools/call", None, sid="new-ok", outcome=R.OPEN_AT_END)
    s.exchange(60.0, "other", "tools/call", 200)  # the capture goes on for 43 s more
    d = s.analyze()["ok"]
    assert (d.verdict, d.signature) == ("stalled", "hung-request")


def test_session_id_adopted_from_an_error_response_is_a_phantom_session() -> None:
    s = Script()
    healthy_pair(s)
    s.setup(0.5, "ph", "old-ph")
    s.refused(10.1, "ph", "tools/call", sid="old-ph")
    s.exchange(16.5, "ph", "tools/call", 404, sid="old-ph", new_sid="minted-on-404", body='{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Session not found"}}')
    s.exchange(17.5, "ph", "tools/call", 404, sid="minted-on-404", body='{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Session not found"}}')
    s.exchange(60.0, "ok", "tools/call", 200, sid="new-ok")
    d = s.analyze()["ph"]
    assert (d.verdict, d.signature) == ("stalled", "phantom-session")
    assert d.stall_point is not None and d.stall_point.t == 16.5 and d.stall_point.result.startswith("404")
