"""``mcpsniff demo``: a real MCP server restart under real SDK clients, recorded, then analyzed.

What runs (all on 127.0.0.1, every process in its own process group).  Proxied mode
(the default):

    clients (SDK) --> proxy port: mitmdump + addon --> server port: uvicorn, 4 namespaces
                      \\______ live capture on lo records both hops ______/

The clients talk to the proxy, so ``run.jsonl`` (the addon) and the proxy port of
``capture.pcapng`` both show what the clients saw; the server port of the pcap shows
the restart itself (refused connections).  The report is the analysis of the
server hop (see ``analyze_run``); ``summary.json`` holds the verdicts of every view
(both hops, ``run.jsonl``, the clients' own log) and says whether they agree.

Direct mode (``--mode direct``) is what a user's capture looks like: the clients talk
straight to the server port, recorded by a real ``tcpdump -i lo -w capture.pcap tcp
port <server port>``; no proxy, no ``run.jsonl``.

The clients are SDK client hosts (``hosts.py``): the Python SDK 1.x clients of
``clients.py`` (host ``py``), the TypeScript SDK 1.32 host ``ts/host.mjs`` (``ts``, all
namespaces in one Node process), and for the 2026-07-28 revision the Python SDK 2.3.0
host ``modern/clients.py`` (``py2``, in its own venv, ``sdk2.py``) and the TypeScript SDK
2.4 host ``ts/host2.mjs`` (``ts2``); a mixed fleet runs one host process per kind, each
with its own log, merged into ``clients.jsonl``.  The server is the mcp 1.x
``server.py`` or the mcp 2.3.0 ``modern/server.py`` (both revisions on the same paths).
Every run writes ``truth.json``: per namespace what the client itself ended in (from
its own log, never from mcpsniff, see ``truth.py``), a short label of what happened and
the protocol revision it spoke.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import CaptureError
from ..paths import output_dir
from . import NAMESPACES
from .hosts import HOSTS, SERVERS, command, policy_description, prepare, server_command
from .truth import (  # noqa: F401  (re-exported: the tests and older callers import them from here)
    HUNG_AFTER,
    client_outcomes,
    client_signature,
    client_truth,
    first_ok_after,
    read_events,
    summary_of,
    truth_document,
)

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # s for a server process to say "ready"
STOP_TIMEOUT = 5.0  # s after SIGTERM before SIGKILL


EXTRA_SETTLE = 30.0  # most extra recording time while healthy clients are still in backoff
REBIND_GRACE = 2.0  # recording after the last healthy client rebound, so its calls are captured too
# A namespace that stalls while its siblings of the same client rebound is told from one that is only
# slower by how long it stays silent after them: at least the time they took to come back, scaled,
# plus a margin (the analysis asks for max(sibling_margin 10 s, 1.25 x took + 2 s)).  On a loaded
# machine the server comes back late, the siblings take longer, and the settle time alone is too short.
STALL_FACTOR, STALL_MARGIN = 1.5, 10.0  # record until last rebind + 1.5 x (last rebind - SIGTERM) + 10 s
STALL_SETTLE = 45.0  # most extra recording time for that
SILENT_POLICIES = {"dies", "listen-dies", "give-up", "reinit-once", "idle"}  # a stalled client of these goes silent: only time tells


@dataclass(frozen=True)
class Scenario:
    name: str
    policies: dict[str, str]  # namespace -> policy name (of its host, see hosts.policy_description; others: the host's default)
    description: str
    settle: float = 25.0  # default recording time after the server is back
    host: str = "py"  # client host (hosts.HOSTS): "py" (clients.py), "ts" (ts/host.mjs), "py2" (modern/clients.py), "ts2" (ts/host2.mjs)
    stateless: bool = False  # server with stateless_http=True (no session ids)
    down: float = 5.0  # default downtime (s between SIGTERM's end and the new process listening)
    mode: str = "proxied"  # default capture mode: "proxied" (mitmdump in between) or "direct" (tcpdump)
    # True: the replacement process is started (and imports) during the warm-up and listens ``down`` s
    # after the SIGTERM, so the server can be back sooner than Python's start-up (~2-3 s) allows
    prestart: bool = False
    expect: dict[str, str] = field(default_factory=dict)  # namespace -> "rebound"/"stalled" where the policy alone does not say
    hosts: dict[str, str] = field(default_factory=dict)  # namespace -> client host where it is not ``host`` (a mixed fleet)
    server: str = "py"  # "py" (server.py, mcp 1.x) or "py2" (modern/server.py, mcp 2.3.0, both revisions)
    server_args: tuple[str, ...] = ()  # more server options (e.g. --graceful-listen-close)
    group: str = ""  # the --help heading it is listed under (GROUPS)
    brief: str = ""  # its --help line

    def host_of(self, ns: str) -> str:
        return self.hosts.get(ns, self.host)

    def policy(self, ns: str) -> str:
        return self.policies.get(ns, HOSTS[self.host_of(ns)].default_policy)

    def expected(self, ns: str) -> str:
        if ns in self.expect:
            return self.expect[ns]
        return "rebound" if self.policy(ns) in HOSTS[self.host_of(ns)].rebinding else "stalled"

    def host_groups(self) -> dict[str, dict[str, str]]:
        """client host -> {namespace: policy} it runs (one process per host)."""
        groups: dict[str, dict[str, str]] = {}
        for ns in NAMESPACES:
            groups.setdefault(self.host_of(ns), {})[ns] = self.policy(ns)
        return groups


_ALL_STALL = {ns: "stalled" for ns in NAMESPACES}

# --help headings, by protocol revision (Scenario.group)
GROUPS: dict[str, str] = {
    "py": "2025-era sessions, Python SDK 1.x clients",
    "ts": "2025-era sessions, TypeScript SDK 1.32 host (needs node and npm; installs its modules once)",
    "sessionless": "2026-07-28 sessionless, mcp 2.3.0 server (2.x SDKs set up once: own venv, npm)",
    "fallback": "Negotiated fallback: 2.x clients probe the mcp 1.x server, then a 2025 session",
    "mixed": "Both revisions at once, one mcp 2.3.0 server",
}
_PY2 = {"host": "py2", "server": "py2", "prestart": True, "group": "sessionless"}  # the 2.x server imports for ~3 s: started during the warm-up
_LISTEN = {"dev-agents": "listen-only", "sprint": "listen-dies"}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", {}, "every client re-initializes after the restart: all four namespaces rebind", group="py", brief="every namespace rebinds"),
        Scenario("stale-session", {"sprint": "stale"}, "sprint keeps resuming its old session id without initialize (404 loop) while the others rebind", group="py", brief="sprint resumes its old session id forever (404 loop)"),
        # a client that gives up is only called stalled after 35 s of silence (thresholds.give_up_after)
        Scenario("retries-exhausted", {"sprint": "give-up"}, "sprint tries twice, 1 s apart, while the server is down, then gives up; the others rebind", settle=40.0, group="py", brief="sprint retries twice while the server is down, gives up"),
        Scenario("no-relist", {"sprint": "no-relist"}, "sprint re-initializes but never lists its tools again (dead catalogue); the others rebind", group="py", brief="sprint re-initializes but never lists its tools again"),
        Scenario("mixed", {"dev-agents": "no-relist", "sprint": "stale", "ci-infra": "give-up"}, "three different client bugs at once; only tasks rebinds", settle=40.0, group="py", brief="three of the bugs at once"),
        Scenario("py-idle-get", {"sprint": "idle"}, "Python SDK clients; sprint is idle (no calls, only the SDK's GET stream and its own retry), the others rebind", group="py", brief="sprint makes no calls: only the SDK's GET stream retry"),
        # --- TypeScript SDK 1.32 host (ts/host.mjs)
        Scenario("ts-healthy", {}, "TS SDK host, all cc: every namespace re-initializes after the restart", host="ts", group="ts", brief="every namespace rebinds (Claude-Code-like backoff)"),
        Scenario("ts-one-stale", {"sprint": "stale"}, "TS SDK host; sprint keeps resuming its old session id without initialize (404 loop), the others rebind", host="ts", group="ts", brief="sprint resumes its old session id forever (404 loop)"),
        Scenario("ts-idle-get", {"sprint": "idle"}, "TS SDK host; sprint is idle (no calls, only the SDK's GET stream, whose 2 retries fall inside the downtime), the others rebind", host="ts", group="ts", brief="sprint makes no calls: the SDK's 2 GET retries fall in the downtime"),
        Scenario("ts-idle-get-fast", {"sprint": "idle"}, "TS SDK host; sprint is idle and the server is back 1 s after SIGTERM: the SDK's GET retries reach the new server, get 404 and it gives up anyway; the others rebind", host="ts", down=1.0, prestart=True, group="ts", brief="the same, server back after 1 s: the GET retries get 404, the SDK gives up"),
        Scenario("ts-hang", {"sprint": "hang"}, "TS SDK host; sprint rebinds, then calls a tool that never answers and waits forever; the others rebind", host="ts", settle=35.0, group="ts", brief="sprint rebinds, then a tool call that never answers"),
        Scenario("ts-reinit-once", {"sprint": "reinit-once"}, "TS SDK host; sprint re-initializes once 1 s after the failure (refused, server still down) and gives up for good; the others rebind", host="ts", group="ts", brief="sprint re-initializes once while the server is down, gives up"),
        Scenario("ts-backoff-exhausted", {}, "TS SDK host, all cc, server down 40 s: the 1+2+4+8+16 s backoff ends before the server is back, every namespace gives up", host="ts", down=40.0, expect=_ALL_STALL, group="ts", brief="server down 40 s: every namespace's 1..16 s backoff ends first"),
        Scenario("ts-stateless", {}, "TS SDK host, all cc, stateless server (no session ids): what a restart looks like without sessions", host="ts", stateless=True, group="ts", brief="stateless server (no session ids), every namespace cc"),
        # --- 2026-07-28 (modern/server.py with modern/clients.py or ts/host2.mjs)
        Scenario("sessionless", {}, "mcp 2.3.0 server and clients speak 2026-07-28 (no sessions); the SDK ends a Client on a refused connection and each host builds a new one after 1, 2, 4, 8, 16 s: all four rebind", **_PY2, brief="Python SDK 2.3.0 clients, each host rebuilds its Client: all rebind"),
        Scenario("sessionless-dies", {"sprint": "dies"}, "as sessionless, but sprint's host never rebuilds the Client the restart ended (the SDK has no retry of its own): sprint stalls, the others rebind", **_PY2, brief="sprint's Client ends with the restart and is never rebuilt"),
        Scenario("sessionless-listen", _LISTEN, "2026-07-28: tasks and ci-infra call and rebuild; dev-agents only holds a subscriptions/listen stream and re-listens (rebinds); sprint only listens and never re-issues its listen (stalls: the 2026 form of the idle GET stream)", **_PY2, brief="sprint only listens, never re-issues subscriptions/listen; dev-agents re-listens"),
        Scenario("sessionless-graceful-listen", _LISTEN, "as sessionless-listen, but the server ends the listen streams gracefully at SIGTERM (their final SubscriptionsListenResult event)", server_args=("--graceful-listen-close",), **_PY2, brief="the same, listen streams ended gracefully by the server"),
        Scenario("ts-sessionless", {"dev-agents": "keep", "sprint": "dies", "ci-infra": "relisten"}, "TS SDK 2.4 host, 2026-07-28: tasks rebuilds its Client, dev-agents keeps it (calls resume, listen never re-opened), sprint dies, ci-infra keeps it and re-listens", **{**_PY2, "host": "ts2"}, brief="TS SDK 2.4: rebuild, keep, dies, relisten"),
        # --- negotiated fallback (2.x clients, mcp 1.x server.py)
        Scenario("fallback", {}, "TS SDK 2.4 host (negotiation auto) against the mcp 1.x server: server/discover gets 400 and a throwaway session id, the client falls back to initialize 2025-11-25; after the restart every host builds a new Client (probe, fallback, new session): all rebind", host="ts2", group="fallback", brief="TS SDK 2.4 probe, 400, initialize 2025-11-25; every host rebuilds: all rebind"),
        Scenario("py-fallback", {"sprint": "dies"}, "Python SDK 2.3.0 clients (mode auto) against the mcp 1.x server: probe, fallback initialize; sprint's Client dies with the restart, the others rebuild", host="py2", group="fallback", brief="Python SDK 2.3.0 probe and fallback; sprint's Client dies"),
        Scenario("ts-fallback-stall", {"dev-agents": "keep", "sprint": "dies"}, "TS SDK 2.4 (auto) against the mcp 1.x server: tasks and ci-infra rebuild, dev-agents keeps its Client (its dead session id gets 404 forever), sprint dies", host="ts2", expect={"dev-agents": "stalled"}, group="fallback", brief="TS SDK 2.4 after fallback: dev-agents keeps a dead session (404), sprint dies"),
        # --- both revisions
        Scenario("mixed-eras", {}, "one mcp 2.3.0 server process serving both revisions: tasks (Python SDK 2.3.0) and dev-agents (TS SDK 2.4) speak 2026-07-28, sprint (Python SDK 1.x) and ci-infra (TS SDK 1.32) speak 2025-11-25 sessions; every host rebuilds: all rebind",
                 hosts={"tasks": "py2", "dev-agents": "ts2", "sprint": "py", "ci-infra": "ts"}, **{**_PY2, "group": "mixed"}, brief="Python 2.3.0 + TS 2.4 sessionless, Python 1.x + TS 1.32 sessions"),
    )
}


def scenario_help() -> str:
    """The scenarios for ``mcpsniff demo --help``, grouped by protocol revision (click paragraphs)."""
    width = max(len(s.name) for s in SCENARIOS.values()) + 2
    paragraphs = []
    for group, heading in GROUPS.items():
        rows = [f"  {s.name:<{width}}{s.brief}" for s in SCENARIOS.values() if s.group == group]
        paragraphs.append("\n".join(["\b", f"{heading}:", *rows]))
    return "\n\n".join(paragraphs)


@dataclass
class DemoOptions:
    scenario: str = "stale-session"
    output: Path | None = None
    down_seconds: float | None = None  # server down between SIGTERM and the new process (None: the scenario's, 5 s)
    settle_seconds: float | None = None  # recording after the server is back (None: the scenario's)
    warmup_seconds: float = 4.0  # normal traffic before the restart
    call_interval: float = 0.7  # s between each client's tool calls
    iface: str = "lo"
    mode: str | None = None  # "proxied" / "direct" (None: the scenario's)


class Progress:
    """Progress lines on a stream: ``[  3.2s] server up``; countdowns redraw in place on a terminal."""

    def __init__(self, stream: IO[str] | None = sys.stderr) -> None:
        self.stream = stream
        self.t0 = time.monotonic()
        self.tty = bool(stream is not None and stream.isatty())

    def __call__(self, message: str, end: str = "\n") -> None:
        if self.stream is None:
            return
        prefix = "\r\x1b[K" if self.tty else ""
        self.stream.write(f"{prefix}[{time.monotonic() - self.t0:5.1f}s] {message}{end}")
        self.stream.flush()

    def wait(self, label: str, seconds: float, detail: Callable[[], str] = lambda: "") -> None:
        """Sleep ``seconds`` showing ``label 12/30 s``: every second on a terminal, every 5 s otherwise."""
        start = time.monotonic()
        step = 1.0 if self.tty else 5.0
        shown = -step
        while (elapsed := time.monotonic() - start) < seconds:
            if elapsed - shown >= step:
                shown = elapsed
                extra = detail()
                self(f"{label} {int(elapsed)}/{int(seconds)} s" + (f" - {extra}" if extra else ""), end="" if self.tty else "\n")
            time.sleep(min(0.2, seconds - elapsed))
        if self.tty:
            extra = detail()
            self(f"{label} {int(seconds)}/{int(seconds)} s" + (f" - {extra}" if extra else ""))


class Processes:
    """Every child process of the demo, each in its own process group; ``cleanup()`` ends them all."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        atexit.register(self.cleanup)

    def spawn(self, args: list[str], log: Path, stdout: int | None = None) -> subprocess.Popen[bytes]:
        with INTERRUPTS.critical(), log.open("ab") as err:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else err, stderr=err, start_new_session=True)
            self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, wait, escalate to SIGKILL."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(STOP_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()


