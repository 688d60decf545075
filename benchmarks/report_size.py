"""Size and speed of the HTML report for a capture with 100,000 events.

Not a test: prints numbers (goals: render_html at most 4 s, interactive in Chromium
under 2.5 s, a zoom redraw under 30 ms).  Builds an Analysis like the real
``one-stale`` capture (four namespaces, a restart, ``sprint`` stuck in a 404 loop) but
with a tool call every 100 ms for long enough to reach ``--events`` events (exchanges +
SSE events), renders it with ``render_html`` (redaction included) and opens it in
headless Chromium (Debian's /usr/bin/chromium), timing until the viewer is ready, a
zoom redraw, the request table catching up with the zoom, a text search over every
body and a scroll of the table.  It also checks that the rendered summary reads right
(server back, first try and rebind in seconds from the capture start) and exits 1 if
not.  For scale it prints the size of the same analysis as `mcpsniff analyze --format json`.

  uv run python benchmarks/report_size.py                  # 100,000 events
  uv run python benchmarks/report_size.py --events 20000 --keep /tmp/r.html
"""

from __future__ import annotations

import argparse
import html as htmllib
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))

from report_synth import build_analysis  # noqa: E402

from mcpsniff.report.html import render_html  # noqa: E402
from mcpsniff.report.jsondoc import render_json  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


def events_of(analysis) -> int:
    return sum(1 + len(ex.events) for ns in analysis.namespaces for ex in ns.exchanges)


def build(target: int):
    """Grow the capture until it holds ``target`` events (exchanges + SSE events)."""
    per_second = events_of(build_analysis(duration=100.0, interval=0.1, t_down=40.0, t_back=45.2)) / 100.0
    duration = target / per_second
    return build_analysis(duration=duration, interval=0.1, t_down=duration * 0.4, t_back=duration * 0.4 + 5.2)


def check_summary(html: str, analysis) -> list[str]:  # type: ignore[no-untyped-def]
    """What a reader of the summary would notice if the synthetic capture were wrong."""
    problems = []
    back = analysis.restarts[0].t_back - analysis.t0
    length = analysis.t_last - analysis.t0
    for row in re.findall(r'<tr class="verdict-[^"]+" data-ns="\d+">(.*?)</tr>', html, re.S):
        name = htmllib.unescape(re.sub(r"<[^>]+>", "", re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1))).strip()
        cells = [htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r'<td class="time">(.*?)</td>', row, re.S)]
        if len(cells) != 3:
            problems.append(f"{name}: expected 3 time cells, got {cells}")
            continue
        server_back, first_try, rebind = cells
        if server_back != f"+{back:.2f} s":
            problems.append(f"{name}: server back {server_back!r}, expected +{back:.2f} s")
        for label, cell in (("first try", first_try), ("rebind", rebind)):
            if cell != "–" and not (re.fullmatch(r"\+?\d+\.\d\d s", cell) and 0 <= float(cell.lstrip("+").split()[0]) <= length):
                problems.append(f"{name}: {label} {cell!r} is not a time within the capture")
    if "+-" in html:
        problems.append("a time shows as '+-'")
    return problems


def open_in_chromium(path: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            start = time.perf_counter()
            page.goto(path.as_uri(), timeout=120_000)
            page.wait_for_selector("html[data-ready='1']", timeout=120_000)
            wall = time.perf_counter() - start
            ready = page.evaluate("performance.getEntriesByName('mcpsniff-ready')[0].startTime") / 1000
            redraw = page.evaluate("(() => { const v = mcpsniffReport.view(), t = performance.now(); mcpsniffReport.setView(v[0], v[1] / 2); return performance.now() - t; })()") / 1000
            redraws = page.evaluate("""(() => { const out = [], v = mcpsniffReport.view();
                for (let i = 0; i < 10; i++) { const t = performance.now(); mcpsniffReport.setView(v[0] + i, v[1] / (1 + i / 5)); out.push(performance.now() - t); }
                return Math.max(...out); })()""") / 1000
            page.wait_for_timeout(400)  # the table catches up with the zoom once zooming settles (debounced)
            table = page.evaluate("""(() => { const box = document.getElementById('rt-range'), t = performance.now();
                box.click(); box.click(); return performance.now() - t; })()""") / 2000
            search = page.evaluate("""(() => { const s = document.getElementById('search'); s.value = 'heartbeat'; const t = performance.now();
                s.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); const d = performance.now() - t; s.value = '';
                s.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); return d; })()""") / 1000
            scroll = page.evaluate("""(() => { const b = document.getElementById('rt-body'), t = performance.now();
                b.scrollTop = b.scrollHeight / 2; b.dispatchEvent(new Event('scroll')); b.getBoundingClientRect(); return performance.now() - t; })()""") / 1000
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") / 1e6
        finally:
            browser.close()
    return {"wall": wall, "ready": ready, "redraw": redraw, "redraws": redraws, "table": table, "search": search, "scroll": scroll, "heap": heap}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="also keep the report here")
    args = ap.parse_args()

    analysis = build(args.events)
    n_ex = sum(len(ns.exchanges) for ns in analysis.namespaces)
    print(f"analysis: {events_of(analysis):,} events ({n_ex:,} exchanges), {analysis.t_last - analysis.t0:,.0f} s of capture")
    t, cpu = time.perf_counter(), time.process_time()
    html = render_html(analysis)
    render_s, render_cpu = time.perf_counter() - t, time.process_time() - cpu
    json_size = len(render_json(analysis).encode())
    size = len(html.encode())
    print(f"render_html: {render_s:.2f} s ({render_cpu:.2f} s CPU; redaction included)")
    print(f"report size: {size / 1e6:.1f} MB  ({size / events_of(analysis):.0f} B/event; "
          f"`analyze --format json` of the same analysis: {json_size / 1e6:.1f} MB, ratio html/json {size / json_size:.2f})")
    problems = check_summary(html, analysis)
    print("summary: " + ("reads right (server back, first try, rebind)" if not problems else "WRONG: " + "; ".join(problems)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep or Path(tmp) / "report.html").resolve()
        path.write_text(html, encoding="utf-8")
        m = open_in_chromium(path)
    print(f"headless Chromium: interactive {m['ready']:.2f} s after navigation start ({m['wall']:.2f} s wall from goto), "
          f"one zoom redraw {m['redraw'] * 1000:.0f} ms (worst of 10: {m['redraws'] * 1000:.0f} ms), JS heap {m['heap']:.0f} MB")
    print(f"request table: refilled for a zoom in {m['table'] * 1000:.0f} ms, text search over every body {m['search'] * 1000:.0f} ms, "
          f"scroll {m['scroll'] * 1000:.1f} ms")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
