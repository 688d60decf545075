"""pytest plugin (entry point ``pytest11``): capture MCP traffic during a test and assert on the verdicts.

::

    from mcpsniff.pytest_plugin import assert_all_rebound

    def test_server_restart(mcpsniff_capture):
        with mcpsniff_capture(port=5076) as cap:      # loopback capture (root/CAP_NET_RAW)
            run_my_restart_scenario()                  # or via="proxy": clients use cap.url
        assert_all_rebound(cap.analysis, within=30)

When a test fails, the paths of its captures and HTML reports are added to the
failure output (section "mcpsniff") and to the test's JUnit properties.  Files go
to pytest's temporary folder, or to ``--mcpsniff-artifacts DIR`` (for CI uploads).
This module is imported by every pytest run in an environment where mcpsniff is
installed, so it imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

from .paths import output_dir

if TYPE_CHECKING:
    from .analysis.model import Analysis

_CAPTURES = pytest.StashKey[list["McpCapture"]]()
_REPORTS: dict[int, Path] = {}  # id(analysis) -> its report, for assertion messages


class McpCapture:
    """One running capture of ``port``; ``stop()`` ends it and returns the analysis (idempotent)."""

    def __init__(self, port: int, folder: Path, via: str = "loopback", iface: str = "lo", config: Path | None = None, proxy_port: int | None = None) -> None:
        if via not in ("loopback", "proxy"):
            raise ValueError(f"via must be 'loopback' or 'proxy', not {via!r}")
        self.port, self.via, self.iface, self.config_path = port, via, iface, config
        output_dir(folder, "capture folder")
        self.path = folder / ("capture.jsonl" if via == "proxy" else "capture.pcapng")
        self.report_path = folder / "report.html"
        self.url = f"http://127.0.0.1:{port}"  # where clients should connect (the proxy with via="proxy")
        self._analysis: Analysis | None = None
        self._handle: Any = None
        from .extras import require

        require("proxy" if via == "proxy" else "capture", f"mcpsniff_capture(via={via!r})")
        if via == "proxy":
            from .capture.proxy import start_proxy
            from .ci import free_port

            self.proxy_port = proxy_port or free_port()
            self._handle = start_proxy(self.proxy_port, self.url, self.path, config=config, log_path=folder / "proxy.log")
            self.url = f"http://127.0.0.1:{self.proxy_port}"
        else:
            from .capture.live import LiveCapture

            self._handle = LiveCapture([port], self.path, iface).start()

    @property
    def running(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        """Stop capturing without analyzing (the end of a test that never asked)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.stop()

    def stop(self) -> Analysis:
        """Stop capturing, analyze, write the HTML report; the same Analysis on every call."""
        self.close()
        if self._analysis is None:
            from .api import analyze_files
            from .config import load_config
            from .report.html import write_html

            config = load_config(self.config_path)
            self._analysis = analyze_files([self.path], config=config, ports=None if self.via == "proxy" else [self.port], full=True)
            write_html(self._analysis, self.report_path, config=config)
            _REPORTS[id(self._analysis)] = self.report_path
        return self._analysis

    @property
    def analysis(self) -> Analysis:
        return self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        return f"capture of port {self.port} ({self.via}): {self.path}\nreport: {self.report_path}"


def assert_all_rebound(target: Analysis | McpCapture, namespaces: str | list[str] | tuple[str, ...] = "all", within: float | None = None) -> None:
    """Fail unless every (or every named) namespace rebound after the restart, within ``within`` s if given.

    Stalled, unknown, not-affected (no restart seen) and missing namespaces fail; the
    message names each one's stall point and signature, and the report's path.
    """
    __tracebackhide__ = True  # the failure is the test's, not this helper's: pytest shows the test's line
    from .analysis.gate import ALL, GateRule, evaluate
    from .analysis.model import NOT_AFFECTED

    analysis = target.analysis if isinstance(target, McpCapture) else target
    require: str | tuple[str, ...] = ALL if namespaces == ALL else ((namespaces,) if isinstance(namespaces, str) else tuple(namespaces))
    gate = evaluate(analysis, GateRule(require, within))
    by_name = {ns.name: ns.diagnosis for ns in analysis.namespaces}
    problems = []
    for r in gate.failures:
        problems.append(f"  {r.name}: {r.message}")
        d = by_name.get(r.name)
        if d is not None and d.explanation:
            problems.append(f"    {d.explanation}")
        if d is not None and d.advice:
            problems.append(f"    advice: {d.advice}")
    problems += [f"  {p}" for p in gate.problems]
    problems += [f"  {r.name}: not affected by a restart (no restart seen in its traffic)" for r in gate.results if r.checked and r.verdict == NOT_AFFECTED]
    if problems:
        report = _REPORTS.get(id(analysis))
        where = f"\nreport: {report}" if report else ""
        raise AssertionError(f"not every namespace rebound ({gate.rule.describe()}):\n" + "\n".join(problems) + where)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mcpsniff")
    group.addoption("--mcpsniff-artifacts", dest="mcpsniff_artifacts", metavar="DIR", default=None,
                    help="keep the captures and HTML reports of the mcpsniff_capture fixture in DIR/<test>/ (default: pytest's tmp folder)")


def _folder(request: pytest.FixtureRequest, n: int) -> Path:
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-120:] + (f"-{n}" if n > 1 else "")
    root = request.config.getoption("mcpsniff_artifacts")
    if root:
        return output_dir(Path(root), "--mcpsniff-artifacts") / name  # DIR is made if its parent exists
    return request.getfixturevalue("tmp_path_factory").mktemp(f"mcpsniff-{name[-40:]}", numbered=True)


@pytest.fixture
def mcpsniff_capture(request: pytest.FixtureRequest) -> Iterator[Callable[..., McpCapture]]:
    """Start a capture: ``mcpsniff_capture(port, via="loopback"|"proxy", iface="lo", config=None)``.

    Returns a started McpCapture; it is stopped at the end of the test at the latest.
    """
    captures: list[McpCapture] = []
    request.node.stash[_CAPTURES] = captures

    def start(port: int, via: str = "loopback", iface: str = "lo", config: Path | None = None, proxy_port: int | None = None) -> McpCapture:
        cap = McpCapture(port, _folder(request, len(captures) + 1), via=via, iface=iface, config=config, proxy_port=proxy_port)
        captures.append(cap)
        return cap

    yield start
    for cap in captures:
        cap.close()
        if cap._analysis is not None:
            _REPORTS.pop(id(cap._analysis), None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    captures = item.stash.get(_CAPTURES, [])
    if report.when != "call" or not report.failed or not captures:
        return report
    lines = []
    for cap in captures:
        try:
            cap.stop()  # still running when the test failed: analyze now, so the report exists
        except Exception as exc:  # noqa: BLE001 - the test's own failure matters more
            lines.append(f"(could not analyze {cap.path}: {exc})")
        lines.append(cap.describe())
        item.user_properties.append(("mcpsniff_report", str(cap.report_path)))
    report.sections.append(("mcpsniff", "\n".join(lines)))
    return report