class Interrupts:
    """Ctrl-C and SIGTERM raise KeyboardInterrupt, except inside ``critical()``, where they wait.

    A child process started while a signal arrives would otherwise be orphaned: the
    signal is held until its handle is stored, then the ``finally`` blocks stop it.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._pending = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handler)

    def _handler(self, signum: int, frame: Any) -> None:
        if self._depth:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                self._pending = False
                raise KeyboardInterrupt


INTERRUPTS = Interrupts()


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn_server(procs: Processes, port: int, log: Path, start_at: float | None = None, stateless: bool = False, server: str = "py", extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start the demo server process (``server``: "py" mcp 1.x or "py2" mcp 2.3.0; listening at ``start_at`` if given)."""
    return procs.spawn(server_command(server, port, start_at, stateless, extra), log, stdout=subprocess.PIPE)


def wait_ready(procs: Processes, proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = READY_TIMEOUT, starts: list[float] | None = None) -> float:
    """Wait for the server's ``ready`` line (no probe connection: it would be captured); returns the time.

    ``starts`` collects the epoch of the server's ``starting`` line (when it began to bind)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending, line = b"", b""
    # raw reads, not readline(): a buffered reader could hold the ready line where select() cannot see it
    while not line.startswith(b"ready") and time.monotonic() < deadline and proc.poll() is None:
        if not select.select([fd], [], [], 0.1)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending and not line.startswith(b"ready"):
            line, pending = pending.split(b"\n", 1)
            if line.startswith(b"starting") and starts is not None:
                with contextlib.suppress(IndexError, ValueError):
                    starts.append(float(line.split()[2]))
    if not line.startswith(b"ready"):
        procs.stop(proc)
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise CaptureError(f"demo server did not start on port {port}: {' | '.join(tail) or 'no output'}")
    return time.time()


def connected(events: list[dict[str, Any]]) -> set[str]:
    """Namespaces whose client is up: it listed its tools (or, listening only, opened its listen stream)."""
    return {ev["ns"] for ev in events if ev.get("event") in ("tools_listed", "listen_open")}


def wait_for_healthy_clients(scenario: Scenario, clients_logs: list[Path], restart: dict[str, float], say: Progress) -> None:
    """On a slow machine a healthy client's backoff (1, 2, 4, 8, 16 s) can outlast the settle
    time: keep recording (bounded) until every client meant to rebind has, plus a short grace,
    so the capture holds the rebind the client itself saw; then, when a namespace is meant to
    stall by going silent, until its silence has outlasted its rebound siblings' schedule (STALL_FACTOR)."""
    deadline = time.monotonic() + EXTRA_SETTLE
    ready_at = restart["server_ready_at"]

    def missing() -> list[str]:
        truth = client_truth(read_events(*clients_logs), ready_at)
        return [ns for ns in NAMESPACES if scenario.expected(ns) == "rebound" and truth[ns] != "rebound"]

    if missing():
        say(f"still waiting for {', '.join(missing())} to rebind (up to {EXTRA_SETTLE:.0f} s more)")
        while missing() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(REBIND_GRACE)
    stalling = [ns for ns in NAMESPACES if scenario.expected(ns) == "stalled" and scenario.policy(ns) in SILENT_POLICIES]
    back = [t for ns, t in first_ok_after(read_events(*clients_logs), ready_at).items() if scenario.expected(ns) == "rebound"]
    if not stalling or not back:
        return
    last = max(back)
    until = last + STALL_FACTOR * (last - restart["server_stopped_at"]) + STALL_MARGIN
    more = min(STALL_SETTLE, until - time.time())
    if more > 0:
        say.wait(f"recording on so {', '.join(stalling)}'s silence outlasts its siblings' schedule", more)


