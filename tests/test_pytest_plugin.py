"""The pytest plugin, run by pytester as a user would: real captures of a real SDK server restarting.

The inner tests start tests/ci_scenario.py (official-SDK server and clients, one
restart) while the ``mcpsniff_capture`` fixture records it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mcpsniff.capture.live import LiveCapture
from mcpsniff.errors import CaptureError

pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent

INNER = '''
import os, subprocess, sys
from mcp_lab import free_port
from mcpsniff.pytest_plugin import assert_all_rebound

SCENARIO = {scenario!r}


def run(port, *args, url=None):
    env = dict(os.environ, MCPSNIFF_URL=url) if url else dict(os.environ)
    subprocess.run([sys.executable, SCENARIO, "--port", str(port), *args], env=env, check=True, timeout=120)


def test_healthy_through_the_proxy(mcpsniff_capture):
    port = free_port()
    with mcpsniff_capture(port, via="proxy") as cap:
        run(port, url=cap.url)
    assert_all_rebound(cap.analysis, within=30)
    assert [ns.name for ns in cap.analysis.namespaces] == ["tasks", "sprint"]


def test_stale_on_loopback(mcpsniff_capture):
    port = free_port()
    cap = mcpsniff_capture(port)
    run(port, "--stale", "sprint")
    assert_all_rebound(cap)


def test_fails_for_its_own_reason(mcpsniff_capture):
    mcpsniff_capture(free_port())
    assert False, "boom"
'''


def test_fixture_helper_and_failure_report(pytester: pytest.Pytester, tmp_path: Path) -> None:
    try:
        LiveCapture([9], tmp_path / "probe.pcapng").start().stop()
    except CaptureError as exc:
        pytest.skip(f"loopback capture unavailable: {exc}")
    pytester.syspathinsert(TESTS)
    pytester.makepyfile(test_inner=INNER.format(scenario=str(TESTS / "ci_scenario.py")))
    artifacts = tmp_path / "artifacts"
    junit = tmp_path / "inner.xml"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--mcpsniff-artifacts={artifacts}", f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()

    # assert_all_rebound names the namespace, the stall point, the signature and the report
    result.stdout.fnmatch_lines(["*not every namespace rebound (every namespace rebound)*",
                                 "*sprint: stalled at *POST /sprint/mcp (tools/call) -> 404*[[]stale-session-loop[]]*",
                                 "*report: *test_stale_on_loopback*report.html*"])
    assert "tasks:" not in out.split("not every namespace rebound")[1].split("report:")[0]  # tasks rebound
    # one concise message per failing namespace: its explanation and advice, not the plugin's frame nor a huge repr
    failure = re.split(r"_{3,} test_\w+ _{3,}", out.split("_ test_stale_on_loopback _", 1)[1])[0]
    assert "the server no longer knows the old session id" in failure and "advice: On 404 for a request with a session id" in failure
    assert "def assert_all_rebound" not in failure and "__tracebackhide__" not in failure
    assert "NamespaceLifecycle(" not in out and "Exchange(" not in out and len(failure) < 6000, failure

    # every failed test gets a "mcpsniff" section with the capture and report paths, and the report exists
    assert len(re.findall(r"^-+ mcpsniff -+$", out, re.MULTILINE)) == 2, out
    assert len(re.findall(r"^capture of port \d+ \(loopback\): .*capture.pcapng$", out, re.MULTILINE)) == 2, out
    stale_dir = next(artifacts.glob("*test_stale_on_loopback*"))
    assert (stale_dir / "capture.pcapng").stat().st_size > 0
    assert "stale-session-loop" in (stale_dir / "report.html").read_text()
    boom_dir = next(artifacts.glob("*test_fails_for_its_own_reason*"))
    assert (boom_dir / "report.html").exists()  # analyzed at failure time, although the test never asked
    assert (next(artifacts.glob("*test_healthy_through_the_proxy*")) / "capture.jsonl").stat().st_size > 0

    # and the report path is a JUnit property of the failed tests
    props = {case.get("name"): [p.get("value") for p in case.iter("property") if p.get("name") == "mcpsniff_report"]
             for case in ET.parse(junit).getroot().iter("testcase")}
    assert props["test_stale_on_loopback"] == [str(stale_dir / "report.html")]
    assert props["test_healthy_through_the_proxy"] == []
