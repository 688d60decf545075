"""What analysis produces: per-namespace lifecycles and verdicts (pure data, no I/O).

Reports (terminal, JSON, HTML, JUnit, ...) read only these classes; their JSON
form (``to_dict``) is described by ``schemas/analysis.schema.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ..records import Headers, Rebuilt

ANALYSIS_VERSION: Final = 2

REBOUND: Final = "rebound"
STALLED: Final = "stalled"
NOT_AFFECTED: Final = "not-affected"
UNKNOWN: Final = "unknown"
VERDICTS = (REBOUND, STALLED, NOT_AFFECTED, UNKNOWN)

PROVEN: Final = "proven"  # the wire shows it (a new session that works, a 404 loop, a rejected initialize)
INFERRED: Final = "inferred"  # concluded from known client behaviour (see Diagnosis.inference)
BASES = (PROVEN, INFERRED, "")  # "" for unknown

# Diagnosis.inference values
SCHEDULE_EXHAUSTED: Final = "schedule-exhausted"  # the client's known finite retry schedule ran out, nothing followed
SIBLINGS_ALIVE: Final = "siblings-alive"  # the same client rebound its other namespaces; this one stayed silent
HUNG: Final = "hung"  # a request unanswered far longer than the server's answers to others
SILENCE: Final = "silence"  # silent longer than any known client retry schedule (thresholds.give_up_after)


# The dataclasses below spell out __init__ (mypyc compiles it; the generated one runs as Python: see records.py).
@dataclass
class SseTick(Rebuilt):
    """One SSE event on a stream (``rpc`` is the JSON-RPC method or "response"/"error")."""

    t: float
    rpc: str
    data: str
    id: str | None = None
    event: str = ""
    retry: int | None = None

    def __init__(self, t: float, rpc: str, data: str, id: str | None = None, event: str = "", retry: int | None = None) -> None:
        self.t = t
        self.rpc = rpc
        self.data = data
        self.id = id
        self.event = event
        self.retry = retry


@dataclass
class Exchange(Rebuilt):
    """One HTTP request/response of one namespace, with its MCP meaning."""

    xid: str
    conn: str
    namespace: str
    t: float  # request time
    method: str  # HTTP method
    target: str
    frame: int | None = None  # the packet that completed the request (Wireshark's HTTP row)
    server: str = ""  # "ip:port" the request went to
    count: int = 1  # >1: routine calls merged into this one (compact analysis of huge captures)
    session_id: str | None = None  # Mcp-Session-Id the request carried
    rpc_methods: list[str] = field(default_factory=list)  # JSON-RPC methods in the request body
    rpc_ids: list[Any] = field(default_factory=list)
    status: int | None = None  # None: no response
    t_response: float | None = None
    t_end: float | None = None
    outcome: str = ""  # records.End outcome, or "" while unknown
    new_session_id: str | None = None  # Mcp-Session-Id the response assigned
    error: str = ""  # classification of a failed exchange, e.g. "session-not-found"
    error_detail: str = ""  # JSON-RPC error message / body excerpt
    tool_count: int | None = None  # for tools/list results
    tools: tuple[tuple[str, str], ...] = ()  # for tools/list results: (name, schema hash) of each tool
    stream: bool = False  # response was text/event-stream
    events: list[SseTick] = field(default_factory=list)
    request_headers: Headers = ()
    response_headers: Headers = ()
    request_body: str = ""
    response_body: str = ""
    generation: int = 0  # index into NamespaceLifecycle.generations (0: before any known session)
    protocol: str = ""  # MCP-Protocol-Version header, else the version in params._meta / initialize
    mcp_method: str = ""  # Mcp-Method header (2026-07-28)
    mcp_name: str = ""  # Mcp-Name header (2026-07-28), else the tool/prompt name or resource URI of the body
    t_frame: float | None = None  # time of ``frame`` (later than ``t`` when the request took several packets)

    def __init__(
        self,
        xid: str,
        conn: str,
        namespace: str,
        t: float,
        method: str,
        target: str,
        frame: int | None = None,
        server: str = "",
        count: int = 1,
        session_id: str | None = None,
        rpc_methods: list[str] | None = None,
        rpc_ids: list[Any] | None = None,
        status: int | None = None,
        t_response: float | None = None,
        t_end: float | None = None,
        outcome: str = "",
        new_session_id: str | None = None,
        error: str = "",
        error_detail: str = "",
        tool_count: int | None = None,
        tools: tuple[tuple[str, str], ...] = (),
        stream: bool = False,
        events: list[SseTick] | None = None,
        request_headers: Headers = (),
        response_headers: Headers = (),
        request_body: str = "",
        response_body: str = "",
        generation: int = 0,
        protocol: str = "",
        mcp_method: str = "",
        mcp_name: str = "",
        t_frame: float | None = None,
    ) -> None:
        self.xid = xid
        self.conn = conn
        self.namespace = namespace
        self.t = t
        self.method = method
        self.target = target
        self.frame = frame
        self.server = server
        self.count = count
        self.session_id = session_id
        self.rpc_methods = [] if rpc_methods is None else rpc_methods
        self.rpc_ids = [] if rpc_ids is None else rpc_ids
        self.status = status
        self.t_response = t_response
        self.t_end = t_end
        self.outcome = outcome
        self.new_session_id = new_session_id
        self.error = error
        self.error_detail = error_detail
        self.tool_count = tool_count
        self.tools = tools
        self.stream = stream
        self.events = [] if events is None else events
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.request_body = request_body
        self.response_body = response_body
        self.generation = generation
        self.protocol = protocol
        self.mcp_method = mcp_method
        self.mcp_name = mcp_name
        self.t_frame = t_frame

    @property
    def label(self) -> str:
        """Short human name: "POST initialize", "GET stream", ..."""
        if self.method == "GET":
            return "GET stream"
        if self.rpc_methods:
            return f"{self.method} {','.join(self.rpc_methods)}"
        return self.method

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.error


@dataclass
class ClientIdentity:
    """Who sent a namespace's requests, as far as the wire tells (see analysis/clients.py)."""

    family: str = "unrecognised"  # "ts-sdk", "python-sdk", "claude-code", "vscode", ...
    label: str = "unrecognised"
    version: str = ""  # when visible (User-Agent or clientInfo)
    host: str = ""  # clientInfo name and version from initialize
    recognised_by: list[str] = field(default_factory=list)
    protocol_version: str = ""
    connections: str = ""  # "keep-alive pool shared with other namespaces", "a connection per request", ...
    address: str = ""  # client IP address(es)
    key: str = ""  # namespaces with the same key are taken to be one client process (siblings)


