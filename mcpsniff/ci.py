"""``mcpsniff ci``: capture around a user's command, then gate on the verdicts and write a bundle.

Order matters: the capture starts before the command (so the first ``initialize``
is in it) and stops after it; the bundle is written whatever happened in between,
because a failed run is exactly when someone needs the capture and the report.

The command runs in its own process group with these variables set:
``MCPSNIFF_URL`` (base URL the clients should use: the server itself with
loopback capture, the proxy with ``--via proxy``), ``MCPSNIFF_PORT`` (the server
port), ``MCPSNIFF_PROXY_PORT`` (proxy only) and ``MCPSNIFF_ARTIFACTS``.  Ctrl-C and
SIGTERM are forwarded to it; processes it leaves behind in its group are stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis.gate import GateResult, GateRule, evaluate
from .analysis.model import Analysis
from .config import Config
from .errors import CaptureError, MCPSniffError

HOST = "127.0.0.1"
STOP_GRACE = 10.0  # s a command (or what it left behind) gets between SIGTERM and SIGKILL

# Exit codes of `mcpsniff ci` (documented in its --help and the README).
EXIT_OK = 0  # command succeeded, gate passed
EXIT_GATE = 1  # command succeeded, gate failed (a namespace stalled / rebound too late)
EXIT_ERROR = 2  # mcpsniff could not capture or analyze (bad option, no raw sockets, unreadable capture)
EXIT_COMMAND = 3  # command failed (non-zero exit, not found, timed out), gate passed
EXIT_BOTH = 4  # command failed and gate failed
EXIT_INTERNAL = 5  # an internal error in mcpsniff (a bug), as guard.EXIT_INTERNAL_CI
MEANING = {EXIT_OK: "command succeeded, gate passed", EXIT_GATE: "gate failed", EXIT_ERROR: "mcpsniff could not capture, analyze or write the bundle",
           EXIT_COMMAND: "command failed, gate passed", EXIT_BOTH: "command failed and gate failed", EXIT_INTERNAL: "internal error in mcpsniff"}

BUNDLE = ("capture.pcapng", "capture.jsonl", "report.html", "summary.json", "junit.xml", "proxy.log")

Say = Callable[[str], None]


@dataclass
class CiOptions:
    port: int
    command: list[str]
    rule: GateRule
    config: Config
    config_path: Path | None = None
    via: str = "loopback"  # or "proxy"
    artifacts: Path = Path("mcpsniff-artifacts")
    iface: str = "lo"
    proxy_port: int | None = None
    timeout: float | None = None
    share: bool = False


@dataclass
class CommandResult:
    argv: list[str]
    exit_code: int
    timed_out: bool = False
    error: str = ""  # could not start / interrupted

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out and was stopped (exit {self.exit_code})"
        return f"exited with {self.exit_code}"


@dataclass
class CiResult:
    exit_code: int
    command: CommandResult
    capture: Path
    analysis: Analysis | None = None
    gate: GateResult | None = None
    error: str = ""  # the analysis could not be made
    files: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@contextmanager
def capture(opts: CiOptions, output: Path, say: Say) -> Iterator[dict[str, str]]:
    """Start the capture; yields the environment the command needs; stops it on exit."""
    env = {"MCPSNIFF_PORT": str(opts.port), "MCPSNIFF_ARTIFACTS": str(opts.artifacts.resolve())}
    if opts.via == "proxy":
        from .capture.proxy import start_proxy

        proxy_port = opts.proxy_port or free_port()
        handle = start_proxy(proxy_port, f"http://{HOST}:{opts.port}", output, config=opts.config_path, log_path=opts.artifacts / "proxy.log")
        say(f"proxy http://{handle.listen} -> {handle.upstream}, recording to {output}")
        env |= {"MCPSNIFF_URL": f"http://{HOST}:{proxy_port}", "MCPSNIFF_PROXY_PORT": str(proxy_port)}
        try:
            yield env
        finally:
            handle.stop()
    else:
        from .capture.live import LiveCapture

        cap = LiveCapture([opts.port], output, opts.iface).start()
        say(f"capturing tcp port {opts.port} on {opts.iface} -> {output}")
        env["MCPSNIFF_URL"] = f"http://{HOST}:{opts.port}"
        try:
            yield env
        finally:
            stats = cap.stop()
            say(f"capture stopped: {stats.line()}")
            if cap.error:
                say(f"warning: {cap.error}")


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when nothing is left in it."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop_group(pgid: int) -> None:
    """SIGTERM what is left in the group, SIGKILL after STOP_GRACE (bounded)."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        if not _signal_group(pgid, 0):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)


