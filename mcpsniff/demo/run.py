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

The clients are either the Python SDK clients of ``clients.py`` (host ``py``) or the
TypeScript SDK host ``ts/host.mjs`` (host ``ts``, all namespaces in one Node process).
Every run writes ``truth.json``: per namespace what the client itself ended in (from
its own log, never from mcpsniff) and a short label of what happened.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
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
from . import NAMESPACES

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0  # s for a server process to say "ready"
STOP_TIMEOUT = 5.0  # s after SIGTERM before SIGKILL


EXTRA_SETTLE = 30.0  # most extra recording time while healthy clients are still in backoff
REBIND_GRACE = 2.0  # recording after the last healthy client rebound, so its calls are captured too


DEFAULT_POLICY = {"py": "healthy", "ts": "cc"}  # per client host: the policy of a namespace the scenario does not name
REBINDING_POLICIES = {"healthy", "cc"}  # policies whose clients are expected to rebind (unless the scenario says otherwise)


@dataclass(frozen=True)
class Scenario:
    name: str
    policies: dict[str, str]  # namespace -> policy name (clients.POLICIES for py, tshost.POLICIES for ts; others: the host's default)
    description: str
    settle: float = 25.0  # default recording time after the server is back
    host: str = "py"  # client host: "py" (clients.py, Python SDK) or "ts" (ts/host.mjs, TypeScript SDK)
    stateless: bool = False  # server with stateless_http=True (no session ids)
    down: float = 5.0  # default downtime (s between SIGTERM's end and the new process listening)
    mode: str = "proxied"  # default capture mode: "proxied" (mitmdump in between) or "direct" (tcpdump)
    # True: the replacement process is started (and imports) during the warm-up and listens ``down`` s
    # after the SIGTERM, so the server can be back sooner than Python's start-up (~2-3 s) allows
    prestart: bool = False
    expect: dict[str, str] = field(default_factory=dict)  # namespace -> "rebound"/"stalled" where the policy alone does not say

    def policy(self, ns: str) -> str:
        return self.policies.get(ns, DEFAULT_POLICY[self.host])

    def expected(self, ns: str) -> str:
        if ns in self.expect:
            return self.expect[ns]
        return "rebound" if self.policy(ns) in REBINDING_POLICIES else "stalled"


_ALL_STALL = {ns: "stalled" for ns in NAMESPACES}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", {}, "every client re-initializes after the restart: all four namespaces rebind"),
        Scenario("stale-session", {"sprint": "stale"}, "sprint keeps resuming its old session id without initialize (404 loop) while the others rebind"),
        # a client that gives up is only called stalled after 35 s of silence (thresholds.give_up_after)
        Scenario("retries-exhausted", {"sprint": "give-up"}, "sprint tries twice, 1 s apart, while the server is down, then gives up; the others rebind", settle=40.0),
        Scenario("no-relist", {"sprint": "no-relist"}, "sprint re-initializes but never lists its tools again (dead catalogue); the others rebind"),
        Scenario("mixed", {"dev-agents": "no-relist", "sprint": "stale", "ci-infra": "give-up"}, "three different client bugs at once; only tasks rebinds", settle=40.0),
        # --- TypeScript SDK host (ts/host.mjs)
        Scenario("ts-healthy", {}, "TS SDK host, all cc: every namespace re-initializes after the restart", host="ts"),
        Scenario("ts-one-stale", {"sprint": "stale"}, "TS SDK host; sprint keeps resuming its old session id without initialize (404 loop), the others rebind", host="ts"),
        Scenario("ts-idle-get", {"sprint": "idle"}, "TS SDK host; sprint is idle (no calls, only the SDK's GET stream, whose 2 retries fall inside the downtime), the others rebind", host="ts"),
        Scenario("ts-hang", {"sprint": "hang"}, "TS SDK host; sprint rebinds, then calls a tool that never answers and waits forever; the others rebind", host="ts", settle=35.0),
        Scenario("ts-reinit-once", {"sprint": "reinit-once"}, "TS SDK host; sprint re-initializes once 1 s after the failure (refused, server still down) and gives up for good; the others rebind", host="ts"),
        Scenario("ts-backoff-exhausted", {}, "TS SDK host, all cc, server down 40 s: the 1+2+4+8+16 s backoff ends before the server is back, every namespace gives up", host="ts", down=40.0, expect=_ALL_STALL),
        Scenario("ts-stateless", {}, "TS SDK host, all cc, stateless server (no session ids): what a restart looks like without sessions", host="ts", stateless=True),
        Scenario("ts-idle-get-fast", {"sprint": "idle"}, "TS SDK host; sprint is idle and the server is back 1 s after SIGTERM: the SDK's GET retries reach the new server, get 404 and it gives up anyway; the others rebind", host="ts", down=1.0, prestart=True),
        Scenario("py-idle-get", {"sprint": "idle"}, "Python SDK clients; sprint is idle (no calls, only the SDK's GET stream and its own retry), the others rebind"),
    )
}


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