@dataclass
class Attempt:
    """One try of a namespace to get back, on the wire or attributed to it."""

    t: float
    kind: str  # "request" (seen with its path) or "refused"/"reset" (a connection that carried no request)
    label: str  # "POST initialize", "GET stream", "connection"
    result: str  # "refused", "404 session-not-found", "502 upstream-unavailable", ...
    attributed_by: str  # "request on the wire", "timing fit: <schedule>, step n of m", "client address"
    frame: int | None = None
    xid: str | None = None
    conn: str = ""


@dataclass
class Divergence:
    """Where a stalled namespace's story parted from the siblings that rebound."""

    t: float | None
    siblings: list[str]
    text: str


SESSION: Final = "session"  # Generation.kind: a 2025-era session, from its initialize
INSTANCE: Final = "instance"  # a 2026-07-28 client instance, from its server/discover or first request

# NamespaceLifecycle.revision values
SESSIONS: Final = "2025-era sessions"
SESSIONLESS: Final = "2026-07-28 sessionless"
FALLBACK: Final = "negotiated fallback"
MIXED: Final = "both revisions"


@dataclass
class Generation:
    """One MCP session of a namespace (from its initialize to its last use), or, in the
    sessionless 2026-07-28 revision, one client instance (from its server/discover or its
    first request after a disruption)."""

    index: int  # 1-based
    session_id: str | None
    t_start: float
    initialize_xid: str | None = None  # initialize, or server/discover for an instance
    initialized_xid: str | None = None  # notifications/initialized POST
    initialized_status: int | None = None
    tools_list_xid: str | None = None
    tool_count: int | None = None
    catalog: list[tuple[str, str]] = field(default_factory=list)  # (name, schema hash) of every tool listed in it
    streams: list[tuple[float, float | None, str]] = field(default_factory=list)  # (open, close, xid)
    first_ok_call_t: float | None = None  # first successful normal request
    t_last: float | None = None
    kind: str = SESSION
    revision: str = ""  # the protocol version the session or instance speaks


@dataclass
class RestartWindow:
    """Server downtime derived from TCP evidence."""

    t_last_good: float | None  # last good response before the trouble
    t_down: float  # first sign of trouble (server closed/reset streams, first refusal)
    t_back: float | None  # first accepted connection afterwards (None: not seen)
    refused: int = 0
    resets: int = 0
    t_last_refused: float | None = None
    server: str = ""  # "ip:port" of the server that restarted
    evidence: list[str] = field(default_factory=list)


