"""Live capture on ``lo`` with scapy during real MCP SDK exchanges (real server, real client, real tshark).

Needs raw sockets (root or CAP_NET_RAW); without them the tests that capture are
skipped with that reason, and the error message itself is tested instead.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpsniff.capture.live import LiveCapture, LiveStats
from mcpsniff.errors import CaptureError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import LabServer, call_text, free_port, lab_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TSHARK = shutil.which("tshark")


def _raw_sockets_refused() -> str | None:
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW):
            return None
    except PermissionError:
        return "raw sockets not permitted here (run as root or grant CAP_NET_RAW)"


needs_raw = pytest.mark.skipif(_raw_sockets_refused() is not None, reason=str(_raw_sockets_refused()))
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (scripts/setup.sh installs it)")


def exchange(url: str, text: str = "hello") -> str:
    """One real SDK session: initialize, tools/list, one tools/call."""

    async def go() -> str:
        async with lab_session(url) as session:
            await session.list_tools()
            return await call_text(session, "echo", text=text)

    return asyncio.run(go())


def pcap_frames(path: Path) -> list[bytes]:
    from scapy.utils import RawPcapNgReader

    with RawPcapNgReader(str(path)) as reader:
        return [data for data, _meta in reader]


def tshark_count(path: Path, display_filter: str = "") -> int:
    args = [str(TSHARK), "-r", str(path), "-T", "fields", "-e", "frame.number"]
    if display_filter:
        args += ["-Y", display_filter]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return len(proc.stdout.split())


def adjacent_twins(frames: list[bytes]) -> int:
    """How many frames are byte-identical to the frame before (the loopback duplicate)."""
    return sum(a == b for a, b in zip(frames, frames[1:]))


@needs_raw
@pytest.mark.parametrize("bpf", [True, False], ids=["kernel-bpf", "in-process-filter"])
def test_capture_of_a_real_exchange_has_each_packet_once(tmp_path: Path, bpf: bool) -> None:
    out = tmp_path / "run.pcapng"
    with LabServer(("tasks",)) as lab, LabServer(("other",)) as noise:
        with LiveCapture([lab.port], out, bpf=bpf) as cap:
            assert exchange(lab.url("tasks"), "captured") == "tasks:captured"
            assert exchange(noise.url("other"), "not-captured") == "other:not-captured"
        stats = cap.stats
    frames = pcap_frames(out)
    assert len(frames) == stats.packets > 0
    assert adjacent_twins(frames) == 0
    assert stats.duplicates >= stats.packets  # every loopback packet came twice and was kept once
    blob = b"".join(frames)
    assert b"POST /tasks/mcp" in blob and b"tasks:captured" in blob
    assert b"not-captured" not in blob  # the other server's port was filtered out
    assert cap.kernel_filter is bpf
    if not bpf:
        assert stats.filtered > 0
    assert stats.namespaces == {"tasks"}
    assert stats.connections >= 1 and stats.mcp_messages >= 4


@needs_raw
@needs_tshark
def test_tshark_and_mcpsniff_read_the_capture_after_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "killed.pcapng"
    with LabServer(("tasks", "sprint")) as lab:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpsniff", "capture", "--port", str(lab.port), "-o", str(out), "--duration", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            started = _read_until(proc.stderr, b"capturing", timeout=60)
            assert b"capturing tcp port" in started, started
            exchange(lab.url("tasks"), "before-kill")
            exchange(lab.url("sprint"), "before-kill")
            _wait_for(lambda: b"sprint:before-kill" in out.read_bytes(), timeout=30)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    assert proc.returncode == -signal.SIGKILL
    assert tshark_count(out) == len(pcap_frames(out)) > 0
    assert tshark_count(out, 'http.request.uri == "/sprint/mcp"') >= 3  # initialize, initialized, tools/list, call

    from mcpsniff.api import analyze_files

    analysis = analyze_files([out], ports=[lab.port])
    assert {"tasks", "sprint"} <= {ns.name for ns in analysis.namespaces}


@needs_raw
def test_capture_command_stops_on_sigterm_and_prints_the_analysis(tmp_path: Path) -> None:
    out = tmp_path / "term.pcapng"
    with LabServer(("tasks",)) as lab:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpsniff", "capture", "--port", str(lab.port), "-o", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            _read_until(proc.stderr, b"capturing", timeout=60)
            exchange(lab.url("tasks"), "then-sigterm")
            _wait_for(lambda: b"tasks:then-sigterm" in out.read_bytes(), timeout=30)
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=30)
    text_err = stderr.decode(errors="replace")
    assert proc.returncode == 0, text_err  # one healthy session: nothing stalled
    assert "Traceback" not in text_err
    assert f"capture written to {out}" in text_err
    assert "1 namespace" in text_err  # the final status line
    assert "tasks" in stdout.decode()


def test_no_raw_sockets_gives_a_clear_error(tmp_path: Path) -> None:
    """Without CAP_NET_RAW (dropped with setpriv when we are root, as an unprivileged user has none)."""
    cmd = [sys.executable, "-m", "mcpsniff", "capture", "--port", "5076", "-o", str(tmp_path / "x.pcapng"), "--duration", "1"]
    if _raw_sockets_refused() is None:
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            pytest.skip("raw sockets are allowed here and setpriv (util-linux) cannot drop them")
        cmd = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "mcpsniff: error: raw sockets not permitted (run as root or grant CAP_NET_RAW)"
    assert not (tmp_path / "x.pcapng").exists()


@needs_raw
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--iface", "nosuchif0"], "no such interface 'nosuchif0'"),
        (["--port", "0"], "Invalid value for '--port'"),
        (["--duration", "0"], "Invalid value for '--duration'"),
    ],
)
def test_bad_capture_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    base = ["--port", str(free_port())] if "--port" not in args else []
    proc = subprocess.run(
        [sys.executable, "-m", "mcpsniff", "capture", *base, *args, "-o", str(tmp_path / "x.pcapng")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_status_counters_see_a_restart() -> None:
    """SYN/SYN-ACK/RST bookkeeping on hand-made frames: accepted, refused twice, accepted again."""
    stats = LiveStats(frozenset({5076}))
    c, s = ("127.0.0.1", 40000), ("127.0.0.1", 5076)
    seq = [
        tcp_frame(c, s, "S"), tcp_frame(s, c, "SA"),  # accepted: server up
        tcp_frame(c, s, "PA", b'POST /sprint/mcp HTTP/1.1\r\n\r\n{"jsonrpc":"2.0"}'),
        tcp_frame(("127.0.0.1", 40001), s, "S"), tcp_frame(s, ("127.0.0.1", 40001), "RA"),  # refused: down
        tcp_frame(("127.0.0.1", 40002), s, "S"), tcp_frame(s, ("127.0.0.1", 40002), "RA"),
        tcp_frame(("127.0.0.1", 40003), s, "S"), tcp_frame(s, ("127.0.0.1", 40003), "SA"),  # back: one restart
        tcp_frame(("127.0.0.1", 40004), ("127.0.0.1", 9999), "S"),  # another port
    ]
    kept = [stats.feed(1, frame) for frame in seq]
    assert kept == [True] * 9 + [False]
    assert (stats.connections, stats.refused, stats.restarts, stats.mcp_messages) == (4, 2, 1, 1)
    assert stats.namespaces == {"sprint"}
    assert stats.line() == "9 packets, 4 connections (2 refused), 1 namespace, 1 MCP message, 1 restart seen"


def test_no_port_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no port"):
        LiveCapture([], tmp_path / "x.pcapng")


def tcp_frame(src: tuple[str, int], dst: tuple[str, int], flags: str, payload: bytes = b"") -> bytes:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    return bytes(Ether() / IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags) / payload)


def _read_until(stream, marker: bytes, timeout: float) -> bytes:  # type: ignore[no-untyped-def]
    """Read a subprocess pipe (bounded) until ``marker`` shows up; returns what was read."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        if select.select([stream], [], [], 0.2)[0]:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            data += chunk
    return data


def _wait_for(cond, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
