"""`mcpsniff annotate`: the diagnosis as pcapng packet comments, checked with real tshark on real captures.

Every packet must come out unchanged (bytes, lengths, timestamp to the nanosecond), the
stall comment on the stall point's frame (the frame Wireshark shows the request in),
session starts on initialize requests, and the restart's down/back on packets of the
server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcpsniff.capture.pcap import FrameReader

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "data" / "real"

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is the oracle here (scripts/setup.sh installs it)")


def mcpsniff(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpsniff", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=300)


def tshark(pcap: Path, *args: str, check: bool = True) -> list[list[str]]:
    """(``check=False``: a capture cut short, which tshark reads up to the cut and then exits 2)"""
    out = subprocess.run(["tshark", "-r", str(pcap), *args], capture_output=True, text=True, check=check).stdout
    return [line.split("\t") for line in out.splitlines()]


def comments(pcap: Path) -> dict[int, list[str]]:
    """frame -> its comments, as tshark lists them (several comments of one packet: comma-separated)."""
    rows = tshark(pcap, "-Y", "frame.comment", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=\x1f", "-e", "frame.number", "-e", "frame.comment")
    return {int(number): text.split("\x1f") for number, text in rows}


def packets(pcap: Path, check: bool = True) -> list[list[str]]:
    """What must not change: every packet's time (ns), lengths and dissection."""
    return tshark(pcap, check=check, *("-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.protocols", "-e", "tcp.stream"))


def frames(pcap: Path) -> list[tuple[int, bytes]]:
    with FrameReader(pcap) as reader:
        return [(linktype, data) for _t, _n, linktype, data in reader]


