"""`mcpsniff diff --html` opened in real headless Chromium (Debian's /usr/bin/chromium via playwright):
the comparison table, and the two timelines on one time axis measured from each capture's restart.
Every test saves a screenshot in test-artifacts/ and checks that nothing ran or loaded."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, real_analysis
from report_synth import LEAKS, build_analysis, hostile_analysis, leaky_analysis

from mcpsniff.analysis.compare import compare
from mcpsniff.analysis.model import Analysis
from mcpsniff.report.diff_html import render_diff_html, write_diff_html

browser_only = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium)")
BEFORE, AFTER = 0, 1


def render_diff(before: Analysis, after: Analysis, path: Path, **kw: Any) -> Path:
    write_diff_html(before, after, compare(before, after, 5.0), path, **kw)
    return path


def _clean(o: Any) -> None:
    assert o.errors == [] and o.dialogs == [] and o.foreign_requests() == []


def _panel(o: Any, i: int, what: str, *args: Any) -> Any:
    return o.page.evaluate(f"([i, args]) => mcpsniffReport.panels[i].{what}(...args)", [i, list(args)])


def _aligned(o: Any, i: int) -> list[float]:
    """A timeline's view on the shared axis (its own times minus its offset)."""
    v, off = _panel(o, i, "view"), _panel(o, i, "state")["offset"]
    return [v[0] - off, v[1] - off]


def _click(o: Any, i: int, xid: str, tick: int | None = None) -> None:
    pt = _panel(o, i, "point", xid, tick)
    assert pt is not None, f"{xid} is not on timeline {i}"
    o.page.evaluate("y => window.scrollBy(0, y - innerHeight / 2)", pt["y"])
    pt = _panel(o, i, "point", xid, tick)
    o.page.mouse.click(pt["x"], pt["y"])


# The canvas pixel just right and just left of a timeline's restart, on the strip above the lanes
# where the downtime is drawn (server down: red), in the canvas' own CSS pixels.
RESTART_PIXELS = """([prefix, x]) => { const c = document.getElementById(prefix + 'tl-canvas'), d = devicePixelRatio, r = c.getBoundingClientRect();
  const at = px => [...c.getContext('2d').getImageData(Math.round((px - r.left) * d), Math.round(40 * d), 1, 1).data];
  return [at(x + 2), at(x - 4)]; }"""


def _red(px: list[int]) -> bool:
    return px[0] > 150 and px[1] < 130 and px[2] < 130


def _restart_drawn_at(o: Any, x: float) -> None:
    for prefix in ("before-", "after-"):
        inside, outside = o.page.evaluate(RESTART_PIXELS, [prefix, x])
        assert _red(inside) and not _red(outside), (prefix, inside, outside)


