"""The HTML report as a file: self-contained, strict CSP, escaped, redacted, shipped in the wheel."""

from __future__ import annotations

import base64
import hashlib
from html import unescape
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REAL, REPO, real_analysis, truth
from report_synth import HOSTILE, TOKEN, leaky_analysis, sid

from mcpsniff.cli import main
from mcpsniff.config import parse_config
from mcpsniff.errors import BadInputError
from mcpsniff.report.html import embed_json, render_html, report_data, write_html
from mcpsniff.report.redact import Redactor

SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


def scripts(html: str) -> list[tuple[str, str]]:
    return SCRIPT_RE.findall(html)


def data_of(html: str) -> dict:
    """The embedded data, with the bodies (kept in a block of their own) back under "bodies"."""
    blocks = {re.search(r'id="([^"]+)"', a).group(1): json.loads(b) for a, b in scripts(html) if "application/json" in a}
    return {**blocks["mcpsniff-data"], "bodies": blocks["mcpsniff-bodies"]}


def test_one_file_with_strict_csp_pinning_our_only_script(sample) -> None:
    html = render_html(sample)
    csp = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["form-action"] == "'none'" and directives["base-uri"] == "'none'"
    found = scripts(html)
    assert [a.strip() for a, _ in found] == ['type="application/json" id="mcpsniff-data"', 'type="application/json" id="mcpsniff-bodies"', ""]
    code = found[2][1]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert directives["script-src"] == f"'sha256-{digest}'"
    # nothing that could fetch: no external URLs in attributes or CSS
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<link" not in html.lower() and "@import" not in html and "url(" not in html


def test_summary_and_stall_point_are_server_rendered(sample) -> None:
    html = render_html(sample)
    row = re.search(r'<tr class="verdict-stalled" data-ns="2">(.*?)</tr>', html, re.S).group(1)
    assert "sprint" in row and "stale-session-loop" in row
    stall = sample.namespaces[2].diagnosis.stall_point
    # the stall link is a deep link: it selects the stall point and zooms to it
    assert f'href="#x={stall.xid}&amp;t=8.000..23.020"' in row and "POST /sprint/mcp (tools/call) -&gt; 404 at +17.02s" in row
    assert html.count('class="verdict-rebound"') == 3
    card = re.search(r'<details class="stall-card fold" id="stall-2"[^>]*>(.*?)</details>\s*<section', html, re.S).group(1)
    assert "kept sending requests with its old session id" in card
    assert "Compare with tasks" in card  # the sibling view, offered for each sibling that rebound
    # times relative to the capture start, as a reader expects them
    cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r'<td class="time">(.*?)</td>', html, re.S)]
    assert cells[:3] == ["+15.20 s", "+1.80 s", "1.99 s"]  # tasks: server back, first try after it, rebind
    assert "+-" not in html and "+15.20 s" in html


def test_embedded_data_holds_the_timeline(sample) -> None:
    data = data_of(render_html(sample))
    assert [ns["name"] for ns in data["ns"]] == ["tasks", "dev-agents", "sprint", "ci-infra"]
    assert len(data["ex"]) == sum(len(ns.exchanges) for ns in sample.namespaces)
    sprint = data["ns"][2]
    assert sprint["verdict"] == "stalled" and sprint["stall"]["xid"] in {ex["i"] for ex in data["ex"]}
    assert sprint["div"] == {"t": sprint["stall"]["t"], "sib": [0, 1, 3], "text": sample.namespaces[2].diagnosis.divergence.text}
    assert data["ns"][0]["reb"] == pytest.approx(17.02 + 0.17, abs=0.01) and data["ns"][0]["back"] == 15.2
    assert data["restarts"] == [{"down": 10.0, "back": 15.2, "good": 9.7, "refused": 8, "resets": 4}]
    sx = data["sx"]
    stream = next(ex for ex in data["ex"] if sx[ex["m"]] == "GET")
    assert stream["ev"] and stream["st"] == 1
    assert isinstance(stream["qh"], int) and all(isinstance(i, int) for i in data["hs"][stream["qh"]])  # header sets interned once
    assert len(data["hp"]) < 60 and len(data["hs"]) < 40 and len(sx) < 100  # methods, targets, session ids: once each
    heartbeat = next(ev for ev in stream["ev"] if ev[2] is not None)
    assert sx[heartbeat[1]] == "notifications/message" and "heartbeat" in data["bodies"][heartbeat[2]]
    call = next(ex for ex in data["ex"] if sx[ex["rpc"]] == "tools/call")
    assert json.loads(data["bodies"][call["qb"]])["params"]["name"] == "echo"  # bodies in a block of their own


