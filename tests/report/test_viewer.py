"""The report as a viewer (issue 12), each interaction in real headless Chromium: request table,
filters, deep links, keyboard, dark mode, layout at 1280x720, sibling view, a big capture.
Every test saves a screenshot in test-artifacts/ and checks that nothing from the capture ran."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from conftest import CHROMIUM, real_analysis, render
from report_synth import build_analysis, sid

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium)")


def _clean(o: Any) -> None:
    assert o.errors == [] and o.dialogs == [] and o.foreign_requests() == []


def _all(analysis):  # type: ignore[no-untyped-def]
    return [ex for ns in analysis.namespaces for ex in ns.exchanges]


# ---- 1. request table ---------------------------------------------------------------------------------


def test_request_table_sorts_and_selects_both_ways(sample, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(sample, tmp_path / "r.html"))
    page, total = o.page, len(_all(sample))
    assert o.state()["rows"] == total and page.inner_text("#rt-count").startswith(f"{total} request(s)")
    first = o.visible_rows()[0]
    assert first["Time"] == "+0.008" and first["Namespace"] == "tasks" and first["HTTP"] == "POST" and first["JSON-RPC / MCP"] == "initialize"
    assert first["Session / instance"] == f"session 1 · {sid('tasks', 1)[:8]}" and first["Status"] == "200" and first["Duration"] == "51.0 ms" and first["Frame"] == "#1001"
    headers = page.eval_on_selector_all("#rt-head [role=columnheader]", "cs => cs.map(c => c.textContent)")
    assert headers == ["Time", "Namespace", "Session / instance", "HTTP", "JSON-RPC / MCP", "Revision", "Status", "Duration", "Outcome", "Frame"]

    # sortable: status descending puts dev-agents' 503 first, then the 404s
    page.click("#rt-head [data-col=s] button")
    assert page.get_attribute("#rt-head [data-col=s]", "aria-sort") == "ascending"
    page.click("#rt-head [data-col=s] button")
    assert page.get_attribute("#rt-head [data-col=s]", "aria-sort") == "descending"
    rows = o.visible_rows()
    assert rows[0]["Status"] == "503" and rows[0]["Namespace"] == "dev-agents" and rows[1]["Status"] == "404"
    assert "session-not-found" in rows[1]["Outcome"]
    page.click("#rt-head [data-col=t] button")

    # row -> timeline: a row far off the current zoom is selected, revealed on the timeline, its details opened
    page.evaluate("mcpsniffReport.setView(0, 4)")
    page.uncheck("#rt-range")
    o.wait_rows(total)
    target = next(ex for ex in sample.namespaces[2].exchanges if ex.status == 404)
    page.fill("#search", target.xid)
    o.wait_rows(1)
    page.click(f"#rt-body .rt-row[data-xid='{target.xid}']")
    assert o.state()["selected"] == target.xid and page.get_attribute("#details", "data-selected") == target.xid
    v0, v1 = o.view()
    assert v0 <= target.t - sample.t0 <= v1  # revealed
    assert "sprint: POST tools/call → 404 session-not-found" in o.details()
    assert page.locator("#details").is_visible()
    page.screenshot(path=str(artifacts / "viewer-table-row-selected.png"))

    # timeline -> row: clicking a bar marks its row and scrolls the table to it
    page.fill("#search", "")
    page.check("#rt-range")
    page.click("#zoom-fit")
    o.wait_rows(total)
    call = [ex for ex in sample.namespaces[3].exchanges if ex.rpc_methods == ["tools/call"]][-3]
    o.click_exchange(call.xid)
    assert o.state()["selected"] == call.xid
    shown = {r["xid"]: r for r in o.visible_rows()}
    assert call.xid in shown and shown[call.xid]["selected"] == "true"
    page.screenshot(path=str(artifacts / "viewer-table.png"), full_page=True)
    _clean(o)


def test_request_table_is_virtualised_on_a_big_capture(tmp_path, open_report, artifacts) -> None:
    big = build_analysis(duration=420.0, interval=0.1, t_down=160.0, t_back=165.2)
    exchanges = sorted(_all(big), key=lambda ex: ex.t)
    assert len(exchanges) > 15_000
    o = open_report(render(big, tmp_path / "big.html"), width=1280, height=720)
    page = o.page
    assert o.state()["rows"] == len(exchanges)
    assert page.locator("#rt-body .rt-row").count() < 60  # only the rows in sight exist
    page.focus("#rt-body")
    page.keyboard.press("End")
    rows = o.visible_rows()
    assert rows[-1]["xid"] == exchanges[-1].xid
    page.keyboard.press("Enter")
    assert o.state()["selected"] == exchanges[-1].xid
    page.keyboard.press("Escape")
    page.evaluate("document.getElementById('rt-body').scrollTop = 12000 * 24")
    page.wait_for_function("() => [...document.querySelectorAll('#rt-body .rt-row')].some(r => r.getAttribute('aria-rowindex') === '12002')")
    assert page.locator("#rt-body .rt-row").count() < 60
    # the summary of a big capture reads in seconds from the capture start
    cells = page.eval_on_selector_all(".summary-table td.time", "cs => cs.map(c => c.textContent.trim())")
    assert cells[:3] == ["+165.20 s", "+1.80 s", "1.99 s"] and not any("+-" in c or len(c) > 12 for c in cells)
    page.screenshot(path=str(artifacts / "viewer-big-capture.png"))
    _clean(o)


# ---- 2. filters ------------------------------------------------------------------------------------------


def _hay(ex) -> str:  # type: ignore[no-untyped-def]
    parts = [ex.xid, ex.method, ex.target, ",".join(ex.rpc_methods), ex.session_id or "", ex.new_session_id or "", ex.outcome, ex.error, ex.error_detail,
             ex.request_body, ex.response_body, str(ex.status)] + [p for ev in ex.events for p in (ev.rpc, ev.data, ev.event)]
    return "\n".join(parts).lower()


def test_filters_apply_to_timeline_and_table(sample, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(sample, tmp_path / "r.html"))
    page, everything = o.page, _all(sample)
    total = len(everything)

    def both(n: int) -> None:
        o.wait_rows(n)
        assert page.inner_text("#count") == f"showing {n} of {total} exchanges"

    # free text: a session id (sprint's only session) ...
    sprint_sid = sid("sprint", 1)
    page.fill("#search", sprint_sid)
    both(sum(sprint_sid in _hay(ex) for ex in everything))
    assert {r["Namespace"] for r in o.visible_rows()} == {"sprint"}
    # ... and body text: only the SSE streams carried the heartbeats
    page.fill("#search", "HEARTBEAT")
    both(sum("heartbeat" in _hay(ex) for ex in everything))
    assert {r["HTTP"] for r in o.visible_rows()} == {"GET"}
    page.fill("#search", "")
    both(total)
    # status class and errors only
    page.select_option("#status-filter", "4xx")
    both(sum(ex.status is not None and 400 <= ex.status < 500 for ex in everything))
    assert {r["Status"] for r in o.visible_rows()} == {"404"}
    page.select_option("#status-filter", "")
    page.check("#errors-only")
    errors = sum(ex.status is None or ex.status >= 400 or bool(ex.error) for ex in everything)
    both(errors)
    page.screenshot(path=str(artifacts / "viewer-filter-errors.png"))
    # namespace and JSON-RPC method, combined with the rest
    page.uncheck("#ns-filter input[data-ns='2']")
    both(sum((ex.status is None or ex.status >= 400 or bool(ex.error)) and ex.namespace != "sprint" for ex in everything))
    page.uncheck("#errors-only")
    page.select_option("#method-filter", "initialize")
    both(sum(ex.rpc_methods == ["initialize"] and ex.namespace != "sprint" for ex in everything))
    page.select_option("#method-filter", "")
    page.check("#ns-filter input[data-ns='2']")
    both(total)
    # time range: the table follows the zoom (the timeline shows it)
    page.evaluate("mcpsniffReport.setView(10, 20)")
    page.wait_for_function("n => mcpsniffReport.state().rows < n", arg=total)
    in_range = o.state()["rows"]
    assert 0 < in_range < total and "in +10.00 s … +20.00 s" in page.inner_text("#rt-count")
    assert all(float(r["Time"]) <= 20 for r in o.visible_rows())
    page.screenshot(path=str(artifacts / "viewer-filter-range.png"), full_page=True)
    page.uncheck("#rt-range")
    o.wait_rows(total)
    _clean(o)


# ---- 3. deep links ----------------------------------------------------------------------------------------


def test_deep_links_restore_selection_and_zoom(sample, tmp_path, open_report, artifacts) -> None:
    path = render(sample, tmp_path / "r.html")
    call = [ex for ex in sample.namespaces[1].exchanges if ex.rpc_methods == ["tools/call"]][5]
    o = open_report(path, fragment=f"#x={call.xid}&t=1.500..6.250")
    assert o.state()["selected"] == call.xid and o.view() == pytest.approx([1.5, 6.25])
    assert "dev-agents: POST tools/call → 200" in o.details()
    # zoom alone
    o2 = open_report(path, fragment="#t=10..20")
    assert o2.view() == pytest.approx([10, 20]) and o2.state()["selected"] is None

    # "copy link" gives a link that opens on the same selection and zoom
    page = o2.page
    page.evaluate("mcpsniffReport.setView(2.25, 4.75)")
    o2.click_exchange(call.xid)
    assert o2.state()["selected"] == call.xid
    page.click("#copy-link")
    page.wait_for_function("() => document.getElementById('link-status').textContent !== ''")
    link = page.input_value("#link-text")
    assert link.startswith(path.resolve().as_uri() + "#") and f"x={call.xid}" in link and "t=2.250..4.750" in link
    page.wait_for_function("h => location.hash === h", arg="#" + link.split("#", 1)[1])  # the address bar follows too
    page.screenshot(path=str(artifacts / "viewer-copy-link.png"))
    o3 = open_report(path, fragment="#" + link.split("#", 1)[1])
    assert o3.state()["selected"] == call.xid and o3.view() == pytest.approx([2.25, 4.75])

    # the summary's stall link is such a link
    stall = sample.namespaces[2].diagnosis.stall_point
    href = page.get_attribute("table.summary-table a.stall-link", "href")
    assert href == f"#x={stall.xid}&t=8.000..23.020"
    o4 = open_report(path, fragment=href)
    assert o4.state()["selected"] == stall.xid and o4.view() == pytest.approx([8.0, 23.02])
    assert "Stall point of sprint: stale-session-loop" in o4.details()
    # a link to something the capture does not hold, or with junk, opens the report as usual
    o5 = open_report(path, fragment="#x=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&t=junk&__proto__=1")
    assert o5.state()["selected"] is None
    for opened in (o, o2, o3, o4, o5):
        _clean(opened)


# ---- 4. keyboard ----------------------------------------------------------------------------------------------


def _focused(page) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
        return {cls: e.className, ns: e.dataset.ns, tag: e.tagName, text: e.textContent, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }""")