def spawn_server(procs: Processes, port: int, log: Path, start_at: float | None = None, stateless: bool = False) -> subprocess.Popen[bytes]:
    """Start the demo server process (listening at ``start_at`` if given)."""
    args = [sys.executable, "-m", "mcpsniff.demo.server", "--port", str(port)]
    if start_at is not None:
        args += ["--start-at", f"{start_at:.3f}"]
    if stateless:
        args.append("--stateless")
    return procs.spawn(args, log, stdout=subprocess.PIPE)


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


def read_events(path: Path) -> list[dict[str, Any]]:
    """The clients' JSON-lines log (a partial last line is skipped)."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def client_truth(events: list[dict[str, Any]], restarted_at: float) -> dict[str, str]:
    """What each client ended in, from its own log: ``rebound`` = a successful call after the
    restart in a session that listed its tools; else ``stalled``."""
    listed: dict[str, set[int]] = {ns: set() for ns in NAMESPACES}
    truth = {ns: "stalled" for ns in NAMESPACES}
    for ev in events:
        ns, detail = ev.get("ns"), ev.get("detail", {})
        if ns not in listed:
            continue
        if ev.get("event") == "tools_listed":
            listed[ns].add(detail.get("gen"))
        elif ev.get("event") == "call_ok" and ev.get("t", 0) > restarted_at and detail.get("gen") in listed[ns] and detail.get("gen", 0) > 1:
            truth[ns] = "rebound"
    return truth


HUNG_AFTER = 5.0  # s: a call still pending this long when the client stopped is a hung call


def summary_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-namespace part of the clients' last ``summary`` line ({} if they wrote none)."""
    for ev in reversed(events):
        if ev.get("event") == "summary":
            return ev.get("detail", {}).get("namespaces", {}) or {}
    return {}


def client_outcomes(events: list[dict[str, Any]], restarted_at: float) -> dict[str, str]:
    """``client_truth`` plus ``hung``: a namespace whose call was still pending (at least
    ``HUNG_AFTER`` s, e.g. a tool that never answers) when the client stopped."""
    truth = client_truth(events, restarted_at)
    for ns, row in summary_of(events).items():
        if ns in truth and (row.get("state") == "hung" or any(p.get("waiting_s", 0) >= HUNG_AFTER for p in row.get("pending") or [])):
            truth[ns] = "hung"
    return truth


def client_signature(events: list[dict[str, Any]], ns: str, policy: str, outcome: str, stateless: bool = False) -> str:
    """A short label of what the client of ``ns`` did, from its own log (not from the wire)."""
    evs = [ev for ev in events if ev.get("ns") == ns]
    names = {ev.get("event") for ev in evs}
    messages = [str(ev.get("detail", {}).get("message", "")) for ev in evs if ev.get("event") in ("sdk_error", "sdk_log")]
    if outcome == "hung":
        return "hung-call"
    if outcome == "rebound":
        return "stateless-reinit" if stateless else "new-session"
    if "gave_up" in names:
        if policy == "reinit-once":
            return "reinit-once-gave-up"
        if policy == "give-up":
            return "retries-exhausted"
        return "backoff-gave-up"
    if policy == "idle":
        gave_up = any("maximum reconnection attempts" in m.lower() or "max reconnection attempts" in m.lower() for m in messages)
        get_404 = any(ev.get("event") == "sdk_error" and ev.get("detail", {}).get("code") == 404 and "Failed to open SSE stream" in str(ev.get("detail", {}).get("message")) for ev in evs)
        if gave_up:
            return "idle-get-404-gave-up" if get_404 else "idle-get-retries-exhausted"
        return "idle-no-calls"
    if policy == "stale":
        return "stale-session-404-loop"
    if policy == "no-relist":
        return "tools-never-relisted"
    return "stalled"


