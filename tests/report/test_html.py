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
from report_synth import HOSTILE, TOKEN, sid

from mcpsniff.cli import main
from mcpsniff.config import parse_config
from mcpsniff.errors import BadInputError
from mcpsniff.report.html import embed_json, render_html, write_html

SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


def scripts(html: str) -> list[tuple[str, str]]:
    return SCRIPT_RE.findall(html)


def data_of(html: str) -> dict:
    attrs, body = next((a, b) for a, b in scripts(html) if 'id="mcpsniff-data"' in a)
    return json.loads(body)


def test_one_file_with_strict_csp_pinning_our_only_script(sample) -> None:
    html = render_html(sample)
    csp = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["form-action"] == "'none'" and directives["base-uri"] == "'none'"
    found = scripts(html)
    assert [a.strip() for a, _ in found] == ['type="application/json" id="mcpsniff-data"', ""]
    code = found[1][1]
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert directives["script-src"] == f"'sha256-{digest}'"
    # nothing that could fetch: no external URLs in attributes or CSS
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<link" not in html.lower() and "@import" not in html and "url(" not in html


def test_summary_and_stall_point_are_server_rendered(sample) -> None:
    html = render_html(sample)
    row = re.search(r'<tr class="verdict-stalled" data-ns="2">(.*?)</tr>', html, re.S).group(1)
    assert "sprint" in row and "stale-session-loop" in row
    assert 'href="#stall-2"' in row and "POST /sprint/mcp (tools/call) -&gt; 404 at +17.02s" in row
    assert html.count('class="verdict-rebound"') == 3
    card = re.search(r'<section class="stall-card" id="stall-2"[^>]*>(.*?)</section>', html, re.S).group(1)
    assert "kept sending requests with its old session id" in card
    assert "+15.20 s" in html  # when the server came back


def test_embedded_data_holds_the_timeline(sample) -> None:
    data = data_of(render_html(sample))
    assert [ns["name"] for ns in data["ns"]] == ["tasks", "dev-agents", "sprint", "ci-infra"]
    assert len(data["ex"]) == sum(len(ns.exchanges) for ns in sample.namespaces)
    sprint = data["ns"][2]
    assert sprint["verdict"] == "stalled" and sprint["stall"]["xid"] in {ex["i"] for ex in data["ex"]}
    assert data["restarts"] == [{"down": 10.0, "back": 15.2, "good": 9.7, "refused": 8, "resets": 4}]
    stream = next(ex for ex in data["ex"] if ex["m"] == "GET")
    assert stream["ev"] and stream["st"] == 1
    assert all(isinstance(i, int) for i in stream["qh"])  # header pairs are interned once
    assert len(data["hp"]) < 60


@pytest.mark.parametrize("text", HOSTILE + ["\u2028", "</SCRIPT >", "<!--", "]]>", "\ud800"])
def test_embed_json_cannot_break_out(text: str) -> None:
    out = embed_json({"k": text})
    assert not set(out) & set("<>&\u2028\u2029")
    assert json.loads(out) == {"k": text}


def test_hostile_capture_stays_text(hostile) -> None:
    html = render_html(hostile)
    assert len(scripts(html)) == 2
    lowered = html.lower()
    for needle in ("<img", "<iframe", "<svg", "<link", "<!--", "<script>alert"):
        assert needle not in lowered, needle
    card = re.search(r'<section class="stall-card"[^>]*>(.*?)</section>', html, re.S).group(1)
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