@browser_only
def test_real_pair_table_marks_the_worse_row_and_the_timelines_meet_at_their_restarts(tmp_path, open_report, artifacts) -> None:
    before, after = real_analysis("ts-healthy"), real_analysis("ts-idle-get")
    o = open_report(render_diff(before, after, tmp_path / "diff.html"))
    page = o.page
    assert page.title() == "mcpsniff diff: AFTER worse for 1"
    # the table: one row per namespace, the WORSE one marked, before -> after where they differ
    assert page.eval_on_selector_all(".diff-table tbody tr", "rs => rs.map(r => [r.dataset.ns, r.className])") == [
        ["tasks", ""], ["dev-agents", ""], ["sprint", "worse"], ["ci-infra", ""]]
    sprint = page.locator(".diff-table tr[data-ns='sprint']")
    assert sprint.locator(".mark.worse").inner_text() == "WORSE" and page.locator(".mark.worse").count() == 1
    cells = sprint.locator("td").all_inner_texts()
    assert cells[0] == "rebound → stalled" and cells[1] == "new-session → backoff-gave-up" and cells[2] == "proven → inferred (schedule-exhausted)"
    assert cells[5] == "0.07 s → –" and "rebound before, stalled after [backoff-gave-up]" in cells[8]
    assert page.evaluate("getComputedStyle(document.querySelector('.diff-table tr.worse')).backgroundColor") != page.evaluate(
        "getComputedStyle(document.querySelector('.diff-table tr[data-ns=tasks]')).backgroundColor")
    page.screenshot(path=str(artifacts / "diff-ts-healthy-ts-idle-get.png"), full_page=True)

    # both timelines drawn, every namespace a lane, BEFORE above AFTER
    for i, analysis in ((BEFORE, before), (AFTER, after)):
        assert _panel(o, i, "state")["shown"] == sum(len(ns.exchanges) for ns in analysis.namespaces)
        r = analysis.restarts[0]
        assert _panel(o, i, "state")["offset"] == pytest.approx(r.t_down - analysis.t0, abs=1e-6)
    prefixes = ("#before-", "#after-")
    assert [page.locator(f"{p}tl .lane-focus:not([hidden])").count() for p in prefixes] == [4, 4]
    boxes = [page.locator(f"{p}tl-canvas").bounding_box() for p in prefixes]
    assert boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"] and boxes[0]["x"] == boxes[1]["x"] and boxes[0]["width"] == boxes[1]["width"]
    assert page.locator("#after-tl .stall-marker[data-ns='2'] .flag").inner_text() == "⚑ stall: backoff-gave-up"
    assert page.locator("#before-tl .stall-marker").count() == 0
    # the restarts stand at the same x (t = 0 of the shared axis), each drawn there on its canvas
    xs = [_panel(o, i, "restartX") for i in (BEFORE, AFTER)]
    assert abs(xs[0] - xs[1]) < 0.5
    _restart_drawn_at(o, xs[0])
    assert _aligned(o, BEFORE) == pytest.approx(_aligned(o, AFTER), abs=1e-6)
    assert "time since the server went down" not in page.inner_text("#timeline")  # drawn on the canvas, not text

    # zoom (wheel on the AFTER timeline, at its restart) moves both; the restarts stay together, under the pointer
    full = _aligned(o, AFTER)
    page.locator("#after-tl-canvas").scroll_into_view_if_needed()
    box = page.locator("#after-tl-canvas").bounding_box()
    page.mouse.move(xs[1], box["y"] + 80)
    page.mouse.wheel(0, -500)
    zoomed = _aligned(o, AFTER)
    assert zoomed[1] - zoomed[0] < (full[1] - full[0]) / 2
    assert _aligned(o, BEFORE) == pytest.approx(zoomed, abs=1e-6)
    assert page.evaluate("mcpsniffReport.aligned()") == pytest.approx(zoomed, abs=1e-6)
    now = [_panel(o, i, "restartX") for i in (BEFORE, AFTER)]
    assert abs(now[0] - now[1]) < 0.5 and abs(now[0] - xs[1]) < 2
    _restart_drawn_at(o, now[0])
    # drag on the BEFORE timeline pans both
    page.locator("#before-tl-canvas").scroll_into_view_if_needed()
    box = page.locator("#before-tl-canvas").bounding_box()
    page.mouse.move(box["x"] + 900, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 700, box["y"] + 100, steps=4)
    page.mouse.up()
    panned = _aligned(o, BEFORE)
    assert panned[0] > zoomed[0] and panned[1] - panned[0] == pytest.approx(zoomed[1] - zoomed[0])
    assert _aligned(o, AFTER) == pytest.approx(panned, abs=1e-6)
    # the shared buttons: Restart frames both downtimes, Fit shows both captures whole
    page.click("#zoom-restart")
    v = _aligned(o, AFTER)
    downtime = max(r.t_back - r.t_down for r in (before.restarts[0], after.restarts[0]))
    assert v[0] < 0 < downtime < v[1] and v[1] - v[0] < downtime * 1.5
    assert _aligned(o, BEFORE) == pytest.approx(v, abs=1e-6)
    page.screenshot(path=str(artifacts / "diff-zoomed-restart.png"), full_page=True)
    page.click("#zoom-fit")
    assert _aligned(o, AFTER) == pytest.approx(full, abs=1e-6)

    # a click on an exchange in the AFTER timeline opens its details, as in the report
    call = next(ex for ex in after.namespaces[0].exchanges if ex.rpc_methods == ["tools/call"] and ex.t > after.restarts[0].t_back)
    t = call.t - after.restarts[0].t_down
    page.evaluate("([a, b]) => mcpsniffReport.setAligned(a, b)", [t - 0.5, t + 0.5])
    _click(o, AFTER, call.xid)
    assert page.get_attribute("#details", "data-panel") == "after" and page.get_attribute("#details", "data-selected") == call.xid
    text = o.details()
    assert text.startswith("✕ Close\nAFTER · tasks: POST tools/call → 200") and "REQUEST HEADERS" in text.upper()
    assert f"+{t:.3f} s" in text  # its time on the shared axis (from the restart)
    assert _panel(o, AFTER, "state")["selected"] == call.xid and _panel(o, BEFORE, "state")["selected"] is None
    page.screenshot(path=str(artifacts / "diff-after-details.png"))
    # then one in BEFORE: the drawer moves over, AFTER's selection goes
    first = before.namespaces[1].exchanges[0]
    page.evaluate("([a, b]) => mcpsniffReport.panels[0].setView(a, b)", [first.t - before.t0 - 0.2, first.t - before.t0 + 0.5])
    _click(o, BEFORE, first.xid)
    assert page.get_attribute("#details", "data-panel") == "before" and o.details().startswith("✕ Close\nBEFORE · dev-agents: ")
    assert _panel(o, AFTER, "state")["selected"] is None and _panel(o, BEFORE, "state")["selected"] == first.xid
    page.keyboard.press("Escape")
    assert page.locator("#details").is_hidden() and _panel(o, BEFORE, "state")["selected"] is None
    # the stall point in the table leads to the AFTER timeline
    page.click(".diff-table a.stall-link[data-panel='1']")
    stall = after.namespaces[2].diagnosis.stall_point
    assert "Stall point of sprint: backoff-gave-up" in o.details() and page.get_attribute("#details", "data-panel") == "after"
    v = _aligned(o, AFTER)
    assert v[0] < stall.t - after.restarts[0].t_down < v[1]
    _clean(o)