def test_keyboard_reaches_lanes_exchanges_and_stall_flags(sample, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(sample, tmp_path / "r.html"))
    page = o.page
    tasks = sorted(sample.namespaces[0].exchanges, key=lambda ex: ex.t)
    page.focus("#tl")
    page.keyboard.press("Tab")
    f = _focused(page)
    assert f["cls"] == "lane-focus" and f["ns"] == "0"
    assert f["outline"] == "solid" and f["width"] >= 2  # visible focus
    page.keyboard.press("ArrowRight")
    assert o.state()["cursor"] == tasks[0].xid
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert o.state()["cursor"] == tasks[2].xid
    assert "tasks: GET stream" in page.inner_text("#tl-status")  # said aloud to a screen reader, and shown as a tooltip
    assert page.locator("#tooltip").is_visible()
    page.screenshot(path=str(artifacts / "viewer-keyboard-lane.png"))
    page.keyboard.press("Enter")
    assert page.get_attribute("#details", "data-selected") == tasks[2].xid and page.locator("#details").is_visible()
    page.keyboard.press("ArrowRight")  # with the details open they follow the cursor
    assert page.get_attribute("#details", "data-selected") == tasks[3].xid
    page.screenshot(path=str(artifacts / "viewer-keyboard-details.png"))
    page.keyboard.press("Escape")
    assert page.locator("#details").is_hidden()
    assert _focused(page)["ns"] == "0"  # focus back where it was
    # Tab on: the next lanes, and the stall flag of the stalled one
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert _focused(page)["ns"] == "2"
    page.keyboard.press("Tab")
    f = _focused(page)
    assert f["tag"] == "BUTTON" and f["text"] == "⚑ stall: stale-session-loop" and f["outline"] == "solid"
    page.keyboard.press("Enter")
    assert page.get_attribute("#details", "data-selected") == sample.namespaces[2].diagnosis.stall_point.xid
    page.keyboard.press("Escape")
    # the request table: arrows move (from the last selection; Home goes to the top), Enter opens
    page.click("#zoom-fit")
    o.wait_rows(len(_all(sample)))
    page.focus("#rt-body")
    page.keyboard.press("Home")
    for _ in range(2):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    by_time = sorted(_all(sample), key=lambda ex: ex.t)
    assert page.get_attribute("#details", "data-selected") == by_time[2].xid
    page.keyboard.press("Escape")
    assert _focused(page)["cls"].startswith("rt-body")
    _clean(o)


