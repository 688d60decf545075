"""Issue 13: the addon never stops traffic and never drops a request record; `mcpsniff proxy`
fails cleanly on a bad -o and leaves no mitmdump behind when it is killed with SIGKILL.
Real mitmdump processes in front of a real HTTP server on loopback; every wait is bounded,
nothing asserts on time."""

from __future__ import annotations

import http.client
import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow, tutils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mcp_lab import free_port, wait_port  # noqa: E402

from mcpsniff import records as R  # noqa: E402
from mcpsniff.capture import mitm  # noqa: E402
from mcpsniff.capture.proxy import find_mitmdump  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"jsonrpc":"2.0","id":0,"result":{}}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def mitmdump(upstream: int, port: int, output: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [find_mitmdump(), "--mode", f"reverse:http://127.0.0.1:{upstream}", "--listen-host", "127.0.0.1", "-p", str(port),
           "-s", str(ROOT / "addons" / "mcpsniff_addon.py"), "--set", f"mcpsniff_output={output}"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port, timeout=WAIT)
    return proc


def post(port: int, headers: bytes = b"") -> bytes:
    """A raw HTTP request through the proxy (raw, so header bytes can be anything); the status line."""
    body = b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}'
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"POST /tasks/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + headers + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def until(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT}s: {what}")
        time.sleep(0.1)


def requests_in(path: Path) -> list[R.Request]:
    if not path.exists():
        return []
    return [r for r in R.read_records(path.read_text(encoding="utf-8").splitlines()) if r.kind == "request"]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_output_that_is_a_directory_does_not_stop_traffic(upstream: int, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "mitmdump.log"
    proc = mitmdump(upstream, port, tmp_path, log)  # mcpsniff_output is a directory
    try:
        assert post(port).endswith(b" 200 OK")
        assert proc.poll() is None, "mitmdump keeps proxying"
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    assert "cannot write records to" in text and "traffic passes" in text, text[-2000:]
    assert "Traceback" not in text


def test_output_in_a_missing_folder_is_written_once_the_folder_exists(upstream: int, tmp_path: Path) -> None:
    folder = tmp_path / "later"
    output = folder / "run.jsonl"
    port = free_port()
    proc = mitmdump(upstream, port, output, tmp_path / "mitmdump.log")
    posts = 0
    try:
        assert post(port).endswith(b" 200 OK")
        posts += 1
        folder.mkdir()

        def another() -> bool:  # a record retries the output (at most once a second): keep traffic coming
            nonlocal posts
            if output.exists():
                return True
            assert post(port).endswith(b" 200 OK")
            posts += 1
            return False

        until(another, "the records file, once its folder exists")
        until(lambda: len(requests_in(output)) == posts, "every request in the records file")
    finally:
        stop(proc)
    assert posts >= 2 and len(requests_in(output)) == posts, "the requests made while the folder was missing are not lost"


def test_a_header_that_is_not_utf8_is_recorded_escaped(upstream: int, tmp_path: Path) -> None:
    output, port = tmp_path / "run.jsonl", free_port()
    proc = mitmdump(upstream, port, output, tmp_path / "mitmdump.log")
    try:
        assert post(port, b"X-Bin: caf\xe9\r\n").endswith(b" 200 OK")
        until(lambda: len(requests_in(output)) == 1, "the request record")
    finally:
        stop(proc)
    (req,) = requests_in(output)
    assert ("X-Bin", "caf\\xe9") in req.headers


def test_addon_keeps_records_while_the_output_fails_and_writes_them_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mitm, "RETRY_EVERY", 0.0)
    output = tmp_path / "missing" / "run.jsonl"
    sniff = mitm.McpSniff()
    with taddons.context(sniff) as tctx:
        tctx.configure(sniff, mcpsniff_output=str(output))
        for _ in range(3):
            sniff.request(tflow.tflow(req=tutils.treq()))
        assert not output.exists()
        output.parent.mkdir()
        sniff.request(tflow.tflow(req=tutils.treq()))
        assert len(requests_in(output)) == 4
        sniff.done()


def test_addon_records_survive_a_write_failure_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mitm, "RETRY_EVERY", 0.0)
    output = tmp_path / "run.jsonl"
    sniff = mitm.McpSniff()
    with taddons.context(sniff) as tctx:
        tctx.configure(sniff, mcpsniff_output=str(output))
        sniff.request(tflow.tflow(req=tutils.treq()))
        real = sniff._file

        class Full(io.TextIOBase):  # the disk fills up: the next write fails once
            def write(self, text: str) -> int:
                raise OSError(28, "No space left on device")

        sniff._writer = R.RecordWriter(Full(), source="mitm", meta=False)
        sniff.request(tflow.tflow(req=tutils.treq()))  # fails, kept, the output is reopened for appending
        sniff.request(tflow.tflow(req=tutils.treq()))
        real.close()
        sniff.done()
    recs = list(R.read_records(output.read_text(encoding="utf-8").splitlines()))
    assert [r.kind for r in recs].count("request") == 3 and [r.kind for r in recs].count("meta") == 1


@pytest.mark.parametrize(("output", "said"), [
    ("/nonexistent/x", "-o /nonexistent/x: directory /nonexistent does not exist (mcpsniff does not create it)"),
    ("/proc/x.jsonl", "cannot write records to /proc/x.jsonl: No such file or directory"),  # a folder that takes no files
])
def test_proxy_with_an_unwritable_output_is_one_line_exit_2(upstream: int, output: str, said: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(free_port()), "--upstream", f"http://127.0.0.1:{upstream}", "-o", output],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"mcpsniff: error: {said}"], proc.stderr


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        out += [int(c) for c in text.split()]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_sigkill_of_mcpsniff_proxy_leaves_no_mitmdump_holding_the_port(upstream: int, tmp_path: Path) -> None:
    port = free_port()
    proxy = subprocess.Popen([sys.executable, "-m", "mcpsniff", "proxy", "--listen", str(port), "--upstream", f"http://127.0.0.1:{upstream}", "-o", str(tmp_path / "run.jsonl")],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port(port, timeout=WAIT)
        assert post(port).endswith(b" 200 OK")
        children = _children(proxy.pid)
        assert children, "mitmdump runs as a child of mcpsniff proxy"
        proxy.kill()  # SIGKILL: no handler, no cleanup in mcpsniff
        proxy.wait(10)
        until(lambda: not any(_alive(c) for c in children), "mitmdump gone after its parent was killed")
        wait_port(port, timeout=WAIT, open_=False)
        with socket.socket() as sock:  # the port is free again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    finally:
        if proxy.poll() is None:
            proxy.kill()
        for child in _children(proxy.pid) if proxy.poll() is None else []:
            os.kill(child, signal.SIGKILL)
    records = list(R.read_records((tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()))
    assert any(r.kind == "request" for r in records), "what was recorded before the kill stays readable"
