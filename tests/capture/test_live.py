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
        rc, stdout, text_err = _capture_cli(["--port", str(lab.port)], out, lambda: exchange(lab.url("tasks"), "then-sigterm"), b"tasks:then-sigterm", flag="-o")
    assert rc == 0, text_err  # one healthy session: nothing stalled
    assert "Traceback" not in text_err
    assert f"capture written to {out}" in text_err
    assert "1 namespace" in text_err  # the final status line
    assert "tasks" in stdout


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


# --- tcpdump's flags: -i any, -w, -f, -r; the pcapng's interface and application options -------------------

def _capture_cli(args: list[str], out: Path, traffic, marker: bytes, flag: str = "-w") -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run ``mcpsniff capture ARGS -w OUT``, make ``traffic()`` once it captures, SIGTERM it once
    ``marker`` is in the file; returns (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpsniff", "capture", *args, flag, str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        started = _read_until(proc.stderr, b"capturing", timeout=60)
        assert b"capturing" in started, started
        traffic()
        _wait_for(lambda: marker in out.read_bytes(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    return proc.returncode, stdout.decode(errors="replace"), started.decode(errors="replace") + stderr.decode(errors="replace")


def _pcapng_interfaces(path: Path) -> list[tuple[int, dict[int, bytes]]]:
    """(link type, {option code: value}) of every Interface Description Block, read by hand."""
    import struct

    data, pos, out = path.read_bytes(), 0, []
    while pos + 12 <= len(data):
        kind, size = struct.unpack_from("<II", data, pos)
        if kind == 1:
            linktype = struct.unpack_from("<H", data, pos + 8)[0]
            opts, at = {}, pos + 16
            while at + 4 <= pos + size - 4:
                code, length = struct.unpack_from("<HH", data, at)
                if code == 0:
                    break
                opts[code] = data[at + 4 : at + 4 + length]
                at += 4 + (length + 3) // 4 * 4
            out.append((linktype, opts))
        pos += size
    return out


def _tshark_fields(path: Path, *fields: str) -> list[str]:
    args = [str(TSHARK), "-r", str(path), "-T", "fields"] + [a for f in fields for a in ("-e", f)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@needs_raw
@needs_tshark
@pytest.mark.parametrize(("iface", "linktype", "tshark_link"), [("lo", 1, "eth"), ("any", 276, "sll")], ids=["lo", "any"])
def test_capture_on_an_interface_writes_its_name_filter_and_application(tmp_path: Path, iface: str, linktype: int, tshark_link: str) -> None:
    """-i lo / -i any (Linux cooked v2) with -w and -f: each packet once, the link type, if_name,
    if_filter, if_tsresol and shb_userappl as tshark and capinfos read them; analyze reads the file."""
    from mcpsniff.api import analyze_files
    from mcpsniff.capture.pcapng_writer import version

    out = tmp_path / f"{iface}.pcapng"
    with LabServer(("tasks",)) as lab:
        rc, stdout, stderr = _capture_cli(["-i", iface, "--port", str(lab.port), "-f", "host 127.0.0.1"], out,
                                          lambda: exchange(lab.url("tasks"), f"on-{iface}"), f"tasks:on-{iface}".encode())
    assert rc == 0, stderr
    wanted = f"(tcp port {lab.port}) and (host 127.0.0.1)"
    assert f"capturing {wanted} on {iface} -> {out}" in stderr
    assert "tasks" in stdout and "Traceback" not in stderr
    [(link, opts)] = _pcapng_interfaces(out)
    assert link == linktype
    assert opts[2] == iface.encode() and opts[11] == b"\0" + wanted.encode() and opts[9] == b"\x06"
    frames = pcap_frames(out)
    assert adjacent_twins(frames) == 0  # the loopback copy dropped on any too
    rows = _tshark_fields(out, "frame.interface_name", "frame.protocols")
    assert len(rows) == len(frames) > 0
    assert {r.split("\t")[0] for r in rows} == {iface}
    assert all(r.split("\t")[1].startswith(f"{tshark_link}:ethertype:ip:tcp") for r in rows)
    assert tshark_count(out, 'http.request.uri == "/tasks/mcp"') >= 3
    info = subprocess.run(["capinfos", str(out)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert f"Capture application: {version()}" in info.stdout and version().startswith("mcpsniff ")
    assert f"Name = {iface}" in info.stdout and f"Filter string = {wanted}" in info.stdout
    assert "Time precision = microseconds" in info.stdout
    analysis = analyze_files([out])
    assert [ns.name for ns in analysis.namespaces] == ["tasks"]
    assert {ex.server for ns in analysis.namespaces for ex in ns.exchanges} == {f"127.0.0.1:{lab.port}"}


@needs_raw
def test_filter_expression_narrows_the_ports_and_works_alone(tmp_path: Path) -> None:
    """--port A --port B -f 'not tcp port B' keeps A only; -f 'tcp port A' without --port captures A
    and the analysis finds its namespace (every port that carries HTTP, as analyze)."""
    both, alone = tmp_path / "both.pcapng", tmp_path / "alone.pcapng"
    with LabServer(("tasks",)) as lab, LabServer(("other",)) as noise:
        def traffic() -> None:
            exchange(noise.url("other"), "filtered-out")
            exchange(lab.url("tasks"), "kept")

        rc, _, stderr = _capture_cli(["--port", str(lab.port), "--port", str(noise.port), "-f", f"not tcp port {noise.port}"], both, traffic, b"tasks:kept")
        assert rc == 0, stderr
        rc2, stdout2, stderr2 = _capture_cli(["-i", "any", "-f", f"tcp port {lab.port}"], alone, traffic, b"tasks:kept")
        assert rc2 == 0, stderr2
    for out in (both, alone):
        blob = b"".join(pcap_frames(out))
        assert b"tasks:kept" in blob and b"filtered-out" not in blob and b"/other/mcp" not in blob
    assert "1 namespace" in stderr2 and " 0 connections" not in stderr2  # the status line learnt the server port from the SYNs
    assert "tasks" in stdout2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "5076", "-f", "tcp prot 1"], "mcpsniff: error: bad filter expression 'tcp prot 1': can't parse filter expression: syntax error"),
        (["--watch", "--port", "5076", "-f", "tcp prot 1"], "mcpsniff: error: bad filter expression 'tcp prot 1': can't parse filter expression: syntax error"),
        (["-i", "any", "--port", "5076", "-f", "ether host 00:11:22:33:44:55"], "mcpsniff: error: bad filter expression 'ether host 00:11:22:33:44:55': ethernet addresses supported only"),
        (["-r", "saved.pcap", "--port", "5076"], "mcpsniff: error: capture records live; a saved capture is read by: mcpsniff analyze saved.pcap --port 5076"),
        ([], "mcpsniff: error: nothing to capture: give --port PORT (the MCP server's) or a filter expression -f EXPR"),
        (["--port", "5076", "-w", "{tmp}/no/such/dir/x.pcapng"], "mcpsniff: error: -o {tmp}/no/such/dir/x.pcapng: directory {tmp}/no/such/dir does not exist"),
    ],
    ids=["bad-filter", "bad-filter-watch", "filter-for-another-link", "-r", "no-port-no-filter", "missing-folder"],
)
def test_tcpdump_style_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    """Found before any socket is opened (no root needed), and no file is written."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = ["-w", str(tmp_path / "x.pcapng")] if "-w" not in args else []
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "capture", *args, *out, "--duration", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(message.replace("{tmp}", str(tmp_path))), proc.stderr
    assert not list(tmp_path.rglob("*.pcapng"))