@browser_only
def test_restarts_at_different_times_are_aligned(tmp_path, open_report, artifacts) -> None:
    """A restart 4 s into one capture and 16 s into the other: drawn one above the other, so are the rebinds."""
    early, late = build_analysis(duration=30.0, t_down=4.0, t_back=9.0), build_analysis(duration=40.0, t_down=16.0, t_back=21.0, stalled=())
    o = open_report(render_diff(early, late, tmp_path / "diff.html"))
    assert [_panel(o, i, "state")["offset"] for i in (BEFORE, AFTER)] == pytest.approx([4.0, 16.0], abs=1e-3)
    xs = [_panel(o, i, "restartX") for i in (BEFORE, AFTER)]
    assert abs(xs[0] - xs[1]) < 0.5
    _restart_drawn_at(o, xs[0])
    # the same moment after each restart is at the same x: the first initialize in tasks' second session
    inits = [next(ex for ex in a.namespaces[0].exchanges if ex.rpc_methods == ["initialize"] and ex.t > a.restarts[0].t_down) for a in (early, late)]
    assert inits[0].t - early.restarts[0].t_down == pytest.approx(inits[1].t - late.restarts[0].t_down)
    pts = [_panel(o, i, "point", ex.xid) for i, ex in zip((BEFORE, AFTER), inits)]
    assert abs(pts[0]["x"] - pts[1]["x"]) < 0.5 and pts[0]["y"] < pts[1]["y"]
    # the WORSE row: sprint stalled before, rebound after: better
    assert o.page.get_attribute(".diff-table tr[data-ns='sprint']", "class") == "better"
    o.page.screenshot(path=str(artifacts / "diff-different-restart-times.png"), full_page=True)
    _clean(o)


@browser_only
def test_a_capture_without_restart_starts_at_its_start(tmp_path, open_report, artifacts) -> None:
    calm = dataclasses.replace(build_analysis(duration=20.0, stalled=()), restarts=[])
    restarted = build_analysis(duration=30.0)
    o = open_report(render_diff(calm, restarted, tmp_path / "diff.html"))
    assert _panel(o, BEFORE, "state")["offset"] == 0 and _panel(o, BEFORE, "restartX") is None
    assert _panel(o, AFTER, "state")["offset"] == pytest.approx(10.0, abs=1e-3)
    assert "no restart: t = 0 is the capture start" in o.page.inner_text("#before-pane")
    assert "no server restart seen" in o.page.inner_text("#comparison")
    o.page.click("#zoom-restart")  # frames the one restart there is
    v = _aligned(o, AFTER)
    assert v[0] < 0 < 5.2 < v[1] < 8 and _aligned(o, BEFORE) == pytest.approx(v, abs=1e-6)
    o.page.screenshot(path=str(artifacts / "diff-no-restart.png"), full_page=True)
    _clean(o)