# ---- 5. dark mode ----------------------------------------------------------------------------------------------

CONTRAST = """(selectors) => {
  function rgba(c) { const m = c.match(/rgba?\\(([^)]+)\\)/); return m ? m[1].split(',').map(Number) : [0, 0, 0, 0]; }
  function bg(e) { for (; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c.length < 4 || c[3] > 0.5) return c; } return rgba(getComputedStyle(document.body).backgroundColor); }
  function lum(c) { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
  return selectors.map(s => { const e = document.querySelector(s); if (!e) return [s, null];
    const a = lum(rgba(getComputedStyle(e).color)), b = lum(bg(e)); return [s, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""
READABLE = ["h1", ".meta span", ".summary-table thead th", ".summary-table tbody th", ".summary-table td", ".verdict.stalled", ".verdict.rebound",
            "a.stall-link", ".stall-card .explanation", ".stall-card .muted", ".legend span", ".range", "#rt-head button", "#rt-body .rt-row span",
            "#rt-body .rt-row.bad .st", "#rt-body .rt-row .st.ok", ".toolbar label", "#search", ".stall-note", "#details dd", "#details dt", "#details pre", ".status-bad"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_themes_are_readable_and_the_toggle_switches(scheme: str, sample, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(sample, tmp_path / "r.html"), color_scheme=scheme)
    page = o.page
    assert o.state()["theme"] == scheme  # from prefers-color-scheme
    call = next(ex for ex in sample.namespaces[2].exchanges if ex.status == 404)
    page.evaluate("([a, b]) => mcpsniffReport.setView(a, b)", [call.t - sample.t0 - 2, call.t - sample.t0 + 3])
    o.click_exchange(call.xid)

    def check(theme: str) -> None:
        ratios = dict(page.evaluate(CONTRAST, READABLE))
        assert all(ratios[s] is not None for s in READABLE), [s for s in READABLE if ratios[s] is None]
        low = {s: round(r, 2) for s, r in ratios.items() if r < 4.5}
        assert not low, f"{theme}: contrast below 4.5:1 for {low}"
        # the canvas is drawn in the theme's colours too (its background, far from any bar)
        pixel = page.evaluate("""() => { const c = document.getElementById('tl-canvas'), d = devicePixelRatio;
            return [...c.getContext('2d').getImageData(Math.round((c.width / d - 5) * d), Math.round(20 * d), 1, 1).data]; }""")
        assert (sum(pixel[:3]) < 150) == (theme == "dark"), pixel

    check(scheme)
    page.screenshot(path=str(artifacts / f"viewer-theme-{scheme}.png"), full_page=True)
    other = "light" if scheme == "dark" else "dark"
    page.click("#theme-toggle")
    assert o.state()["theme"] == other and page.get_attribute("html", "data-theme") == other
    check(other)
    page.screenshot(path=str(artifacts / f"viewer-theme-{scheme}-toggled-{other}.png"), full_page=True)
    page.reload()
    page.wait_for_selector("html[data-ready='1']")
    assert o.state()["theme"] == other  # the choice is kept
    _clean(o)


# ---- 6. layout at 1280x720 ----------------------------------------------------------------------------------------

LINES = """(sel) => [...document.querySelectorAll(sel)].map(e => { const r = document.createRange(); r.selectNodeContents(e);
  const tops = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
  return {text: e.textContent.trim(), shown: e.offsetParent !== null, lines: tops.size, clipped: e.scrollWidth > e.clientWidth + 1}; })"""


@pytest.mark.parametrize("name", ["synthetic", "ts-idle-get"])
def test_layout_at_1280x720(name: str, sample, tmp_path, open_report, artifacts) -> None:
    analysis = sample if name == "synthetic" else real_analysis(name)
    o = open_report(render(analysis, tmp_path / "r.html"), width=1280, height=720)
    page = o.page
    page.screenshot(path=str(artifacts / f"viewer-1280x720-{name}.png"))
    # the timeline, its stall flag included, is in sight without scrolling
    canvas = page.locator("#tl-canvas").bounding_box()
    assert canvas["y"] + 200 < 720, canvas
    flag = page.locator(".stall-marker .flag").first.bounding_box()
    assert 0 <= flag["y"] and flag["y"] + flag["height"] <= 720, flag
    # summary and stall cards fold (the cards start folded at this height) and unfold
    assert page.evaluate("[...document.querySelectorAll('details.stall-card')].every(d => !d.open)")
    page.click("#summary > summary")
    assert page.evaluate("!document.getElementById('summary').open")
    assert page.locator("#tl-canvas").bounding_box()["y"] < canvas["y"] - 100
    page.click("details.stall-card > summary")
    assert page.locator("details.stall-card .explanation").first.is_visible()
    page.click("#summary > summary")
    # no broken column headers: one line each, nothing clipped, no table wider than the page
    def headers_whole() -> None:
        for sel in (".summary-table thead th", "#rt-head button"):
            broken = [h for h in page.evaluate(LINES, sel) if h["shown"] and (h["lines"] != 1 or h["clipped"])]
            assert not broken, broken
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    headers_whole()
    first = analysis.namespaces[0].exchanges[0]
    page.click(f"#rt-body .rt-row[data-xid='{first.xid}']")  # the details open beside the table: it keeps fewer columns, whole
    assert page.locator("#details").is_visible()
    assert page.eval_on_selector_all("#rt-head [role=columnheader]", "cs => cs.filter(c => c.offsetParent).map(c => c.dataset.col)") == ["t", "ns", "sess", "m", "rpc", "s", "d"]
    headers_whole()
    page.screenshot(path=str(artifacts / f"viewer-1280x720-{name}-details.png"))
    page.keyboard.press("Escape")
    # the legend names every mark the timeline draws
    legend = page.inner_text(".legend")
    for mark in ("session / instance 1", "404", "5xx", "failed", "no response", "refused", "reset", "SSE event", "server down", "server back",
                 "stall point", "diverged from sibling", "sibling rebound", "selected"):
        assert mark in legend, mark
    # "Restart" frames the downtime with a little margin on each side
    page.click("#zoom-restart")
    v0, v1 = o.view()
    r = analysis.restarts[0]
    down, back = r.t_down - analysis.t0, r.t_back - analysis.t0
    left, right = (down - v0) / (v1 - v0), (v1 - back) / (v1 - v0)
    assert 0.04 < left < 0.2 and 0.04 < right < 0.2, (left, right)
    page.screenshot(path=str(artifacts / f"viewer-1280x720-{name}-restart.png"))
    _clean(o)


# ---- 7. sibling view ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["synthetic", "one-stale", "ts-idle-get", "sessionless-listen"])
def test_sibling_view_aligns_the_stalled_lane_with_one_that_rebound(name: str, sample, tmp_path, open_report, artifacts) -> None:
    analysis = sample if name == "synthetic" else real_analysis(name)
    stalled = next(i for i, ns in enumerate(analysis.namespaces) if ns.diagnosis.divergence is not None)
    div = analysis.namespaces[stalled].diagnosis.divergence
    sibling = div.siblings[0]
    o = open_report(render(analysis, tmp_path / "r.html"))
    page = o.page
    page.click(f"#stall-{stalled} button.compare >> text=Compare with {sibling}")
    st = o.state()
    assert st["sibling"] == [analysis.namespaces[stalled].name, sibling]
    assert st["divergence"] == pytest.approx(div.t - analysis.t0, abs=1e-3)
    n = sum(len(ns.exchanges) for ns in analysis.namespaces if ns.name in st["sibling"])
    assert page.inner_text("#count").startswith(f"showing {n} of ")
    assert div.text in page.inner_text("#sibling-bar")
    # the divergence point is marked across both lanes, where the stalled namespace's story parted
    marker = page.locator(".div-marker")
    assert marker.is_visible() and page.inner_text(".div-marker .flag") == f"diverged +{div.t - analysis.t0:.2f} s"
    box, canvas = marker.bounding_box(), page.locator("#tl-canvas").bounding_box()
    v0, v1 = o.view()
    x = canvas["x"] + 200 + (div.t - analysis.t0 - v0) / (v1 - v0) * (canvas["width"] - 200 - 14)
    assert abs(box["x"] + 1.5 - x) < 3
    lanes = page.eval_on_selector_all(".lane-focus:not([hidden])", "ls => ls.map(l => [l.dataset.ns, l.getBoundingClientRect().top, l.getBoundingClientRect().height])")
    order = sorted(lanes, key=lambda lane: lane[1])
    assert [int(ns) for ns, _, _ in order] == [stalled, [ns.name for ns in analysis.namespaces].index(sibling)]  # the stalled lane, its sibling right below
    assert box["height"] >= sum(h for _, _, h in lanes) - 4  # spans both
    reb = analysis.namespaces[[ns.name for ns in analysis.namespaces].index(sibling)].diagnosis.t_rebound
    if reb is not None and v0 <= reb - analysis.t0 <= v1:
        assert page.locator(".reb-marker").is_visible() and page.inner_text(".reb-marker .flag").startswith(f"{sibling} rebound")
    page.screenshot(path=str(artifacts / f"viewer-sibling-{name}.png"))
    # it is a deep link too, and it is left again with one click
    page.click("#copy-link")
    link = page.input_value("#link-text")
    assert re.search(r"cmp=\d+\.\d+", link)
    o2 = open_report(tmp_path / "r.html", fragment="#" + link.split("#", 1)[1])
    assert o2.state()["sibling"] == st["sibling"]
    page.click("#sibling-exit")
    assert o.state()["sibling"] is None and page.locator(".div-marker").is_hidden()
    assert page.inner_text("#count").startswith(f"showing {len(_all(analysis))} of ")
    _clean(o)
    _clean(o2)
