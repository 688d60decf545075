"""One synthetic capture per stall signature of /work/shared/docs/mcp-wire.md, with its truth.

Every scenario is a server with four namespaces (tasks, dev-agents, sprint, ci-infra) on one
port, clients calling a tool every 0.7 s, and a restart (SIGTERM at +6.0 s, down 5.2 s) like
the real captures.  Three namespaces rebind the way healthy clients do; one shows the
signature.  ``Scenario.expected`` says, per namespace, the verdict, the signature and, for a
stalled one, the stall point: "the request after which the expected next step never came".
Hosts call less often from 10 s after the restart (every 4 s) and the capture goes on to
+56 s, longer than any known client retry schedule (35 s), so silence means a stall.

A stall point's result is written as the report shows it: the status and what the body
means ("404 session-not-found", "404 route-not-mounted", "409 conflict",
"502 upstream-unavailable"), "200, stream closed" (a GET stream the server ended),
"200, no JSON-RPC response" (SSE opened, response never came), "reset, no response".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcptraffic import NAMESPACES, Client, NodePool, Sent, Server
from pcapbuilder import Capture, Process, Tcp

STOP = 6.0  # server gets SIGTERM (seconds after the capture starts)
DOWN = 5.2  # seconds until the new process listens
START = STOP + DOWN
BUSY_UNTIL = START + 10.0  # then hosts call only every SLOW_PERIOD
END = 56.0
PERIOD = 0.7  # a busy host calls a tool this often
SLOW_PERIOD = 4.0
CC_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # Claude Code: 5 tries, 1 s doubling
TS_GET_RECONNECT = (1.0, 1.5)  # TS SDK GET stream: min(1000*1.5^n, 30000) ms, maxRetries 2


@dataclass(frozen=True)
class Stall:
    """Expected stall point (compared with diagnosis.stall_point)."""

    frame: int
    t: float
    method: str
    target: str
    rpc_method: str
    result: str


@dataclass(frozen=True)
class Expect:
    verdict: str
    signature: str | None = None  # None: not checked (e.g. the wording for a healthy namespace)
    stall: Stall | None = None
    findings: tuple[str, ...] = ()


@dataclass
class Scenario:
    cap: Capture
    expected: dict[str, Expect]
    sent: dict[str, list[Sent]]  # what each namespace's client wrote
    name: str = ""
    description: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if any(e.verdict == "stalled" for e in self.expected.values()) else 0

    def write(self, path: str | Path, **options: object) -> Path:
        return self.cap.write(path, **options)  # type: ignore[arg-type]


def stall(sent: Sent, result: str) -> Stall:
    return Stall(sent.frame, sent.t, sent.method, sent.target, sent.rpc_method, result)


REBOUND = Expect("rebound")


# --------------------------------------------------------------------------- behaviours


class Lab:
    """A server, a shared Node fetch pool, and one client per namespace."""

    def __init__(self, seed: int, *, styles: dict[str, str] | None = None, **server_options: object) -> None:
        self.cap = Capture(seed=seed)
        self.server = Server(self.cap, **server_options)  # type: ignore[arg-type]
        self.pool = NodePool(self.cap, self.server)
        styles = styles or {}
        self.clients = {ns: Client(self.cap, self.server, ns, style=styles.get(ns, "node"), pool=self.pool if styles.get(ns, "node") == "node" else None) for ns in NAMESPACES}

    def __getitem__(self, ns: str) -> Client:
        return self.clients[ns]

    def run(self, procs: dict[str, Process], *, restart: Process | None = None, until: float = END) -> None:
        for i, ns in enumerate(NAMESPACES):
            if ns in procs:
                self.cap.spawn(procs[ns], at=0.05 * i)
        self.cap.spawn(restart if restart is not None else self.restart(), at=STOP)
        self.cap.run(until)

    def restart(self, unnoticed: Callable[[], list[Tcp]] = list, after_start: Callable[[], None] | None = None) -> Process:
        """SIGTERM at STOP, listening again DOWN seconds later."""
        self.server.stop(unnoticed())
        yield DOWN
        self.server.start()
        if after_start is not None:
            after_start()

    def expecting(self, expect: dict[str, Expect], clients: dict[str, Client] | None = None) -> Scenario:
        """Every namespace rebinds but those in ``expect``."""
        sent = {ns: c.sent for ns, c in {**self.clients, **(clients or {})}.items()}
        return Scenario(self.cap, {ns: expect.get(ns, REBOUND) for ns in NAMESPACES}, sent)


def cc_host(c: Client, *, probe_old: bool = False, stream: bool = True, stop_at: float = END) -> Process:
    """A healthy host (like healthy-cc): calls every 0.7 s (later 4 s); after an error it waits 1, 2, 4 ...
    seconds and sets up a fresh session.  ``probe_old`` first retries the call with the old id
    (404 tells it the server restarted), as in mcp-wire.md's healthy rebind."""
    c.setup(stream=stream)
    while c.cap.rel < stop_at:
        yield PERIOD if c.cap.rel < BUSY_UNTIL else SLOW_PERIOD
        if c.call().ok:
            continue
        for delay in CC_BACKOFF:
            yield delay
            if probe_old and c.call().result == "refused":
                continue
            if all(s.ok for s in c.setup(stream=stream)):
                break
        else:
            return


