"""`mcpsniff diff BEFORE AFTER`: two real demo runs (all rebound vs. one namespace stalled), and the
"slower rebind" rule on the addon's records of two runs of one setup."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mcpsniff import records as R
from mcpsniff.analysis.compare import compare
from mcpsniff.analysis.diagnose import analyze_records
from mcpsniff.cli import main
from mcpsniff.config import Config

REAL = Path(__file__).resolve().parent / "data" / "real"
HEALTHY, IDLE = REAL / "ts-healthy" / "capture.pcap", REAL / "ts-idle-get" / "capture.pcap"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout


def test_a_namespace_that_rebound_before_and_stalled_after_is_worse() -> None:
    code, out = run(str(HEALTHY), str(IDLE))
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("sprint "))
    assert "rebound -> stalled" in row and "new-session -> backoff-gave-up" in row and row.rstrip().endswith("WORSE")
    assert "AFTER is worse for 1 namespace(s): sprint" in out
    assert "stall point after: #284 connection -> refused" in out


def test_the_other_way_round_is_better_and_exits_0() -> None:
    code, out = run(str(IDLE), str(HEALTHY))
    assert code == 0 and "better: stalled before, rebound after" in out and "AFTER is not worse" in out


def test_json_has_every_namespace_side_by_side() -> None:
    code, out = run(str(HEALTHY), str(IDLE), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["worse"] == ["sprint"]
    sprint = next(r for r in doc["rows"] if r["namespace"] == "sprint")
    assert (sprint["before"]["verdict"], sprint["after"]["verdict"]) == ("rebound", "stalled")
    assert sprint["after"]["basis"] == "inferred (schedule-exhausted)" and sprint["after"]["revision"] == "2025-era sessions"
    assert "TypeScript SDK" in sprint["after"]["client"] and sprint["before"]["tools"]


def test_bad_input_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("not a capture\n")
    result = CliRunner().invoke(main, ["diff", str(junk), str(HEALTHY)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def _records(back_after: float) -> list[R.Record]:
    """A proxied client: set up, refused while down, re-initialized ``back_after`` s after the server was back."""
    recs: list[R.Record] = []
    n = 0

    def ex(t: float, method: str, status: int | None, sid: str | None = None, new_sid: str | None = None, outcome: str = R.COMPLETE) -> None:
        nonlocal n
        n += 1
        xid = f"c{n}.1"
        msg = {"jsonrpc": "2.0", "id": n, "method": method}
        recs.append(R.Request(t=t, conn=f"c{n}", xid=xid, method="POST", target="/tasks/mcp", headers=(("mcp-session-id", sid),) if sid else (), body=json.dumps(msg), server="127.0.0.1:5076"))
        if status is not None:
            result = {"tools": [{"name": "a"}]} if method == "tools/list" else {}
            recs.append(R.Response(t=t + 0.01, xid=xid, status=status, headers=(("mcp-session-id", new_sid),) if new_sid else (), body=json.dumps({"jsonrpc": "2.0", "id": n, "result": result}) if status == 200 else "", t_end=t + 0.01))
        recs.append(R.End(t=t + 0.02, xid=xid, outcome=outcome))

    def setup(t: float, sid: str) -> None:
        ex(t, "initialize", 200, new_sid=sid)
        ex(t + 0.1, "notifications/initialized", 202, sid=sid)
        ex(t + 0.2, "tools/list", 200, sid=sid)
        ex(t + 0.3, "tools/call", 200, sid=sid)

    setup(0.0, "old")
    ex(10.0, "initialize", None, outcome=R.REFUSED)
    ex(15.0, "tools/call", 200, sid="other")  # another client: the server is back at 15.01
    setup(15.0 + back_after, "new")
    return sorted(recs, key=R.time_key)


def test_a_slower_rebind_is_worse_only_beyond_the_allowed_slack() -> None:
    fast, slow = (analyze_records(iter(_records(d)), Config(), sources=[f"{d}s"]) for d in (0.5, 8.0))
    assert [r.worse for r in compare(fast, slow, slower_than=10).rows if r.namespace == "tasks"] == [[]]
    worse = [r.worse for r in compare(fast, slow, slower_than=5).rows if r.namespace == "tasks"][0]
    assert len(worse) == 1 and "rebound 7.50 s slower" in worse[0]
    assert "rebound 7.50 s faster" in compare(slow, fast, slower_than=5).rows[0].better[0]
