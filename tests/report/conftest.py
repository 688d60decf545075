"""Shared pieces for report tests: sample analyses and the real captures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from report_synth import build_analysis, hostile_analysis

from mcpsniff.analysis.model import Analysis
from mcpsniff.report.html import write_html

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "data" / "real"
ARTIFACTS = REPO / "test-artifacts"
REAL_CAPTURES = sorted(p.name for p in REAL.iterdir() if (p / "capture.pcap").exists()) if REAL.exists() else []


@pytest.fixture
def sample() -> Analysis:
    return build_analysis()


@pytest.fixture
def hostile() -> Analysis:
    return hostile_analysis()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def truth(name: str) -> dict:
    return json.loads((REAL / name / "truth.json").read_text())


_cache: dict[str, Analysis] = {}


def real_analysis(name: str) -> Analysis:
    """The real capture analyzed by the engine (bodies kept, as for the HTML report)."""
    if name not in _cache:
        from mcpsniff.api import analyze_files

        _cache[name] = analyze_files([REAL / name / "capture.pcap"], full=True)
    return _cache[name]


# ---- real headless Chromium (Debian's /usr/bin/chromium via playwright) ------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Opened:
    page: Any
    url: str
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # url -> why the browser did not fetch it
    errors: list[str] = field(default_factory=list)  # console errors (CSP violations land here) and page errors

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if u != self.url]

    def view(self) -> list[float]:
        return self.page.evaluate("mcpsniffReport.view()")

    def click_exchange(self, xid: str, tick: int | None = None) -> None:
        pt = self.page.evaluate("([x, t]) => mcpsniffReport.point(x, t)", [xid, tick])
        assert pt is not None, f"{xid} is not on the timeline"
        self.page.evaluate("y => window.scrollBy(0, y - innerHeight / 2)", pt["y"])  # bring it into the viewport
        pt = self.page.evaluate("([x, t]) => mcpsniffReport.point(x, t)", [xid, tick])
        self.page.mouse.click(pt["x"], pt["y"])

    def details(self) -> str:
        return self.page.inner_text("#details")

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("mcpsniffReport.state()")

    def visible_rows(self) -> list[dict[str, str]]:
        """The request table's rows in sight (it is virtualised: only those exist), with their cells."""
        return self.page.evaluate("""() => {
            const body = document.getElementById('rt-body'), box = body.getBoundingClientRect();
            const names = [...document.querySelectorAll('#rt-head [role=columnheader]')].map(c => c.textContent.replace(/[▲▼]/g, '').trim());
            return [...body.querySelectorAll('.rt-row')].filter(r => { const b = r.getBoundingClientRect(); return b.bottom > box.top + 1 && b.top < box.bottom - 1; })
              .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
              .map(r => Object.assign({xid: r.dataset.xid, selected: r.getAttribute('aria-selected')},
                                      Object.fromEntries([...r.children].map((c, i) => [names[i], c.textContent]))));
        }""")

    def wait_rows(self, count: int) -> None:
        self.page.wait_for_function("n => mcpsniffReport.state().rows === n", arg=count, timeout=10_000)


@pytest.fixture
def open_report(browser) -> Iterator[Any]:
    pages = []

    def _open(path: Path, width: int = 1500, height: int = 1000, fragment: str = "", color_scheme: str = "light") -> Opened:
        page = browser.new_page(viewport={"width": width, "height": height}, color_scheme=color_scheme)
        pages.append(page)
        o = Opened(page, path.resolve().as_uri())
        page.on("dialog", lambda d: (o.dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: o.requests.append(r.url.split("#")[0]))
        page.on("requestfailed", lambda r: o.failed.__setitem__(r.url, r.failure or ""))
        page.on("console", lambda m: o.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: o.errors.append(str(e)))
        page.goto(o.url + fragment)
        page.wait_for_selector("html[data-ready='1']", timeout=30_000)
        return o

    yield _open
    for page in pages:
        page.close()


def render(analysis: Analysis, path: Path, **kw: Any) -> Path:
    write_html(analysis, path, **kw)
    return path
