"""Reports opened in real headless Chromium (Debian's /usr/bin/chromium via playwright)."""

from __future__ import annotations

import os

import pytest
from conftest import CHROMIUM, REAL_CAPTURES, real_analysis, render, truth

from mcpsniff.analysis.model import Analysis

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium)")


def test_stall_marker_details_zoom_and_filters(sample, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(sample, tmp_path / "r.html"))
    page = o.page
    # the stall marker: present for the stalled namespace only, with its signature
    markers = page.locator(".stall-marker")
    assert markers.count() == 1 and markers.get_attribute("data-ns") == "2"
    assert markers.locator(".flag").inner_text() == "⚑ stall: stale-session-loop"
    assert markers.is_visible()
    page.screenshot(path=str(artifacts / "report-synthetic.png"), full_page=True)

    # click a tool call: headers and the pretty-printed JSON body
    call = next(ex for ex in sample.namespaces[0].exchanges if ex.rpc_methods == ["tools/call"])
    o.click_exchange(call.xid)
    text = o.details()
    assert page.get_attribute("#details", "data-selected") == call.xid
    assert "tasks: POST tools/call → 200" in text and "REQUEST HEADERS" in text.upper()
    assert "mcp-protocol-version" in text and "Bearer [REDACTED]" in text
    assert '"name": "echo"' in text  # body re-indented as JSON

    # click an SSE tick on a GET stream: its data is shown and highlighted
    stream = next(ex for ex in sample.namespaces[1].exchanges if ex.method == "GET")
    page.evaluate("mcpsniffReport.setView(0, 12)")
    o.click_exchange(stream.xid, tick=2)
    assert page.get_attribute("#details", "data-selected") == stream.xid
    assert page.locator("#details tr.hl").inner_text().count("dev-agents heartbeat") == 1

    # zoom: buttons, wheel around the cursor, drag to pan, fit
    page.click("#zoom-fit")
    full = o.view()
    page.click("#zoom-in")
    v = o.view()
    assert v[1] - v[0] == pytest.approx((full[1] - full[0]) / 2)
    box = page.locator("#tl canvas").bounding_box()
    page.mouse.move(box["x"] + 700, box["y"] + 120)
    page.mouse.wheel(0, -400)
    zoomed = o.view()
    assert zoomed[1] - zoomed[0] < v[1] - v[0]
    page.mouse.down()
    page.mouse.move(box["x"] + 900, box["y"] + 120, steps=4)
    page.mouse.up()
    panned = o.view()
    assert panned[0] < zoomed[0] and panned[1] - panned[0] == pytest.approx(zoomed[1] - zoomed[0])
    page.click("#zoom-fit")
    assert o.view() == full

    # filter by namespace: the stalled lane and its marker go away
    total = page.inner_text("#count")
    page.uncheck("#ns-filter input[data-ns='2']")
    assert page.locator(".stall-marker").is_hidden()
    assert page.inner_text("#count") != total
    page.check("#ns-filter input[data-ns='2']")
    assert page.locator(".stall-marker").is_visible()
    # filter by JSON-RPC method: only the initializes are left
    inits = sum(ex.rpc_methods == ["initialize"] for ns in sample.namespaces for ex in ns.exchanges)
    page.select_option("#method-filter", "initialize")
    assert page.inner_text("#count") == f"showing {inits} of {sum(len(ns.exchanges) for ns in sample.namespaces)} exchanges"

    assert o.errors == [] and o.dialogs == [] and o.foreign_requests() == []


def test_summary_link_jumps_to_the_stall_point(sample, tmp_path, open_report) -> None:
    o = open_report(render(sample, tmp_path / "r.html"))
    stall = sample.namespaces[2].diagnosis.stall_point
    o.page.click("table.summary-table a.stall-link")
    v0, v1 = o.view()
    assert v0 < stall.t - sample.t0 < v1 and v1 - v0 < 60
    assert o.page.get_attribute("#details", "data-selected") == stall.xid
    assert "Stall point of sprint: stale-session-loop" in o.details()
    assert "kept sending requests with its old session id" in o.details()


