"""`mcpsniff analyze` against one synthetic capture per stall signature (tests/scenarios.py).

Each scenario has four namespaces; one shows a signature and the others rebind.  The
CLI's JSON must give every namespace its expected verdict and signature, and pinpoint the
stalled one's stall point (frame, method, path, result).  The same capture written with
other link types, IPv6, pcapng and duplicated loopback copies must give the same answer.

The scenarios' own truth is checked on the wire with tshark (an independent dissector),
so a scenario that does not show its signature fails here, not in the analysis.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pcapbuilder import file_frame
from scenarios import SCENARIOS, START, Scenario

from mcpsniff.cli import main

REPO = Path(__file__).resolve().parents[2]
Built = Callable[..., tuple[Scenario, Path]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Builds each scenario once and writes each requested file variant once."""
    scenarios: dict[str, Scenario] = {}
    files: dict[tuple[str, str], Path] = {}
    folder = tmp_path_factory.mktemp("scenarios")

    def get(name: str, **options: Any) -> tuple[Scenario, Path]:
        if name not in scenarios:
            scenarios[name] = SCENARIOS[name]()
        key = (name, json.dumps(options, sort_keys=True))
        if key not in files:
            suffix = ".pcapng" if options.get("fmt") == "pcapng" else ".pcap"
            tag = "-".join(f"{k}={v}" for k, v in sorted(options.items()))
            files[key] = scenarios[name].write(folder / f"{name}{'-' + tag if tag else ''}{suffix}", **options)
        return scenarios[name], files[key]

    return get


def analyze_json(path: Path, *options: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json", *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {result.exit_code}): {result.output[-2000:]}")
    return result.exit_code, doc, result.output


def check_against(doc: dict[str, Any], sc: Scenario, lo_dup: bool = False) -> None:
    """Every namespace's verdict, signature, stall point and findings as the scenario says."""
    by_name = {ns["name"]: ns["diagnosis"] for ns in doc["namespaces"]}
    assert sorted(by_name) == sorted(sc.expected), f"namespaces reported: {sorted(by_name)}"
    for ns, exp in sc.expected.items():
        got = by_name[ns]
        where = f"{sc.name}/{ns}: {json.dumps(got)[:600]}"
        assert got["verdict"] == exp.verdict, where
        if exp.signature is not None:
            assert got["signature"] == exp.signature, where
        for finding in exp.findings:  # a finding is reported as "name: details"
            assert any(f.split(":")[0] == finding for f in got["findings"]), where
        if exp.stall is not None:
            point = got["stall_point"]
            assert point is not None, where
            want = exp.stall
            assert (point["frame"], point["method"], point["target"], point["rpc_method"], point["result"]) == (
                file_frame(want.frame, lo_dup),
                want.method,
                want.target,
                want.rpc_method,
                want.result,
            ), where
            assert point["t"] == pytest.approx(want.t, abs=1e-3), where


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_signature(name: str, built: Built) -> None:
    sc, path = built(name)
    code, doc, output = analyze_json(path)
    check_against(doc, sc)
    assert code == sc.exit_code, output[-2000:]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_full_output_gives_the_same_verdicts(name: str, built: Built) -> None:
    """--full only adds detail to the JSON; verdicts and stall points must not change."""
    sc, path = built(name)
    code, doc, output = analyze_json(path, "--full")
    check_against(doc, sc)
    assert code == sc.exit_code, output[-2000:]


VARIANTS = [
    {"link": "sll"},
    {"link": "sll2"},
    {"link": "null"},
    {"link": "raw"},
    {"ipv6": True},
    {"link": "null", "ipv6": True},
    {"fmt": "pcapng"},
    {"lo_dup": True},
    {"link": "sll2", "ipv6": True, "fmt": "pcapng", "lo_dup": True},
]


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_same_verdicts_in_every_file_variant(options: dict[str, Any], built: Built) -> None:
    """The base file (Ethernet, IPv4, pcap) is test_signature[dead-pooled-socket]."""
    sc, variant = built("dead-pooled-socket", **options)
    code, doc, output = analyze_json(variant)
    check_against(doc, sc, lo_dup=bool(options.get("lo_dup")))
    assert code == sc.exit_code, output[-2000:]


def test_real_subprocess(built: Built) -> None:
    """The installed entry point, as a user runs it."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    sc, path = built("stale-session-loop")
    proc = subprocess.run([uv, "run", "--frozen", "mcpsniff", "analyze", str(path), "--format", "json"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == sc.exit_code == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    check_against(json.loads(proc.stdout), sc)


# --------------------------------------------------------------------------- the scenarios' own truth


def tshark_rows(path: Path) -> list[dict[str, str]]:
    fields = ["frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags.fin", "tcp.flags.reset", "tcp.flags.syn", "tcp.len", "http.request.method", "http.request.uri", "http.response.code", "http.request_in", "tcp.analysis.flags"]
    cmd = ["tshark", "-r", str(path), "-o", "tcp.analyze_sequence_numbers:TRUE", "-o", "http.desegment_body:FALSE", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [dict(zip(fields, line.split("\t"))) for line in out.splitlines()]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_shows_its_signature_on_the_wire(name: str, built: Built) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (scripts/setup.sh installs it)")
    sc, path = built(name)
    rows = tshark_rows(path)
    assert len(rows) == len(sc.cap.segs)
    # sound TCP: tshark finds nothing wrong but the resets the scenarios make on purpose
    flagged = [r["frame.number"] for r in rows if r["tcp.analysis.flags"] and r["tcp.flags.reset"] != "1"]
    assert not flagged, f"tshark flags frames {flagged[:10]}"
    for ns, exp in sc.expected.items():
        sent = sc.sent[ns]
        later = [s for s in sent if s.t > sc.cap.t0 + START]
        calls_ok = [s for s in later if s.rpc_method == "tools/call" and s.ok]
        if exp.verdict == "rebound":
            inits = [s for s in later if s.rpc_method == "initialize" and s.ok]
            assert inits and calls_ok and calls_ok[0].t > inits[0].t, f"{ns} does not rebind"
        elif exp.verdict == "stalled":
            assert not calls_ok, f"{ns} has a successful call after the restart"
        if exp.stall is None:
            continue
        row = rows[exp.stall.frame - 1]
        assert (row["http.request.method"], row["http.request.uri"]) == (exp.stall.method, exp.stall.target), row
        stream, server = row["tcp.stream"], row["tcp.dstport"]
        after = [r for r in rows[exp.stall.frame :] if r["tcp.stream"] == stream]
        answers = [r["http.response.code"] for r in after if r["http.request_in"] == row["frame.number"]]
        from_server = [r for r in after if r["tcp.srcport"] == server]
        result = exp.stall.result
        status = result.split()[0].rstrip(",")
        assert answers == ([status] if status.isdigit() else []), (row, answers)
        if "reset" in result:
            assert any(r["tcp.flags.reset"] == "1" for r in from_server), row
        if "stream closed" in result:
            assert any(r["tcp.flags.fin"] == "1" for r in from_server), row
        if "no JSON-RPC response" in result:  # the headers, then nothing at all until the capture ends
            assert [r["tcp.len"] != "0" for r in from_server].count(True) == 1, row
            assert not any(r["tcp.flags.fin"] == "1" or r["tcp.flags.reset"] == "1" for r in after), row