@dataclass
class DemoRun:
    """What a demo run produced (files are in ``output``)."""

    output: Path
    scenario: Scenario
    server_port: int
    proxy_port: int | None  # None in direct mode
    restart: dict[str, float]
    pcap: Path | None  # None when raw sockets were refused
    jsonl: Path | None  # None in direct mode
    clients_log: Path
    truth: dict[str, str]  # client_outcomes: rebound / stalled / hung
    warnings: list[str] = field(default_factory=list)
    mode: str = "proxied"
    truth_file: Path | None = None
    revisions: dict[str, str] = field(default_factory=dict)  # namespace -> the revision its client spoke (its own log)


def record(opts: DemoOptions, say: Progress) -> DemoRun:
    """Run server, (proxy,) capture and clients through one restart; write the raw files and truth.json."""
    scenario = SCENARIOS[opts.scenario]
    mode = opts.mode or scenario.mode
    if mode not in ("proxied", "direct"):
        raise CaptureError(f"unknown demo mode {mode!r} (proxied or direct)")
    direct = mode == "direct"
    down = scenario.down if opts.down_seconds is None else opts.down_seconds
    if opts.output is not None:
        out = output_dir(opts.output, "-o")  # -o DIR: DIR is made, a missing parent is an error (before any line)
    say(f"scenario {scenario.name}: {scenario.description}")
    if opts.output is None:
        out = Path("captures") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        out.mkdir(parents=True, exist_ok=True)  # our own default
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    groups = scenario.host_groups()  # client host -> {namespace: policy}: one process each
    ready = prepare(set(groups), scenario.server, say)  # before any process: a missing piece is a one-line error
    if direct:
        from . import tcpdump as tcpdump_mod
    else:
        from ..capture.live import LiveCapture  # imported after the first line: the SDK and scapy take a moment
        from ..capture.proxy import start_proxy

    server_port, proxy_port = free_ports(2)
    pcap = out / ("capture.pcap" if direct else "capture.pcapng")
    jsonl, clients_log, truth_file = out / "run.jsonl", out / "clients.jsonl", out / "truth.json"
    # one host: its log is clients.jsonl; a mixed fleet: one log per host, merged into clients.jsonl at the end
    host_logs = {host: clients_log if len(groups) == 1 else logs / f"clients-{host}.jsonl" for host in groups}
    for stale in (out / "capture.pcap", out / "capture.pcapng", jsonl, clients_log, truth_file, *host_logs.values()):
        stale.unlink(missing_ok=True)
    warnings: list[str] = []
    for ns in NAMESPACES:
        host, policy = scenario.host_of(ns), scenario.policy(ns)
        on = f"{host}: " if len(groups) > 1 else ""
        say(f"  {ns:<11} client policy: {on}{policy:<11} ({policy_description(host, policy)})")
    procs = Processes()
    cap: Any = None
    dump: Any = None
    proxy = None
    clients: list[subprocess.Popen[bytes]] = []
    restart: dict[str, float] = {}

    def events() -> list[dict[str, Any]]:
        return read_events(*host_logs.values())

    def server_proc(start_at: float | None = None) -> subprocess.Popen[bytes]:
        return spawn_server(procs, server_port, logs / "server.log", start_at, scenario.stateless, scenario.server, scenario.server_args)

    try:
        if direct:
            with INTERRUPTS.critical():
                dump = tcpdump_mod.start(server_port, pcap, logs / "tcpdump.log", opts.iface)
            say(f"capture: {' '.join(dump.command)}")
        else:
            try:
                cap = LiveCapture([proxy_port, server_port], pcap, opts.iface).start()
                say(f"live capture on {opts.iface}: tcp ports {proxy_port} (client->proxy) and {server_port} (proxy->server) -> {pcap}")
            except CaptureError as exc:
                warnings.append(f"live capture unavailable ({exc}); only run.jsonl is recorded")
                say(f"warning: {warnings[-1]}")
        server = server_proc()  # boots while mitmdump starts
        if not direct:
            with INTERRUPTS.critical():  # start_proxy owns the mitmdump process until it returns
                proxy = start_proxy(proxy_port, f"http://{HOST}:{server_port}", jsonl, log_path=logs / "proxy.log")
            say(f"proxy up: mitmdump with the mcpsniff addon on {HOST}:{proxy_port} -> {jsonl.name}")
        wait_ready(procs, server, server_port, logs / "server.log")
        kind = "stateless " if scenario.stateless else ""
        say(f"server up: 4 {kind}namespaces on http://{HOST}:{server_port}/<ns>/mcp ({SERVERS[scenario.server]})")
        base = f"http://{HOST}:{server_port if direct else proxy_port}"
        for host, policies in groups.items():
            cmd = command(host, ready, base, policies, host_logs[host], opts.call_interval)
            clients.append(procs.spawn(cmd, logs / ("clients.log" if len(groups) == 1 else f"clients-{host}.log")))
        deadline = time.monotonic() + READY_TIMEOUT
        while connected(events()) != set(NAMESPACES):
            if any(c.poll() is not None for c in clients) or time.monotonic() > deadline:
                raise CaptureError(f"demo clients did not connect (see {logs}/clients*.log)")
            time.sleep(0.1)
        hosts_said = " + ".join(HOSTS[host].label for host in groups)
        say(f"clients connected ({hosts_said}, {'direct to the server' if direct else 'through the proxy'}): one client per namespace, a tool call every {opts.call_interval:g} s")
        if cap is not None:
            status: Callable[[], str] = lambda: cap.stats.line()  # noqa: E731
        elif dump is not None:
            status = dump.line
        else:
            status = lambda: ""  # noqa: E731
        replacement = None
        if scenario.prestart:  # imports during the warm-up, listens `down` s after the SIGTERM
            sigterm_at = time.time() + opts.warmup_seconds
            replacement = server_proc(start_at=sigterm_at + down)
        say.wait("normal traffic", opts.warmup_seconds, status)
        say("restarting server: SIGTERM")
        restart["server_stopped_at"] = time.time()
        procs.stop(server)
        restart["server_exited_at"] = time.time()
        if replacement is None:  # the new process listens `down` s after the old one exited
            replacement = server_proc(start_at=restart["server_exited_at"] + down)
        server = replacement
        say.wait("server down", max(0.0, restart["server_stopped_at"] + down - time.time()) if scenario.prestart else down)
        starts: list[float] = []
        restart["server_ready_at"] = wait_ready(procs, server, server_port, logs / "server.log", starts=starts)
        restart["server_started_at"] = starts[0] if starts else restart["server_ready_at"]  # began to bind
        say("server back up (new process, no sessions)")

        def rebound() -> str:
            truth = client_truth(events(), restart["server_ready_at"])
            return f"{sum(v == 'rebound' for v in truth.values())}/4 clients rebound" + (f"; {status()}" if status() else "")

        say.wait("waiting for reconnects", opts.settle_seconds or scenario.settle, rebound)
        wait_for_healthy_clients(scenario, list(host_logs.values()), restart, say)
    finally:
        with INTERRUPTS.critical():  # a second Ctrl-C must not cut the clean-up short
            for proc in clients:
                # first: the clients write their summary while everything they talk to is still up
                # (a proxy stopped first would cut a pending call), and the capture holds their own end
                procs.stop(proc)
            if dump is not None:
                counts = dump.stop()
                say(f"tcpdump stopped: {counts.get('captured', '?')} packets captured, {counts.get('dropped', '?')} dropped by kernel")
                if counts.get("dropped"):
                    warnings.append(f"tcpdump: {counts['dropped']} packets dropped by kernel")
            if cap is not None:
                stats = cap.stop()
                say(f"capture stopped: {stats.line()}")
                if cap.error:
                    warnings.append(cap.error)
            if proxy is not None:
                proxy.stop()
            procs.cleanup()
            atexit.unregister(procs.cleanup)
    merged = events()
    if len(groups) > 1:
        clients_log.write_text("".join(json.dumps(ev) + "\n" for ev in merged), encoding="utf-8")
    truth = client_outcomes(merged, restart["server_ready_at"])
    doc = truth_document(scenario, merged, truth, restart, server_port, mode, None if direct else proxy_port)
    truth_file.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    have_pcap = dump is not None or cap is not None
    return DemoRun(out, scenario, server_port, None if direct else proxy_port, restart, pcap if have_pcap else None,
                   None if direct else jsonl, clients_log, truth, warnings, mode=mode, truth_file=truth_file,
                   revisions={ns: row["revision"] for ns, row in doc["namespaces"].items()})