def test_hostile_capture_runs_nothing_and_fetches_nothing(hostile, tmp_path, open_report, artifacts) -> None:
    o = open_report(render(hostile, tmp_path / "hostile.html"))
    page = o.page
    # show every kind of capture content: a hostile exchange with SSE data, and the stall
    evil = next(ns for ns in hostile.namespaces if ns.name.startswith("sprint")).exchanges[5]
    page.evaluate("([a, b]) => mcpsniffReport.setView(a, b)", [evil.t - hostile.t0 - 0.05, evil.t - hostile.t0 + 0.05])
    o.click_exchange(evil.xid, tick=0)
    assert "<script>alert(1)</script>" in o.details()  # shown as text
    page.click("table.summary-table a.stall-link")
    page.hover("#tl canvas")
    page.wait_for_timeout(200)
    page.screenshot(path=str(artifacts / "report-hostile.png"), full_page=True)
    # the viewer's own views of the same data: table rows, search, sibling view, keyboard, copy link, theme
    page.fill("#search", "<img src=x onerror=alert(9)>")
    page.press("#search", "Enter")  # applied now, not after the typing debounce (the capture has < 200 exchanges anyway)
    page.wait_for_function("() => mcpsniffReport.state().rows > 0 && mcpsniffReport.state().shown < 200")
    page.uncheck("#rt-range")
    rows = o.visible_rows()
    assert rows and all("tools/call<img src=x onerror=alert(9)>" in r["JSON-RPC / MCP"] for r in rows)  # as text
    page.click(f"#rt-body .rt-row[data-xid='{rows[0]['xid']}']")
    assert "onerror=alert(9)" in o.details()
    page.fill("#search", "")
    page.click("button.compare >> nth=0")
    assert o.state()["sibling"][0].startswith("sprint<script>")
    page.focus("#tl")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.click("#copy-link")
    page.click("#theme-toggle")
    page.screenshot(path=str(artifacts / "report-hostile-viewer.png"), full_page=True)
    page.evaluate("location.hash = '#x=' + encodeURIComponent('<img src=x onerror=alert(13)>') + '&t=1..2&cmp=constructor.__proto__'")
    page.wait_for_timeout(200)
    assert o.dialogs == []
    assert o.foreign_requests() == []
    assert o.errors == []  # no CSP violation: nothing even tried to run or load
    assert page.evaluate("document.querySelectorAll('img, iframe, svg, object, embed, link, script').length") == 3  # our data, bodies and script
    assert page.title().startswith("mcpsniff report")
    # method names are data, not object keys: each one is offered and filters
    assert {"__proto__", "constructor"} <= set(page.eval_on_selector_all("#method-filter option", "os => os.map(o => o.value)"))
    page.select_option("#method-filter", "__proto__")
    proto = sum("__proto__" in ex.rpc_methods for ns in hostile.namespaces for ex in ns.exchanges)
    assert proto > 0 and page.inner_text("#count").startswith(f"showing {proto} of ")


def test_empty_analysis_opens(tmp_path, open_report) -> None:
    o = open_report(render(Analysis(sources=["empty.pcap"], t0=0.0, t_last=0.0, namespaces=[]), tmp_path / "empty.html"))
    assert "No server restart was seen" in o.page.inner_text(".summary")
    assert o.page.inner_text("#count") == "showing 0 of 0 exchanges"
    assert o.errors == [] and o.dialogs == []


def test_csp_blocks_a_script_that_slipped_through(sample, tmp_path, open_report) -> None:
    """Defence in depth: were escaping ever broken, the CSP would still stop the script."""
    path = render(sample, tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    path.write_text(html.replace("</main>", "</main><script>document.title='pwned'</script><img src='https://example.com/x.png'>"), encoding="utf-8")
    o = open_report(path)
    assert o.page.title() != "pwned"
    assert o.foreign_requests() == ["https://example.com/x.png"] and o.failed == {"https://example.com/x.png": "csp"}  # reported, never sent
    assert any("Content Security Policy" in e for e in o.errors)


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_capture_reports(name: str, tmp_path, open_report, artifacts) -> None:
    analysis = real_analysis(name)
    o = open_report(render(analysis, tmp_path / f"{name}.html"))
    stalled = {ns for ns, t in truth(name)["namespaces"].items() if t["expected"] == "stalled"}
    index = {ns.name: i for i, ns in enumerate(analysis.namespaces)}
    marked = {o.page.get_attribute(f".stall-marker >> nth={i}", "data-ns") for i in range(o.page.locator(".stall-marker").count())}
    assert marked == {str(index[ns]) for ns in stalled}
    for ns in truth(name)["namespaces"]:
        assert o.page.locator(f".stall-marker[data-ns='{index[ns]}']").count() == (ns in stalled)
    if stalled:
        o.page.click("table.summary-table a.stall-link")
        assert "Stall point of" in o.details()
    first = analysis.namespaces[0].exchanges[0]
    o.page.evaluate("mcpsniffReport.setView(-0.05, 0.4)")
    o.click_exchange(first.xid)
    assert "REQUEST HEADERS" in o.details().upper()
    o.page.screenshot(path=str(artifacts / f"report-{name}.png"), full_page=True)
    assert o.errors == [] and o.dialogs == [] and o.foreign_requests() == []