def run_command(argv: list[str], env: dict[str, str], timeout: float | None, say: Say) -> CommandResult:
    """Run the user's command (output passes through), forwarding Ctrl-C/SIGTERM to it."""
    try:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)
    except OSError as exc:
        return CommandResult(argv, 127, error=f"could not start {argv[0]!r}: {exc.strerror or exc}")
    interrupted: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        _signal_group(proc.pid, signal.SIGKILL if len(interrupted) > 1 else signum)

    on_main = threading.current_thread() is threading.main_thread()  # signal handlers only work there
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    timed_out = False
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while proc.poll() is None:
            if deadline is not None and time.monotonic() > deadline and not timed_out:
                timed_out = True
                say(f"command still running after {timeout:g} s: stopping it")
                _signal_group(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + STOP_GRACE
            elif timed_out and deadline is not None and time.monotonic() > deadline:
                _signal_group(proc.pid, signal.SIGKILL)
                deadline = None
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(proc.pid)  # whatever the command started in the background
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    error = f"interrupted by {signal.Signals(interrupted[0]).name}, exit {code}" if interrupted else ""
    return CommandResult(argv, code, timed_out=timed_out, error=error)


def exit_code(command_ok: bool, gate_ok: bool) -> int:
    if command_ok:
        return EXIT_OK if gate_ok else EXIT_GATE
    return EXIT_COMMAND if gate_ok else EXIT_BOTH


def run_ci(opts: CiOptions, say: Say = lambda msg: print(f"mcpsniff: {msg}", file=sys.stderr, flush=True)) -> CiResult:
    """Capture, run, analyze, gate, write the bundle. Raises MCPSniffError only before the command ran."""
    from .api import analyze_files
    from .paths import output_dir

    output_dir(opts.artifacts, "--artifacts")  # its last part is made; a missing parent is a typo, not a folder to make
    try:
        for name in BUNDLE:  # a file left from an earlier run must not pass for this run's
            (opts.artifacts / name).unlink(missing_ok=True)
        probe = opts.artifacts / ".mcpsniff-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CaptureError(f"--artifacts {opts.artifacts}: cannot write the bundle there ({exc.strerror or exc})") from None
    output = opts.artifacts / ("capture.jsonl" if opts.via == "proxy" else "capture.pcapng")
    with capture(opts, output, say) as env:
        say(f"running: {' '.join(opts.command)}")
        command = run_command(opts.command, env, opts.timeout, say)
    say(f"command {command.describe()}")
    result = CiResult(EXIT_ERROR, command, output, files={"capture": output.name})
    if (opts.artifacts / "proxy.log").exists():
        result.files["proxy_log"] = "proxy.log"
    bug: Exception | None = None
    try:
        result.analysis = analyze_files([output], config=opts.config, ports=[opts.port] if opts.via != "proxy" else None, full=True)
        result.gate = evaluate(result.analysis, opts.rule)
        result.exit_code = exit_code(command.ok, result.gate.passed)
    except MCPSniffError as exc:
        result.analysis = result.gate = None
        result.error = f"could not analyze {output.name}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a bug: the bundle (capture, junit) is still written, then it is raised
        result.analysis = result.gate = None
        result.error = f"internal error analyzing {output.name}: {type(exc).__name__}: {exc}"
        result.exit_code = EXIT_INTERNAL
        bug = exc
    try:
        write_bundle(opts, result)
    except OSError as exc:
        say(f"error: could not write the bundle in {opts.artifacts}: {exc.strerror or exc}")
        result.exit_code = EXIT_ERROR
    if bug is not None:
        raise bug
    return result


def write_bundle(opts: CiOptions, result: CiResult) -> None:
    """report.html, junit.xml and summary.json next to the capture (what exists is written)."""
    from .report.junit import write_junit
    from .report.redact import Redactor
    from .report.summary import gate_summary, write_json

    out, text = opts.artifacts, Redactor(opts.config).text
    argv = [text(a) for a in result.command.argv]
    command_doc = {"argv": argv, "exit_code": result.command.exit_code, "passed": result.command.ok,
                   "timed_out": result.command.timed_out, "result": text(result.command.describe())}
    extra = {"command": command_doc, "capture": {"via": opts.via, "port": opts.port, "file": result.capture.name}}
    if result.analysis is not None and result.gate is not None:
        from .report.html import write_html

        write_html(result.analysis, out / "report.html", config=opts.config, share=opts.share)
        result.files["report"] = "report.html"
        command_case = ("command", "" if result.command.ok else f"command {text(result.command.describe())}: {' '.join(argv)}")
        write_junit(result.analysis, result.gate, out / "junit.xml", opts.config, extra_cases=[command_case])
        result.files["junit"] = "junit.xml"
        doc = gate_summary(result.analysis, result.gate, opts.config, **extra)
        from .report.github import github_actions

        github_actions(result.analysis, result.gate, opts.config)  # job summary and annotations under GitHub Actions
    else:  # still a junit.xml, so the CI page shows why there is no verdict
        empty = Analysis(sources=[result.capture.name], t0=0.0, t_last=0.0, namespaces=[])
        write_junit(empty, GateResult(opts.rule, [], [result.error]), out / "junit.xml", opts.config)
        result.files["junit"] = "junit.xml"
        doc = {"version": 1, **extra, "error": text(result.error)}
    result.files["summary"] = "summary.json"
    doc["files"] = dict(result.files)
    doc["exit_code"], doc["exit_meaning"] = result.exit_code, MEANING[result.exit_code]
    write_json(doc, out / "summary.json")
