"""`mcpsniff diff BEFORE AFTER`: two real demo runs (all rebound vs. one namespace stalled), and the
"slower rebind" rule on the addon's records of two runs of one setup."""

from __future__ import annotations

import json
import re
from html import unescape
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


def test_a_port_a_capture_does_not_hold_is_named_with_what_it_holds() -> None:
    result = CliRunner().invoke(main, ["diff", str(HEALTHY), str(HEALTHY), "--port", "9"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "port 9" in lines[0] and "tasks" in lines[0], result.output


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


# ---- --html: the page (its browser behaviour: tests/report/test_diff_html.py) ------------------------------


def _blocks(html: str) -> dict[str, str]:
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S))


def test_html_writes_one_self_contained_page_and_keeps_the_text_and_exit_code(tmp_path: Path) -> None:
    page = tmp_path / "diff.html"
    code, out = run(str(HEALTHY), str(IDLE), "--html", str(page))
    assert code == 1 and out == run(str(HEALTHY), str(IDLE))[1]  # stdout and exit code as without --html
    html = page.read_text(encoding="utf-8")
    csp = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))  # type: ignore[union-attr]
    assert re.fullmatch(r"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-[A-Za-z0-9+/=]+'; img-src data:; base-uri 'none'; form-action 'none'", csp)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing to load
    assert set(_blocks(html)) == {"mcpsniff-before-data", "mcpsniff-before-bodies", "mcpsniff-after-data", "mcpsniff-after-bodies"}
    before, after = (json.loads(_blocks(html)[f"mcpsniff-{side}-data"]) for side in ("before", "after"))
    assert [ns["name"] for ns in before["ns"]] == [ns["name"] for ns in after["ns"]] == ["tasks", "dev-agents", "sprint", "ci-infra"]
    assert before["restarts"] and after["restarts"]  # each timeline is aligned at its own restart
    rows = re.findall(r'<tr( class="(\w+)")? data-ns="([^"]+)">', html)
    assert [(cls, ns) for _, cls, ns in rows] == [("", "tasks"), ("", "dev-agents"), ("worse", "sprint"), ("", "ci-infra")]
    sprint = html[html.index('data-ns="sprint"'):html.index('data-ns="ci-infra"')]
    assert '<span class="mark worse">WORSE</span>' in sprint and "rebound before, stalled after [backoff-gave-up]" in sprint
    assert "new-session</span> <span class=\"arrow\" aria-label=\"then\">→</span> <span class=\"now code\">backoff-gave-up" in sprint
    assert "#284 connection -&gt; refused at +7.09s" in sprint and 'data-panel="1" data-stall="2"' in sprint


def test_html_uses_the_report_s_script_and_policy(tmp_path: Path) -> None:
    from mcpsniff.api import analyze_files
    from mcpsniff.report.html import render_html

    page = tmp_path / "diff.html"
    run(str(IDLE), str(HEALTHY), "--html", str(page))
    csp = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">')
    script = re.compile(r"<script>(.*?)</script>", re.S)
    report = render_html(analyze_files([IDLE], full=True))
    html = page.read_text(encoding="utf-8")
    assert csp.search(html).group(1) == csp.search(report).group(1)  # type: ignore[union-attr]
    assert script.findall(html) == script.findall(report)  # one script, the report's


def test_share_pseudonymises_both_captures_with_one_set_of_names(tmp_path: Path) -> None:
    from mcpsniff.api import analyze_files

    page = tmp_path / "diff.html"
    code, _ = run(str(HEALTHY), str(IDLE), "--html", str(page), "--share")
    html = page.read_text(encoding="utf-8")
    assert code == 1 and "shareable: pseudonymised" in html
    sids = {g.session_id for path in (HEALTHY, IDLE) for ns in analyze_files([path], full=True).namespaces for g in ns.generations if g.session_id}
    assert len(sids) == 15 and not any(sid in html for sid in sids)  # 8 sessions before, 7 after (sprint never got its second)
    before, after = (json.loads(_blocks(html)[f"mcpsniff-{side}-data"]) for side in ("before", "after"))
    names = [g["sid"] for doc in (before, after) for ns in doc["ns"] for g in ns["gens"] if g["sid"]]
    assert sorted(names, key=lambda n: int(n[1:])) == [f"S{i}" for i in range(1, 16)]  # one numbering over both: not S1 on each side
    assert str(REAL) not in html and "127.0.0.1" not in html


def test_share_without_html_is_bad_input() -> None:
    result = CliRunner().invoke(main, ["diff", str(HEALTHY), str(IDLE), "--share"])
    assert result.exit_code == 2 and "--html" in result.output