def analyze_run(run: DemoRun, html: bool = True) -> tuple[Any, dict[str, Any]]:
    """Analyze every view of the run and write report.txt, report.html and summary.json.

    Proxied mode: the report is the server hop of the pcap: like a capture on a real
    server's port it shows the restart itself (refused connections, when the server
    was back).  The client hop (what the clients saw: 502 from the proxy while the
    server was down), run.jsonl and the clients' own log are the cross-checks.
    Without a pcap the report is run.jsonl.  Direct mode: the report is the tcpdump
    capture, the clients' own log the cross-check.  Returns the report's analysis
    and the summary.
    """
    from ..api import analyze_files
    from ..report.text import render_text

    views: dict[str, Any] = {}
    descriptions: dict[str, str] = {}
    if run.mode == "direct":
        if run.pcap is not None:
            views["direct"] = analyze_files([run.pcap], ports=[run.server_port])
            descriptions["direct"] = f"{run.pcap.name}, tcpdump on tcp port {run.server_port} (clients -> server, no proxy)"
    else:
        if run.pcap is not None:
            views["server-hop"] = analyze_files([run.pcap], ports=[run.server_port])
            views["client-hop"] = analyze_files([run.pcap], ports=[run.proxy_port])
            descriptions["server-hop"] = f"capture.pcapng, tcp port {run.server_port} (proxy -> server)"
            descriptions["client-hop"] = f"capture.pcapng, tcp port {run.proxy_port} (clients -> proxy)"
        if run.jsonl is not None:
            views["jsonl"] = analyze_files([run.jsonl])
            descriptions["jsonl"] = "run.jsonl (mitmproxy addon)"
    if not views:
        raise CaptureError("nothing was recorded (no capture and no run.jsonl)")
    descriptions["client"] = f"{run.clients_log.name} (what each client itself ended in)"
    main_view = next(iter(views))
    primary = views[main_view]
    (run.output / "report.txt").write_text(render_text(primary, color=False) + "\n", encoding="utf-8")
    files = {"report": "report.txt", "clients_log": run.clients_log.name}
    if run.jsonl is not None:
        files["jsonl"] = run.jsonl.name
    if run.pcap is not None:
        files["pcap"] = run.pcap.name
    if run.truth_file is not None:
        files["truth"] = run.truth_file.name
    if html:
        try:
            from ..report.html import write_html
        except ImportError:
            pass
        else:
            write_html(primary, run.output / "report.html")
            files["html"] = "report.html"
    namespaces: dict[str, Any] = {}
    for ns in NAMESPACES:
        outcome = run.truth.get(ns, "unknown")
        row: dict[str, Any] = {
            "policy": run.scenario.policy(ns),
            "expected": run.scenario.expected(ns),
            "client": "stalled" if outcome == "hung" else outcome,
            "client_outcome": outcome,
        }
        if run.revisions:
            row["client_revision"] = run.revisions.get(ns)
        for name, analysis in views.items():
            found = next((n for n in analysis.namespaces if n.name == ns), None)
            diag = found.diagnosis if found is not None else None
            row[name] = diag.verdict if diag else "missing"
            if name == main_view and found is not None and diag is not None:
                row["basis"] = diag.basis
                row["signature"] = diag.signature
                row["stall_point"] = diag.stall_point.describe(primary.t0) if diag.stall_point else None
                row["revision"] = getattr(found, "revision", "")
        row["verdict"] = row[main_view]
        namespaces[ns] = row
    summary: dict[str, Any] = {
        "scenario": run.scenario.name,
        "description": run.scenario.description,
        "mode": run.mode,
        "client_host": "+".join(run.scenario.host_groups()),
        "server": run.scenario.server,
        "report_view": main_view,
        "views": descriptions,
        "ports": {"proxy": run.proxy_port, "server": run.server_port},
        "restart": run.restart,
        "namespaces": namespaces,
        "agree": all(len({row[k] for k in ("client", *views)}) == 1 for row in namespaces.values()),
        "as_expected": all(row["verdict"] == row["expected"] for row in namespaces.values()),
        # the revision the analysis names per namespace is the one its client says it spoke
        "revisions_agree": all(row.get("revision") == row["client_revision"] for row in namespaces.values() if "client_revision" in row),
        "stalled": [ns.name for ns in primary.stalled],
        "files": files,
        "warnings": run.warnings,
    }
    (run.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return primary, summary


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """One line per namespace: the report's verdict, plus any view that says otherwise."""
    lines = []
    for ns, row in summary["namespaces"].items():
        others = [f"{k} says {row[k]}" for k in ("server-hop", "client-hop", "jsonl", "direct", "client") if k in row and row[k] != row["verdict"]]
        sig = f" ({row['signature']}{'; ' + row['revision'] if row.get('revision') else ''})" if row.get("signature") else ""
        lines.append(f"  {ns:<11} {row['verdict'].upper():<9}{sig}" + (f"   [{'; '.join(others)}]" if others else ""))
    return lines