@dataclass
class StallPoint:
    """The request after which the expected next step never came."""

    t: float
    xid: str | None
    conn: str
    frame: int | None
    method: str  # HTTP method ("" for a bare refused connection)
    target: str
    rpc_method: str
    result: str  # "404", "refused", "reset", "no response", ...
    attributed_by: str = ""  # for a connection that carried no request: how it was tied to the namespace
    tcp_stream: int | None = None  # Wireshark's tcp.stream of its connection (pcap input; None: unknown)
    display_filter: str = ""  # the Wireshark display filter that isolates it: "tcp.stream eq N"

    def set_stream(self, stream: int) -> None:
        self.tcp_stream = stream
        self.display_filter = f"tcp.stream eq {stream}"

    def describe(self, t0: float) -> str:
        where = f"#{self.frame} " if self.frame is not None else ""
        what = f"{self.method} {self.target}".strip() or "connection"
        rpc = f" ({self.rpc_method})" if self.rpc_method else ""
        how = f" [{self.attributed_by}]" if self.attributed_by else ""
        return f"{where}{what}{rpc} -> {self.result} at +{self.t - t0:.2f}s{how}"


@dataclass
class Diagnosis:
    """The verdict for one namespace and why."""

    verdict: str
    signature: str = ""  # stall signature name from mcp-wire.md, or a finding name
    stall_point: StallPoint | None = None
    explanation: str = ""  # one paragraph
    advice: str = ""  # one line
    evidence: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # non-fatal findings (e.g. reconnect-storm)
    missing: str = ""  # for "unknown": what evidence is missing
    t_first_try_after_back: float | None = None
    t_rebound: float | None = None  # first successful call in the new session
    attempt_gaps: list[float] = field(default_factory=list)  # seconds between retry attempts
    schedule_match: str = ""  # which known client schedule the gaps fit
    t_server_back: float | None = None  # when the server came back from the restart judged against
    basis: str = ""  # PROVEN or INFERRED ("" for unknown)
    inference: str = ""  # with INFERRED: SCHEDULE_EXHAUSTED, SIBLINGS_ALIVE, HUNG or SILENCE
    inference_detail: str = ""  # the inference in words
    attempts: list[Attempt] = field(default_factory=list)
    divergence: Divergence | None = None
    known_reports: list[str] = field(default_factory=list)  # "matches the pattern of <ref>: ..."
    next_capture: str = ""  # for unknown: what to capture next time to decide


@dataclass(repr=False)
class NamespaceLifecycle:
    name: str
    exchanges: list[Exchange] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    diagnosis: Diagnosis = field(default_factory=lambda: Diagnosis(verdict=UNKNOWN))
    client: ClientIdentity = field(default_factory=ClientIdentity)
    revision: str = ""  # SESSIONS, SESSIONLESS, FALLBACK or MIXED
    probe: str = ""  # for FALLBACK: the version probe and what the server answered

    def __repr__(self) -> str:
        return f"<NamespaceLifecycle {self.name}: {self.diagnosis.verdict}, {len(self.exchanges)} exchanges, {len(self.generations)} sessions>"


@dataclass(repr=False)
class Analysis:
    """Everything mcpsniff learnt from one or more capture files."""

    sources: list[str]
    t0: float  # the capture file's first packet (any port), as Wireshark's time reference; reports show times relative to it
    t_last: float
    namespaces: list[NamespaceLifecycle]
    restarts: list[RestartWindow] = field(default_factory=list)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # conn -> {client, server, events}
    unattributed: list[dict[str, Any]] = field(default_factory=list)  # refused/reset conns with no request
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)  # packets, connections, exchanges, ...
    conformance: dict[str, list[str]] = field(default_factory=dict)  # server -> protocol conformance findings

    @property
    def stalled(self) -> list[NamespaceLifecycle]:
        return [ns for ns in self.namespaces if ns.diagnosis.verdict == STALLED]

    def __repr__(self) -> str:
        """Short: a failing test that shows an Analysis must not print every exchange of the capture."""
        verdicts = ", ".join(f"{ns.name}={ns.diagnosis.verdict}" for ns in self.namespaces)
        return f"<Analysis of {', '.join(self.sources) or 'records'}: {verdicts or 'no MCP traffic'}>"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version"] = ANALYSIS_VERSION
        for ns in data["namespaces"]:
            for ex in ns["exchanges"]:
                ex["request_headers"] = [list(h) for h in ex["request_headers"]]
                ex["response_headers"] = [list(h) for h in ex["response_headers"]]
            for gen in ns["generations"]:
                gen["streams"] = [list(s) for s in gen["streams"]]
        return data
