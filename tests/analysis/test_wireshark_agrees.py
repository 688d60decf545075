"""Stall points as Wireshark shows them, asked of real tshark on every real capture.

For each namespace's stall point: the frame is the one Wireshark's HTTP row shows for that
request (the packet that completed it, not its first segment) or, for a refused connection,
the SYN; ``+N s`` is tshark's ``frame.time_relative`` of that frame (relative to the file's
first packet); the display filter's ``tcp.stream eq N`` is the frame's ``tcp.stream``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from mcpsniff.analysis.model import Analysis
from mcpsniff.api import analyze_files
from mcpsniff.report.text import render_text

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
CAPTURES = sorted(p.relative_to(REAL).as_posix() for p in [*REAL.glob("*/capture.pcap"), *REAL.glob("*/capture.pcapng")])

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is the oracle here (scripts/setup.sh installs it)")


def tshark_frames(pcap: Path, frames: set[int]) -> dict[int, dict[str, str]]:
    """What tshark shows for these frames: method, URI, tcp.stream, SYN flag, time relative to the first packet."""
    names = ("frame.number", "http.request.method", "http.request.uri", "tcp.stream", "tcp.flags.syn", "tcp.flags.ack", "frame.time_relative")
    fields = [arg for name in names for arg in ("-e", name)]
    wanted = " || ".join(f"frame.number == {f}" for f in sorted(frames))
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", wanted, "-T", "fields", *fields], capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(names, line.split("\t"))) for line in out.splitlines()]
    return {int(row["frame.number"]): row for row in rows}


def check_stall_points(pcap: Path, analysis: Analysis) -> int:
    """Every stall point of ``analysis`` as tshark shows its frame; the number checked."""
    points = [(ns.name, ns.diagnosis.stall_point) for ns in analysis.namespaces if ns.diagnosis.stall_point is not None]
    if not points:
        return 0
    shown = tshark_frames(pcap, {sp.frame for _, sp in points if sp.frame is not None})
    text = render_text(analysis)
    for name, sp in points:
        assert sp.frame is not None, name
        row = shown[sp.frame]
        if sp.method:  # a request: Wireshark's HTTP row for it is this frame
            assert (row["http.request.method"], row["http.request.uri"]) == (sp.method, sp.target), (name, sp.frame, row)
        else:  # a refused connection: its SYN
            assert row["tcp.flags.syn"] in ("1", "True") and row["tcp.flags.ack"] in ("0", "False"), (name, sp.frame, row)
        assert sp.tcp_stream == int(row["tcp.stream"]), (name, sp.frame, row)
        assert sp.display_filter == f"tcp.stream eq {row['tcp.stream']}"
        rel = float(row["frame.time_relative"])
        assert abs((sp.t - analysis.t0) - rel) < 2e-6, (name, sp.frame, sp.t - analysis.t0, rel)
        assert f"#{sp.frame} " in text and f"at +{rel:.2f}s" in text and sp.display_filter in text, name
    return len(points)


@pytest.mark.parametrize("capture", CAPTURES)
def test_stall_points_are_what_tshark_shows(capture: str) -> None:
    pcap = REAL / capture
    check_stall_points(pcap, analyze_files([pcap], full=False))


def test_every_real_capture_has_a_stall_point_checked() -> None:
    """(the captures that stalled: a sanity check that the parametrised test really looked)"""
    checked = sum(check_stall_points(REAL / c, analyze_files([REAL / c], full=False)) for c in ("one-stale/capture.pcap", "py-teardown-cut/capture.pcap", "ts-idle-get/capture.pcap"))
    assert checked == 3


def with_earlier_packet(src: Path, dst: Path, before: float = 0.02) -> None:
    """``src`` (classic pcap, Ethernet) with one more packet first, ``before`` s earlier: a SYN
    from another host to port 9, the kind of unrelated traffic a capture on a busy interface holds."""
    data = src.read_bytes()
    sec, usec = struct.unpack_from("<II", data, 24)
    t = sec + usec / 1e6 - before
    eth = b"\x00" * 12 + b"\x08\x00"
    tcp = struct.pack("!HHIIBBHHH", 40000, 9, 12345, 0, 0x50, 0x02, 1024, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3]))
    frame = eth + ip + tcp
    record = struct.pack("<IIII", int(t), round((t - int(t)) * 1e6), len(frame), len(frame)) + frame
    dst.write_bytes(data[:24] + record + data[24:])


@pytest.mark.parametrize("ports", [None, "server"], ids=["all-ports", "--port"])
def test_times_and_streams_count_the_whole_file(tmp_path: Path, ports: str | None) -> None:
    """Times are relative to the file's first packet and streams count every port, even when
    that packet is not MCP traffic and --port leaves it out."""
    pcap = tmp_path / "busy.pcap"
    with_earlier_packet(REAL / "ts-idle-get" / "capture.pcap", pcap)
    plain = analyze_files([REAL / "ts-idle-get" / "capture.pcap"], full=False)
    port = [int(plain.namespaces[0].exchanges[0].server.rsplit(":", 1)[1])] if ports else None
    analysis = analyze_files([pcap], full=False, ports=port)
    assert analysis.t0 == pytest.approx(plain.t0 - 0.02, abs=2e-6)
    (sp,) = [ns.diagnosis.stall_point for ns in analysis.namespaces if ns.diagnosis.stall_point is not None]
    (before,) = [ns.diagnosis.stall_point for ns in plain.namespaces if ns.diagnosis.stall_point is not None]
    assert (sp.frame, sp.tcp_stream) == (before.frame + 1, before.tcp_stream + 1)  # type: ignore[operator]
    assert check_stall_points(pcap, analysis) == 1


def test_html_stall_card_shows_the_display_filter() -> None:
    from mcpsniff.report.html import render_html

    analysis = analyze_files([REAL / "ts-idle-get" / "capture.pcap"])
    assert "Wireshark display filter: <code>tcp.stream eq 14</code>" in render_html(analysis)