def truth_document(scenario: Scenario, events: list[dict[str, Any]], outcomes: dict[str, str], restart: dict[str, float], port: int, mode: str, proxy_port: int | None = None) -> dict[str, Any]:
    """truth.json, in the shape of the shared real captures' truth.json."""
    start = next((ev.get("detail", {}) for ev in events if ev.get("event") == "start"), {})
    doc: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "port": port,
        "client": start.get("client", "unknown"),
        "mode": mode,
        "restart": {k: restart[k] for k in ("server_stopped_at", "server_started_at", "server_ready_at") if k in restart},
        "namespaces": {
            ns: {
                "expected": "rebound" if outcomes.get(ns) == "rebound" else "stalled",
                "signature": client_signature(events, ns, scenario.policy(ns), outcomes.get(ns, "stalled"), scenario.stateless),
            }
            for ns in NAMESPACES
        },
    }
    if proxy_port is not None:
        doc["proxy_port"] = proxy_port
    return doc


def connected(events: list[dict[str, Any]]) -> set[str]:
    return {ev["ns"] for ev in events if ev.get("event") == "tools_listed"}


def wait_for_healthy_clients(scenario: Scenario, clients_log: Path, server_ready_at: float, say: Progress) -> None:
    """On a slow machine a healthy client's backoff (1, 2, 4, 8, 16 s) can outlast the settle
    time: keep recording (bounded) until every client meant to rebind has, plus a short grace,
    so the capture holds the rebind the client itself saw."""
    deadline = time.monotonic() + EXTRA_SETTLE

    def missing() -> list[str]:
        truth = client_truth(read_events(clients_log), server_ready_at)
        return [ns for ns in NAMESPACES if scenario.expected(ns) == "rebound" and truth[ns] != "rebound"]

    if not missing():
        return
    say(f"still waiting for {', '.join(missing())} to rebind (up to {EXTRA_SETTLE:.0f} s more)")
    while missing() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(REBIND_GRACE)


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


def _policy_description(scenario: Scenario, ns: str) -> str:
    if scenario.host == "ts":
        from .tshost import POLICIES as TS_POLICIES

        return TS_POLICIES[scenario.policy(ns)]
    from .clients import POLICIES

    return POLICIES[scenario.policy(ns)].description