def until_reinit(c: Client) -> Process:
    """Calls every 0.7 s until one fails, then waits through the backoff until an
    initialize is not refused.  The caller continues from there (the client state says how)."""
    c.setup()
    while True:
        yield PERIOD
        if not c.call().ok:
            break
    for delay in CC_BACKOFF:
        yield delay
        if c.initialize().result != "refused":
            return


def idle_host(c: Client, calls_until: float) -> Process:
    """A namespace the user stops using before the restart: only its GET stream stays open."""
    c.setup()
    while c.cap.rel + PERIOD < calls_until:
        yield PERIOD
        c.call()


SCENARIOS: dict[str, Callable[[], Scenario]] = {}


def scenario(build: Callable[[], Scenario]) -> Callable[[], Scenario]:
    """Registers a scenario under its function's name; its docstring describes it."""
    name = build.__name__.replace("_", "-")

    @functools.wraps(build)
    def named() -> Scenario:
        sc = build()
        sc.name, sc.description = name, " ".join((build.__doc__ or "").split())
        return sc

    SCENARIOS[name] = named
    return named


# --------------------------------------------------------------------------- scenarios


@scenario
def healthy_rebind() -> Scenario:
    """Every namespace rebinds: two re-initialize at once, two first probe with the old id (404).

    Mixed clients: Node fetch pool (requests of different namespaces on one connection), an
    httpx client (connection per request, reset after the answer), a JSON-answering
    namespace, server notifications on the GET streams, and 1448-byte segments so large
    bodies are split.
    """
    lab = Lab(11, styles={"sprint": "httpx"}, json_response={"ci-infra"})
    lab.cap.mss = 1448

    def notify() -> Process:
        yield 2.0
        lab.server.notify("tasks", "notifications/message", {"level": "info", "data": "index rebuilt"})

    lab.cap.spawn(notify())
    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"], probe_old=True), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": cc_host(lab["ci-infra"])})
    return lab.expecting({})


@scenario
def healthy_behind_proxy() -> Scenario:
    """A reverse proxy answers 502 (HTML) while the app is down; every namespace rebinds."""
    lab = Lab(12, down_status=502)
    lab.run({ns: cc_host(lab[ns], probe_old=ns in ("tasks", "sprint")) for ns in NAMESPACES})
    return lab.expecting({})


@scenario
def retries_exhausted_while_down() -> Scenario:
    """dev-agents (idle, only its GET stream open) retries the stream 3 times, 0.5 s apart, all
    refused, then never again.  Direct pcap: the refused SYNs carry no request, so the stall
    point is its last exchange, the GET stream the server closed."""
    lab = Lab(1)
    c = lab["dev-agents"]

    def dev_agents() -> Process:
        yield from idle_host(c, calls_until=4.0)
        while c.stream_open:
            yield 0.05
        for _ in range(3):
            yield 0.5
            c.open_stream()

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": dev_agents(), "sprint": cc_host(lab["sprint"]), "ci-infra": cc_host(lab["ci-infra"])})
    get = next(s for s in c.sent if s.method == "GET")
    return lab.expecting({"dev-agents": Expect("stalled", "retries-exhausted-while-down", stall(get, "200, stream closed"))})


@scenario
def backoff_gave_up() -> Scenario:
    """Behind a reverse proxy: sprint (TS SDK, idle) reconnects its GET stream at +1.0 s and
    +2.5 s after the stream ended (maxRetries 2); nginx answers both 502 while the app is down;
    then the client gives up.  The proxy's answers tie the attempts to sprint."""
    lab = Lab(2, down_status=502)
    c = lab["sprint"]

    def sprint() -> Process:
        yield from idle_host(c, calls_until=4.5)
        while c.stream_open:
            yield 0.05
        for delay in TS_GET_RECONNECT:
            yield delay
            c.open_stream()

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"], probe_old=True), "sprint": sprint(), "ci-infra": cc_host(lab["ci-infra"])})
    last = c.sent[-1]
    assert last.method == "GET" and last.result == "502", last
    return lab.expecting({"sprint": Expect("stalled", "backoff-gave-up", stall(last, "502 upstream-unavailable"))})


