"""Run mitmdump with the mcpsniff addon as a subprocess (``mcpsniff proxy``, the demo).

Readiness is detected without connecting to the port (a probe connection would be
recorded as a client connection): a socket with SO_REUSEADDR can bind the address
as long as nothing listens there, and stops being able to once mitmdump listens.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import CaptureError

START_TIMEOUT = 60.0  # s for mitmdump to listen (it imports a lot; slow on a loaded machine)
STOP_TIMEOUT = 10.0  # s for mitmdump to flush and exit after SIGTERM
PR_SET_PDEATHSIG = 1  # linux/prctl.h

_SCRIPT = """\
import sys
sys.path.insert(0, {root!r})
from mcpsniff.capture.mitm import McpSniff
addons = [McpSniff()]
"""


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent SIGTERM when its parent dies (Linux PR_SET_PDEATHSIG).

    mitmdump runs in its own session (Ctrl-C in a terminal is for mcpsniff to handle), so
    without this a ``kill -9`` of mcpsniff would leave it running and holding the port.
    SIGTERM lets the addon close open exchanges and the records file. The signal follows
    the thread that started the child: start the proxy from a thread that lives as long
    as it should. None where prctl does not exist.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: no signal will come
            os._exit(1)

    return preexec


ADDON = "mcpsniff_addon.py"


def addon_script() -> Path:
    """The addon script for ``mitmdump -s``: the wheel's copy (mcpsniff/addons/), else the checkout's (addons/)."""
    package = Path(__file__).resolve().parents[1]
    for path in (package / "addons" / ADDON, package.parent / "addons" / ADDON):
        if path.is_file():
            return path
    raise CaptureError(f"the addon script {ADDON} is not in this install of mcpsniff (looked in {package / 'addons'})")


def find_mitmdump() -> str:
    """The mitmdump next to this Python (the project venv) or on PATH."""
    local = Path(sys.executable).with_name("mitmdump")
    if local.exists():
        return str(local)
    found = shutil.which("mitmdump")
    if found is None:
        raise CaptureError("mitmdump not found: install mitmproxy (`uv sync` in a checkout, or `pip install mitmproxy`)")
    return found


def _listening(host: str, port: int) -> bool:
    """True when something listens on host:port (our bind is refused)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise CaptureError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return False


def check_upstream(upstream: str) -> str:
    """Validate an ``http://host:port`` upstream URL; returns it without a trailing slash."""
    parts = urlsplit(upstream)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise CaptureError(f"upstream must look like http://127.0.0.1:5076 (scheme, host and port, no path), not {upstream!r}")
    return upstream.rstrip("/")


def check_filter(expr: str) -> None:
    """Refuse a filter that is no mitmproxy filter expression now (mitmdump would exit on it at start)."""
    from mitmproxy import flowfilter

    try:
        flowfilter.parse(expr)
    except ValueError:
        raise CaptureError(f"--filter: not a mitmproxy filter expression: {expr!r} (e.g. '~u /tasks/', '~d example.com & ~m POST')") from None


@dataclass
class ProxyHandle:
    """A running mitmdump; ``stop()`` ends it cleanly (SIGTERM, then SIGKILL) and is idempotent."""

    process: subprocess.Popen[bytes]
    listen: str  # "host:port"
    upstream: str
    output: Path
    log_path: Path
    _script: Path | None = field(default=None, repr=False)
    _own_log: bool = field(default=False, repr=False)  # a temporary log, removed by stop()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def stop(self) -> int | None:
        """Stop mitmdump (the addon closes open exchanges and the file); returns its exit code.

        Read ``log_tail()`` first: a temporary log is removed here.
        """
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        if self._script is not None:
            self._script.unlink(missing_ok=True)
            self._script = None
        if self._own_log:
            self.log_path.unlink(missing_ok=True)
            self._own_log = False
        return self.process.returncode

    def __enter__(self) -> ProxyHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_proxy(
    listen_port: int,
    upstream: str,
    output: Path,
    config: Path | None = None,
    listen_host: str = "127.0.0.1",
    log_path: Path | None = None,
    extra_args: tuple[str, ...] = (),
    filter_expr: str | None = None,
) -> ProxyHandle:
    """Start ``mitmdump --mode reverse:UPSTREAM`` with the addon writing records to ``output``.

    Returns once the port listens. mitmdump's own log goes to ``log_path`` (default:
    a temporary file). ``filter_expr``: record only the flows matching this mitmproxy
    filter expression (the addon's ``mcpsniff_filter``). Raises CaptureError when mitmdump
    is missing, the filter is invalid, the port is busy or mitmdump does not come up.
    """
    upstream = check_upstream(upstream)
    exe = find_mitmdump()
    if filter_expr:
        check_filter(filter_expr)
    if _listening(listen_host, listen_port):
        raise CaptureError(f"port {listen_port} on {listen_host} is busy: another process listens there")
    output = Path(output)
    if config is not None and not Path(config).is_file():
        raise CaptureError(f"config file {config} not found")
    try:  # the addon would only log (it keeps proxying and retries): say it now
        with output.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise CaptureError(f"cannot write records to {output}: {exc.strerror or exc}") from None
    root = Path(__file__).resolve().parents[2]
    fd, script_name = tempfile.mkstemp(prefix="mcpsniff-addon-", suffix=".py")
    with os.fdopen(fd, "w") as fh:
        fh.write(_SCRIPT.format(root=str(root)))
    own_log = log_path is None
    if log_path is None:
        fd, log_name = tempfile.mkstemp(prefix="mcpsniff-mitmdump-", suffix=".log")
        os.close(fd)
        log_path = Path(log_name)
    args = [
        exe,
        "--mode", f"reverse:{upstream}",
        "--listen-host", listen_host,
        "--listen-port", str(listen_port),
        "-s", script_name,
        "--set", f"mcpsniff_output={output.resolve()}",
        "--set", "connection_strategy=lazy",
        "--set", "flow_detail=0",
        "--set", "termlog_verbosity=warn",
    ]
    if config is not None:
        args += ["--set", f"mcpsniff_config={Path(config).resolve()}"]
    if filter_expr:
        args += ["--set", f"mcpsniff_filter={filter_expr}"]
    args += list(extra_args)
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())  # noqa: PLW1509 - a prctl call, nothing that takes a lock
    handle = ProxyHandle(process, f"{listen_host}:{listen_port}", upstream, output, log_path, Path(script_name), own_log)
    try:
        _wait_listening(handle, listen_host, listen_port)
    except BaseException:  # CaptureError, but also Ctrl-C while waiting: never leave mitmdump behind
        handle.stop()
        raise
    return handle


def _wait_listening(handle: ProxyHandle, host: str, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _listening(host, port):
        if not handle.running or time.monotonic() > deadline:
            raise CaptureError(f"mitmdump did not start on {host}:{port}: {handle.log_tail() or 'timed out'}")
        time.sleep(0.05)
    if not handle.running:  # someone else took the port first
        raise CaptureError(f"mitmdump exited at start: {handle.log_tail() or 'port busy?'}")