def record(opts: DemoOptions, say: Progress) -> DemoRun:
    """Run server, (proxy,) capture and clients through one restart; write the raw files and truth.json."""
    scenario = SCENARIOS[opts.scenario]
    mode = opts.mode or scenario.mode
    if mode not in ("proxied", "direct"):
        raise CaptureError(f"unknown demo mode {mode!r} (proxied or direct)")
    direct = mode == "direct"
    down = scenario.down if opts.down_seconds is None else opts.down_seconds
    say(f"scenario {scenario.name}: {scenario.description}")
    out = opts.output or Path("captures") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ts_install: Path | None = None
    if scenario.host == "ts":
        from . import tshost

        ts_install = tshost.ensure_installed(say)  # before any process: a missing node is a one-line error
    if direct:
        from . import tcpdump as tcpdump_mod
    else:
        from ..capture.live import LiveCapture  # imported after the first line: the SDK and scapy take a moment
        from ..capture.proxy import start_proxy

    server_port, proxy_port = free_ports(2)
    pcap = out / ("capture.pcap" if direct else "capture.pcapng")
    jsonl, clients_log, truth_file = out / "run.jsonl", out / "clients.jsonl", out / "truth.json"
    for stale in (out / "capture.pcap", out / "capture.pcapng", jsonl, clients_log, truth_file):
        stale.unlink(missing_ok=True)
    warnings: list[str] = []
    for ns in NAMESPACES:
        say(f"  {ns:<11} client policy: {scenario.policy(ns):<11} ({_policy_description(scenario, ns)})")
    procs = Processes()
    cap: Any = None
    dump: Any = None
    proxy = None
    clients: subprocess.Popen[bytes] | None = None
    restart: dict[str, float] = {}
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
        server = spawn_server(procs, server_port, logs / "server.log", stateless=scenario.stateless)  # boots while mitmdump starts
        if not direct:
            with INTERRUPTS.critical():  # start_proxy owns the mitmdump process until it returns
                proxy = start_proxy(proxy_port, f"http://{HOST}:{server_port}", jsonl, log_path=logs / "proxy.log")
            say(f"proxy up: mitmdump with the mcpsniff addon on {HOST}:{proxy_port} -> {jsonl.name}")
        wait_ready(procs, server, server_port, logs / "server.log")
        kind = "stateless " if scenario.stateless else ""
        say(f"server up: 4 {kind}namespaces on http://{HOST}:{server_port}/<ns>/mcp")
        base = f"http://{HOST}:{server_port if direct else proxy_port}"
        policies = {ns: scenario.policy(ns) for ns in NAMESPACES}
        if ts_install is not None:
            from . import tshost

            client_cmd = tshost.command(ts_install, base, policies, clients_log, opts.call_interval)
        else:
            client_cmd = [sys.executable, "-m", "mcpsniff.demo.clients", "--base", base, "--log", str(clients_log), f"--interval={opts.call_interval}", *(f"--policy={ns}={p}" for ns, p in policies.items())]
        clients = procs.spawn(client_cmd, logs / "clients.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while connected(read_events(clients_log)) != set(NAMESPACES):
            if clients.poll() is not None or time.monotonic() > deadline:
                raise CaptureError(f"demo clients did not connect (see {logs / 'clients.log'})")
            time.sleep(0.1)
        host_name = "TypeScript SDK host (one Node process)" if scenario.host == "ts" else "Python SDK clients"
        say(f"clients connected ({host_name}, {'direct to the server' if direct else 'through the proxy'}): one client per namespace, a tool call every {opts.call_interval:g} s")
        if cap is not None:
            status: Callable[[], str] = lambda: cap.stats.line()  # noqa: E731
        elif dump is not None:
            status = dump.line
        else:
            status = lambda: ""  # noqa: E731
        replacement = None
        if scenario.prestart:  # imports during the warm-up, listens `down` s after the SIGTERM
            sigterm_at = time.time() + opts.warmup_seconds
            replacement = spawn_server(procs, server_port, logs / "server.log", start_at=sigterm_at + down, stateless=scenario.stateless)
        say.wait("normal traffic", opts.warmup_seconds, status)
        say("restarting server: SIGTERM")
        restart["server_stopped_at"] = time.time()
        procs.stop(server)
        restart["server_exited_at"] = time.time()
        if replacement is None:  # the new process listens `down` s after the old one exited
            replacement = spawn_server(procs, server_port, logs / "server.log", start_at=restart["server_exited_at"] + down, stateless=scenario.stateless)
        server = replacement
        say.wait("server down", max(0.0, restart["server_stopped_at"] + down - time.time()) if scenario.prestart else down)
        starts: list[float] = []
        restart["server_ready_at"] = wait_ready(procs, server, server_port, logs / "server.log", starts=starts)
        restart["server_started_at"] = starts[0] if starts else restart["server_ready_at"]  # began to bind
        say("server back up (new process, no sessions)")

        def rebound() -> str:
            truth = client_truth(read_events(clients_log), restart["server_ready_at"])
            return f"{sum(v == 'rebound' for v in truth.values())}/4 clients rebound" + (f"; {status()}" if status() else "")

        say.wait("waiting for reconnects", opts.settle_seconds or scenario.settle, rebound)
        wait_for_healthy_clients(scenario, clients_log, restart["server_ready_at"], say)
    finally:
        with INTERRUPTS.critical():  # a second Ctrl-C must not cut the clean-up short
            if clients is not None:
                # first: the clients write their summary while everything they talk to is still up
                # (a proxy stopped first would cut a pending call), and the capture holds their own end
                procs.stop(clients)
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
    events = read_events(clients_log)
    truth = client_outcomes(events, restart["server_ready_at"])
    doc = truth_document(scenario, events, truth, restart, server_port, mode, None if direct else proxy_port)
    truth_file.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    have_pcap = dump is not None or cap is not None
    return DemoRun(out, scenario, server_port, None if direct else proxy_port, restart, pcap if have_pcap else None,
                   None if direct else jsonl, clients_log, truth, warnings, mode=mode, truth_file=truth_file)


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
        for name, analysis in views.items():
            diag = next((n.diagnosis for n in analysis.namespaces if n.name == ns), None)
            row[name] = diag.verdict if diag else "missing"
            if name == main_view and diag is not None:
                row["signature"] = diag.signature
                row["stall_point"] = diag.stall_point.describe(primary.t0) if diag.stall_point else None
        row["verdict"] = row[main_view]
        namespaces[ns] = row
    summary: dict[str, Any] = {
        "scenario": run.scenario.name,
        "description": run.scenario.description,
        "mode": run.mode,
        "client_host": run.scenario.host,
        "report_view": main_view,
        "views": descriptions,
        "ports": {"proxy": run.proxy_port, "server": run.server_port},
        "restart": run.restart,
        "namespaces": namespaces,
        "agree": all(len({row[k] for k in ("client", *views)}) == 1 for row in namespaces.values()),
        "as_expected": all(row["verdict"] == row["expected"] for row in namespaces.values()),
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
        sig = f" ({row['signature']})" if row.get("signature") else ""
        lines.append(f"  {ns:<11} {row['verdict'].upper():<9}{sig}" + (f"   [{'; '.join(others)}]" if others else ""))
    return lines