@scenario
def non_retried_status() -> Scenario:
    """After the restart ci-infra's route is mounted 4 s late; its first initialize gets
    404 {"detail":"Not Found"} and the client never tries again."""
    lab = Lab(3)
    c = lab["ci-infra"]

    def mount_late() -> Process:
        lab.server.mounted.discard("ci-infra")
        yield 4.0
        lab.server.mounted.add("ci-infra")

    restart = lab.restart(after_start=lambda: lab.cap.spawn(mount_late()))
    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"]), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": until_reinit(c)}, restart=restart)
    init = c.sent[-1]
    assert init.rpc_method == "initialize" and init.result == "404", init
    return lab.expecting({"ci-infra": Expect("stalled", "non-retried-status", stall(init, "404 route-not-mounted"))})


@scenario
def stale_session_loop() -> Scenario:
    """sprint keeps resuming its old session id every second: refused while down, then
    404 "Session not found" forever, never an initialize (like the real one-stale capture)."""
    lab = Lab(4)
    c = lab["sprint"]

    def sprint() -> Process:
        c.setup()
        while True:
            yield PERIOD if c.sent[-1].ok else 1.4
            c.call()

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"]), "sprint": sprint(), "ci-infra": cc_host(lab["ci-infra"], probe_old=True)})
    first = next(s for s in c.sent if s.result == "404")
    return lab.expecting({"sprint": Expect("stalled", "stale-session-loop", stall(first, "404 session-not-found"))})


