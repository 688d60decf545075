"""Size and opening speed of the HTML report for a capture with 100,000 events.

Not a test: prints numbers.  Builds an Analysis like the real ``one-stale`` capture
(four namespaces, a restart, ``sprint`` stuck in a 404 loop) but with a tool call
every 100 ms for long enough to reach ``--events`` events (exchanges + SSE events),
renders it with ``render_html`` and opens it in headless Chromium (Debian's
/usr/bin/chromium), timing until the timeline is drawn and answers a zoom.
For scale it prints the size of the same analysis as `mcpsniff analyze --format json`.

  uv run python benchmarks/report_size.py                  # 100,000 events
  uv run python benchmarks/report_size.py --events 20000 --keep /tmp/r.html
"""

from __future__ import annotations

import argparse
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
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0") / 1e6
        finally:
            browser.close()
    return {"wall": wall, "ready": ready, "redraw": redraw, "heap": heap}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, help="also keep the report here")
    args = ap.parse_args()

    analysis = build(args.events)
    n_ex = sum(len(ns.exchanges) for ns in analysis.namespaces)
    print(f"analysis: {events_of(analysis):,} events ({n_ex:,} exchanges), {analysis.t_last - analysis.t0:,.0f} s of capture")
    t = time.perf_counter()
    html = render_html(analysis)
    render_s = time.perf_counter() - t
    json_size = len(render_json(analysis).encode())
    size = len(html.encode())
    print(f"render_html: {render_s:.2f} s")
    print(f"report size: {size / 1e6:.1f} MB  ({size / events_of(analysis):.0f} B/event; "
          f"`analyze --format json` of the same analysis: {json_size / 1e6:.1f} MB, ratio html/json {size / json_size:.2f})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep or Path(tmp) / "report.html").resolve()
        path.write_text(html, encoding="utf-8")
        m = open_in_chromium(path)
    print(f"headless Chromium: interactive {m['ready']:.2f} s after navigation start ({m['wall']:.2f} s wall from goto), "
          f"one zoom redraw {m['redraw'] * 1000:.0f} ms, JS heap {m['heap']:.0f} MB")


if __name__ == "__main__":
    main()