@browser_only
def test_hostile_captures_run_nothing_and_fetch_nothing(hostile, tmp_path, open_report, artifacts) -> None:
    calm = build_analysis(duration=22.0, stalled=())
    for before, after, name in ((calm, hostile, "diff-hostile.png"), (hostile_analysis(), calm, "diff-hostile-before.png")):
        o = open_report(render_diff(before, after, tmp_path / "hostile.html"))
        page = o.page
        side = AFTER if after is hostile else BEFORE
        evil_ns = next(i for i, ns in enumerate((after if side == AFTER else before).namespaces) if ns.name.startswith("sprint<"))
        analysis = after if side == AFTER else before
        evil = analysis.namespaces[evil_ns].exchanges[5]
        t = evil.t - analysis.restarts[0].t_down
        page.evaluate("([a, b]) => mcpsniffReport.setAligned(a, b)", [t - 0.05, t + 0.05])
        _click(o, side, evil.xid, tick=0)
        assert "<script>alert(1)</script>" in o.details()  # shown as text
        # the table shows capture strings as text, the stall link included
        row = page.locator(".diff-table tbody tr").filter(has_text="sprint<script>alert(6)</script>")
        assert row.count() == 1 and "stale-session-loop<script>alert(12)</script>" in row.inner_text()
        row.locator("a.stall-link").click()
        assert "Stall point of sprint<script>alert(6)</script>" in o.details()
        page.hover(f"#{'after' if side == AFTER else 'before'}-tl canvas")
        page.focus("#after-tl")
        page.keyboard.press("Tab")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.click("#theme-toggle")
        page.wait_for_timeout(200)
        page.screenshot(path=str(artifacts / name), full_page=True)
        page.evaluate("location.hash = '#x=' + encodeURIComponent('<img src=x onerror=alert(13)>') + '&t=1..2&cmp=constructor.__proto__'")
        page.wait_for_timeout(200)
        assert page.evaluate("document.querySelectorAll('img, iframe, svg, object, embed, link, script').length") == 5  # 2 x (data, bodies) and the script
        assert page.title().startswith("mcpsniff diff")
        _clean(o)


def test_secrets_are_redacted_on_both_sides() -> None:
    before, after = leaky_analysis(), leaky_analysis()
    html = render_diff_html(before, after, compare(before, after, 5.0))
    assert not [s for secrets in LEAKS.values() for s in secrets if s in html] and "[REDACTED]" in html
    shared = render_diff_html(before, after, compare(before, after, 5.0), share=True)
    assert not [s for secrets in LEAKS.values() for s in secrets if s in shared]


def _list_tools(analysis: Analysis, names: tuple[str, ...]) -> None:
    """Every tools/list of tasks answers with ``names`` (each with a schema hash)."""
    for ex in analysis.namespaces[0].exchanges:
        if ex.rpc_methods == ["tools/list"]:
            ex.tools = tuple((n, f"h-{n}") for n in names)


def test_tools_missing_and_added_are_listed_as_text() -> None:
    before, after = build_analysis(duration=22.0, stalled=()), build_analysis(duration=22.0, stalled=())
    _list_tools(before, ("echo", "add", "sleep"))
    _list_tools(after, ("echo", "add", "<img src=x onerror=alert(14)>"))
    html = render_diff_html(before, after, compare(before, after, 5.0))
    row = html[html.index('<tr data-ns="tasks">'):html.index('<tr data-ns="dev-agents">')]
    tools = row[row.index('<td class="tools">'):]
    assert tools.startswith('<td class="tools"><span class="same">3</span>')  # as many before as after
    assert '<div class="tools-missing">missing after: <code>sleep</code></div>' in tools
    assert '<div class="tools-added">added after: <code>&lt;img src=x onerror=alert(14)&gt;</code></div>' in tools
    assert "<img src=x" not in html


@browser_only
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_layout_at_1280x720_and_contrast(scheme: str, tmp_path, open_report, artifacts) -> None:
    from test_viewer import CONTRAST

    o = open_report(render_diff(real_analysis("ts-healthy"), real_analysis("ts-idle-get"), tmp_path / "diff.html"), width=1280, height=720, color_scheme=scheme)
    page = o.page
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert page.evaluate("(() => { const w = document.querySelector('.diff-table').parentElement; return w.scrollWidth <= w.clientWidth; })()")  # every column in sight
    page.screenshot(path=str(artifacts / f"diff-1280x720-{scheme}.png"), full_page=True)
    readable = ["h1", ".meta span", ".diff-table thead th", ".diff-table tbody th", ".diff-table td", ".diff-table span.was", ".diff-table .why.worse",
                ".diff-table a.stall-link", ".mark.worse", ".side-tag", ".pane-head .muted", ".range", ".legend span"]
    ratios = dict(page.evaluate(CONTRAST, readable))
    assert all(ratios[s] is not None for s in readable), [s for s in readable if ratios[s] is None]
    low = {s: round(r, 2) for s, r in ratios.items() if r < 4.5}
    assert not low, f"{scheme}: contrast below 4.5:1 for {low}"
    _clean(o)