@scenario
def reinit_with_stale_header() -> Scenario:
    """tasks' call with the old id gets 404; it re-initializes but keeps sending the old
    mcp-session-id header, so each initialize gets 404 too; it gives up after three."""
    lab = Lab(5)
    c = lab["tasks"]

    def tasks() -> Process:
        c.setup()
        while c.call().ok:
            yield PERIOD
        while True:
            yield 1.0
            if c.call().result != "refused":
                break
        for delay in (0.0, 1.0, 2.0):
            yield delay
            c.initialize(stale_header=True)

    lab.run({"tasks": tasks(), "dev-agents": cc_host(lab["dev-agents"]), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": cc_host(lab["ci-infra"])})
    last = [s for s in c.sent if s.rpc_method == "initialize"][-1]
    assert last.result == "404", last
    return lab.expecting({"tasks": Expect("stalled", "reinit-with-stale-header", stall(last, "404 session-not-found"))})


@scenario
def resume_without_initialize() -> Scenario:
    """dev-agents' call fails during the downtime; the user calls again after the server is
    back, with the old session id (404), and the client never initializes."""
    lab = Lab(6)
    c = lab["dev-agents"]

    def dev_agents() -> Process:
        c.setup()
        while c.call().ok:
            yield PERIOD
        yield START + 2.5 - c.cap.rel
        c.call("list_dev")

    lab.run({"tasks": cc_host(lab["tasks"], probe_old=True), "dev-agents": dev_agents(), "sprint": cc_host(lab["sprint"]), "ci-infra": cc_host(lab["ci-infra"])})
    first = next(s for s in c.sent if s.t > lab.cap.t0 + START)
    return lab.expecting({"dev-agents": Expect("stalled", "resume-without-initialize", stall(first, "404 session-not-found"))})


@scenario
def initialized_missing() -> Scenario:
    """ci-infra's new initialize succeeds but notifications/initialized is never sent."""
    lab = Lab(8)
    c = lab["ci-infra"]
    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"], probe_old=True), "sprint": cc_host(lab["sprint"]), "ci-infra": until_reinit(c)})
    init = [s for s in c.sent if s.rpc_method == "initialize"][-1]
    assert init.ok and c.sent[-1] is init
    return lab.expecting({"ci-infra": Expect("stalled", "initialized-missing", stall(init, "200"))})


@scenario
def tools_never_relisted() -> Scenario:
    """tasks sets up a new session (initialize 200, initialized 202) but never lists tools or
    calls again: the host keeps showing the old tools as disconnected."""
    lab = Lab(9)
    c = lab["tasks"]

    def tasks() -> Process:
        yield from until_reinit(c)
        yield 0.003
        c.initialized()

    lab.run({"tasks": tasks(), "dev-agents": cc_host(lab["dev-agents"]), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": cc_host(lab["ci-infra"])})
    done = c.sent[-1]
    assert done.rpc_method == "notifications/initialized" and done.result == "202"
    return lab.expecting({"tasks": Expect("stalled", "tools-never-relisted", stall(done, "202"))})


@scenario
def hung_request() -> Scenario:
    """sprint rebinds (initialize, initialized, GET, tools/list) but its first call's SSE stream
    opens and the response never comes; it stays open to the end of the capture."""
    lab = Lab(10)
    lab.server.hang.add(("sprint", "slow_tool"))
    c = lab["sprint"]

    def sprint() -> Process:
        yield from until_reinit(c)
        for step in (c.initialized, c.open_stream, c.list_tools):
            yield 0.003
            step()
        yield 0.2
        c.call("slow_tool", {"seconds": 0.5})

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"]), "sprint": sprint(), "ci-infra": cc_host(lab["ci-infra"], probe_old=True)})
    hung = c.sent[-1]
    assert hung.result == "no response"
    return lab.expecting({"sprint": Expect("stalled", "hung-request", stall(hung, "200, no JSON-RPC response"))})


@scenario
def get_conflict() -> Scenario:
    """dev-agents re-initializes and opens its GET stream; a second GET (a reconnect the client
    started while the first was still held) gets 409, the host closes the client (RST on the
    first stream) and never lists tools or calls again."""
    lab = Lab(17)
    c = lab["dev-agents"]
    conflict: list[Sent] = []

    def dev_agents() -> Process:
        yield from until_reinit(c)
        yield 0.003
        c.initialized()
        yield 0.003
        c.open_stream()
        yield 0.04
        conflict.append(c.open_stream())
        yield 0.01
        c.drop_stream()

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": dev_agents(), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": cc_host(lab["ci-infra"])})
    assert conflict[0].result == "409", conflict
    return lab.expecting({"dev-agents": Expect("stalled", "get-conflict", stall(conflict[0], "409 conflict"))})


@scenario
def reconnect_storm() -> Scenario:
    """tasks' GET stream is ended cleanly by the server after 1 s (priming event, retry: 1000)
    and reopened 1 s later, before and after the restart; tasks itself rebinds fine."""
    lab = Lab(13)
    lab.server.stream_lifetime["tasks"] = 1.0
    lab.server.stream_retry["tasks"] = 1000
    c = lab["tasks"]

    def reopen() -> Process:
        while True:
            yield 0.05
            ended = c.stream
            if ended is not None and not c.stream_open and ended.alive:  # ended cleanly
                sid = c.session_id
                yield 1.0
                if c.session_id == sid and c.stream is ended:
                    c.open_stream(last_event_id=ended.last_event_id)

    lab.cap.spawn(reopen(), at=0.5)
    lab.run({"tasks": cc_host(c), "dev-agents": cc_host(lab["dev-agents"]), "sprint": cc_host(lab["sprint"], probe_old=True), "ci-infra": cc_host(lab["ci-infra"])})
    return lab.expecting({"tasks": Expect("rebound", findings=("reconnect-storm",))})


@scenario
def dead_pooled_socket() -> Scenario:
    """tasks (its own keep-alive pool, 30 s idle timeout) misses the server's FIN on an idle
    pooled connection at shutdown; its first call after the restart is written on that
    socket and answered by RST; the host marks the server failed."""
    lab = Lab(14)
    c = lab["tasks"]
    c.pool = NodePool(lab.cap, lab.server, keep_alive=30.0)

    def tasks() -> Process:
        yield from cc_host(c, stream=False, stop_at=STOP - 0.6)
        yield START + 0.8 - c.cap.rel
        c.call()

    restart = lab.restart(unnoticed=lambda: [conn for conn in c.pool.conns if conn.idle])
    lab.run({"tasks": tasks(), "dev-agents": cc_host(lab["dev-agents"]), "sprint": cc_host(lab["sprint"]), "ci-infra": cc_host(lab["ci-infra"], probe_old=True)}, restart=restart)
    dead = c.sent[-1]
    assert dead.result == "reset", dead
    return lab.expecting({"tasks": Expect("stalled", "dead-pooled-socket", stall(dead, "reset, no response"))})


@scenario
def ends_during_downtime() -> Scenario:
    """The capture stops 3 s into the downtime: nobody can tell whether anything rebinds."""
    lab = Lab(15)
    lab.run({ns: cc_host(lab[ns]) for ns in NAMESPACES}, until=STOP + 3.0)
    return lab.expecting(dict.fromkeys(NAMESPACES, Expect("unknown")))


@scenario
def not_affected() -> Scenario:
    """ci-infra lives on a second server (port 18202) that never restarts; sprint only starts
    after the restart.  tasks and dev-agents rebind."""
    lab = Lab(16)
    other = Server(lab.cap, port=18202, namespaces=("ci-infra",))
    ci = Client(lab.cap, other, "ci-infra", pool=NodePool(lab.cap, other))
    sprint = lab["sprint"]

    def late_sprint() -> Process:
        yield START + 1.5 - sprint.cap.rel
        yield from cc_host(sprint)

    lab.run({"tasks": cc_host(lab["tasks"]), "dev-agents": cc_host(lab["dev-agents"], probe_old=True), "sprint": late_sprint(), "ci-infra": cc_host(ci)})
    return lab.expecting({"sprint": Expect("not-affected"), "ci-infra": Expect("not-affected")}, clients={"ci-infra": ci})