def _rows_redacted_twice(analysis, config=None, share=False):  # type: ignore[no-untyped-def]
    """The reference: redact a whole copy first (as HAR and OTLP do), then convert it."""
    safe = Redactor(config, share).apply(analysis)
    return report_data(safe)


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("which", ["sample", "hostile", "leaky", "one-stale", "mixed-eras"])
def test_rows_redacted_on_the_way_equal_a_redacted_copy(which: str, share: bool, sample, hostile) -> None:
    """The report redacts each exchange as it converts it (one pass over a big capture): it must
    give exactly what redacting a whole copy first gives, for every field of every exchange."""
    analysis = {"sample": sample, "hostile": hostile}.get(which) or (leaky_analysis() if which == "leaky" else real_analysis(which))
    config = parse_config({"redact": {"patterns": ["heartbeat"], "headers": ["x-tenant"]}})
    html = render_html(analysis, config, share=share)
    assert data_of(html) == json.loads(embed_json(_rows_redacted_twice(analysis, config, share)))


@pytest.mark.parametrize("text", HOSTILE + ["\u2028", "</SCRIPT >", "<!--", "]]>", "\ud800"])
def test_embed_json_cannot_break_out(text: str) -> None:
    out = embed_json({"k": text})
    assert not set(out) & set("<>&\u2028\u2029")
    assert json.loads(out) == {"k": text}


def test_hostile_capture_stays_text(hostile) -> None:
    html = render_html(hostile)
    assert len(scripts(html)) == 3
    lowered = html.lower()
    for needle in ("<img", "<iframe", "<svg", "<link", "<!--", "<script>alert"):
        assert needle not in lowered, needle
    card = re.search(r'<details class="stall-card[^>]*>(.*?)</details>\s*<section', html, re.S).group(1)
    assert "{{ 7*7 }}{% raw %}" in card  # template syntax from the capture is not evaluated
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card  # markup is visible as text
    assert data_of(html)["ns"][2]["name"] == "sprint<script>alert(6)</script>"


def test_secrets_redacted_by_default_and_sessions_with_share(sample, tmp_path) -> None:
    plain = render_html(sample)
    assert TOKEN not in plain and "Bearer [REDACTED]" in plain
    assert sid("sprint", 1) in plain  # sessions are kept unless sharing
    shared = render_html(sample, share=True)
    assert sid("sprint", 1) not in shared and "127.0.0.1" not in shared and "/home/alice" not in shared
    data = data_of(shared)
    assert {g["sid"] for ns in data["ns"] for g in ns["gens"]} == {f"S{i}" for i in range(1, 8)}
    config = parse_config({"redact": {"patterns": ["heartbeat"]}})
    assert "heartbeat" in plain and "heartbeat" not in render_html(sample, config)


def test_write_html_errors_are_one_liners(sample, tmp_path) -> None:
    write_html(sample, tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(BadInputError, match="cannot write the report"):
        write_html(sample, tmp_path / "missing-dir" / "r.html")


# ---- real captures, through the CLI ---------------------------------------------------------


@pytest.mark.parametrize("name", ["one-stale", "healthy-cc"])
def test_report_command_on_real_captures(name: str, tmp_path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(REAL / name / "capture.pcap"), "-o", str(out)])
    stalled = {ns for ns, t in truth(name)["namespaces"].items() if t["expected"] == "stalled"}
    assert result.exit_code == (1 if stalled else 0), result.output
    assert f"HTML report: {out}" in result.output
    data = data_of(out.read_text(encoding="utf-8"))
    assert {ns["name"] for ns in data["ns"] if ns["stall"]} == stalled
    assert len(data["ex"]) == sum(len(ns.exchanges) for ns in real_analysis(name).namespaces)


def test_report_command_bad_input_exits_2(tmp_path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_text("not a capture")
    result = CliRunner().invoke(main, ["report", str(junk), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.output.startswith("mcpsniff: error:") and "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is needed to build and install the wheel")
def test_report_from_installed_wheel(tmp_path) -> None:
    """Templates ship inside the wheel: render from a fresh venv, far from the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    run = lambda *cmd, **kw: subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300, env=env, **kw)  # noqa: E731
    run("uv", "build", "--wheel", "--out-dir", str(tmp_path / "dist"), cwd=REPO)
    wheel = next((tmp_path / "dist").glob("mcpsniff-*.whl"))
    run("uv", "venv", "--quiet", "--python", sys.executable, str(tmp_path / "venv"))
    python = tmp_path / "venv" / "bin" / "python"
    run("uv", "pip", "install", "--quiet", "--python", str(python), str(wheel))
    out = tmp_path / "report.html"
    proc = subprocess.run([str(python), "-m", "mcpsniff", "report", str(REAL / "one-stale" / "capture.pcap"), "-o", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    where = subprocess.run([str(python), "-c", "from mcpsniff.report.html import _template_dir; print(_template_dir())"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env, check=True).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")) and where.endswith("mcpsniff/templates")
    data = data_of(out.read_text(encoding="utf-8"))
    assert [ns["name"] for ns in data["ns"] if ns["stall"]] == ["sprint"]