@needs_tshark
def test_one_stale_comments_the_stall_sessions_and_restart(tmp_path: Path) -> None:
    src, out = REAL / "one-stale" / "capture.pcap", tmp_path / "annotated.pcapng"
    result = mcpsniff("annotate", src, "-o", out)
    assert result.returncode == 1, result.stderr  # sprint stalled, as analyze says
    assert f"annotated capture: {out.name}" not in result.stdout and "stalled: sprint" in result.stderr
    assert tshark(out, "-T", "fields", "-e", "frame.number")[-1] == tshark(src, "-T", "fields", "-e", "frame.number")[-1]
    assert packets(out) == packets(src)
    assert frames(out) == frames(src)
    notes = comments(out)
    (stall,) = [(f, c) for f, cs in notes.items() for c in cs if "STALLED" in c]
    assert stall[0] == 372 and stall[1].startswith("mcpsniff: sprint: STALLED here [stale-session-loop]") and "tcp.stream eq 33" in stall[1]
    request = tshark(out, "-Y", "frame.number == 372", "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri")
    assert request == [["POST", "/sprint/mcp"]]
    starts = {f for f, cs in notes.items() for c in cs if "starts with POST initialize" in c}
    assert len(starts) == 7  # 4 first sessions, 3 rebinds (sprint never re-initialized)
    for f in starts:
        row = tshark(out, "-Y", f"frame.number == {f}", "-T", "fields", "-e", "http.request.method", "-e", "http.file_data")
        assert row[0][0] == "POST" and "initialize" in row[0][1], f
    rebinds = [c for cs in notes.values() for c in cs if "rebind after the restart" in c]
    assert sorted(c.split(":")[1].strip() for c in rebinds) == ["ci-infra", "dev-agents", "tasks"]
    down = [f for f, cs in notes.items() for c in cs if "goes down" in c]
    back = [f for f, cs in notes.items() for c in cs if "is back" in c]
    assert len(down) == len(back) == 1 and down[0] < stall[0] and back[0] < stall[0]
    (syn,) = tshark(out, "-Y", f"frame.number == {back[0]}", "-T", "fields", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.dstport")
    assert syn[:2] in (["1", "0"], ["True", "False"]) and syn[2] == "18202"  # the first connection accepted again: its SYN
    assert any("404 session-not-found" in c for cs in notes.values() for c in cs if "STALLED" not in c)
    assert all("\n" not in c and c.startswith("mcpsniff: ") for cs in notes.values() for c in cs)


@needs_tshark
def test_pcapng_in_keeps_every_block_and_earlier_comments(tmp_path: Path) -> None:
    src = REAL / "ts-hang" / "capture.pcapng"
    once, twice = tmp_path / "once.pcapng", tmp_path / "twice.pcapng"
    assert mcpsniff("annotate", src, "-o", once).returncode == 1
    assert mcpsniff("annotate", once, "-o", twice).returncode == 1
    assert packets(once) == packets(twice) == packets(src)
    assert frames(twice) == frames(src)
    first, second = comments(once), comments(twice)
    assert first and second == {f: cs + cs for f, cs in first.items()}  # the earlier comments stay, the new ones follow
    assert any("sprint: STALLED here [hung-request]" in c for c in first[1099])


@needs_tshark
def test_nanosecond_pcap_times_are_kept_exactly(tmp_path: Path) -> None:
    if shutil.which("editcap") is None:
        pytest.skip("editcap (with tshark) writes the nanosecond pcap")
    ns, out = tmp_path / "ns.pcap", tmp_path / "out.pcapng"
    subprocess.run(["editcap", "-F", "nsecpcap", str(REAL / "ts-idle-get" / "capture.pcap"), str(ns)], check=True)
    assert mcpsniff("annotate", ns, "-o", out).returncode == 1
    assert packets(out) == packets(ns)
    assert "STALLED" in " ".join(comments(out)[284])


@needs_tshark
def test_a_capture_cut_short_is_copied_up_to_the_damage(tmp_path: Path) -> None:
    src = REAL / "ts-idle-get" / "capture.pcap"
    cut, out = tmp_path / "cut.pcap", tmp_path / "out.pcapng"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    result = mcpsniff("annotate", cut, "-o", out)
    assert result.returncode in (0, 1) and "warning: cut.pcap: capture ends inside" in result.stderr
    assert packets(out) == packets(cut, check=False) and len(packets(out)) == len(frames(cut))


@pytest.mark.parametrize("case", ["not-a-capture", "records", "missing-folder", "same-file", "no-such-port"])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path: Path, case: str) -> None:
    src, out = REAL / "one-stale" / "capture.pcap", tmp_path / "out.pcapng"
    args: list[str | Path] = ["annotate", src, "-o", out]
    if case == "not-a-capture":
        args[1] = ROOT / "README.md"
    elif case == "records":
        args[1] = tmp_path / "run.jsonl"
        (tmp_path / "run.jsonl").write_text('{"kind":"meta","source":"mitm","origin":"","format":"mcpsniff-records","version":1}\n')
    elif case == "missing-folder":
        args[3] = out = tmp_path / "nope" / "out.pcapng"
    elif case == "same-file":
        copy = tmp_path / "copy.pcap"
        shutil.copy(src, copy)
        args[1], args[3], out = copy, copy, tmp_path / "untouched"
        before = copy.read_bytes()
    else:
        args += ["--port", "9999"]
    result = mcpsniff(*args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("mcpsniff: error: "), result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    if case == "same-file":
        assert copy.read_bytes() == before


@pytest.mark.parametrize("capture", sorted(p.parent.name for p in REAL.glob("*/capture.pcap")))
def test_every_stalled_namespace_gets_its_stall_comment(capture: str) -> None:
    """(no tshark needed: what ``annotate`` chooses, on every real capture)"""
    from mcpsniff.api import analyze_files
    from mcpsniff.report.annotations import annotations

    analysis = analyze_files([REAL / capture / "capture.pcap"], full=False)
    notes = annotations(analysis)
    for ns in analysis.stalled:
        sp = ns.diagnosis.stall_point
        assert sp is not None
        assert [n.frame for n in notes if n.text.startswith(f"mcpsniff: {ns.name}: STALLED here [{ns.diagnosis.signature}]")] == [sp.frame]
    assert len({n.text for n in notes if "goes down" in n.text}) == len(analysis.restarts)
    assert [n.t for n in notes] == sorted(n.t for n in notes)
