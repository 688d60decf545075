"""Hand-built Analysis objects for report tests and the report benchmark.

They mirror the real ``one-stale`` capture (TypeScript client, four namespaces on
one port, a tool call every 700 ms, server down ~5 s, ``sprint`` stuck resuming
its old session id and getting 404 forever), so the report can be tested before
and independently of the analysis engine.  ``hostile_analysis`` fills every
capture-controlled field with markup and template syntax.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote
from dataclasses import dataclass, field

from mcpsniff.analysis.model import (
    PROVEN,
    REBOUND,
    STALLED,
    Analysis,
    Diagnosis,
    Divergence,
    Exchange,
    Generation,
    NamespaceLifecycle,
    RestartWindow,
    SseTick,
    StallPoint,
)

T0 = 1795484920.0
SERVER = "127.0.0.1:18202"
TOKEN = "sk-live-0123456789abcdefSECRET"
NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")


def sid(ns: str, gen: int) -> str:
    return hashlib.md5(f"{ns}/{gen}".encode()).hexdigest()


def req_headers(session: str | None, get: bool = False, extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    h = [("host", SERVER), ("connection", "keep-alive")]
    if session:
        h += [("mcp-session-id", session), ("mcp-protocol-version", "2025-11-25")]
    h += [("authorization", f"Bearer {TOKEN}")]
    h += [("accept", "text/event-stream")] if get else [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
    h += [("user-agent", "node"), ("accept-encoding", "gzip, deflate"), *extra]
    return tuple(h)


def resp_headers(status: int, stream: bool, session: str | None) -> tuple[tuple[str, str], ...]:
    h = [("date", "Tue, 24 Nov 2026 02:15:20 GMT"), ("server", "uvicorn")]
    if status == 202:
        return (*h, ("content-length", "0"))
    h.append(("content-type", "text/event-stream" if stream else "application/json"))
    if session:
        h.append(("mcp-session-id", session))
    if stream:
        h += [("cache-control", "no-cache, no-transform"), ("connection", "keep-alive"), ("x-accel-buffering", "no")]
    return tuple(h)


@dataclass
class _Builder:
    """Accumulates one namespace's exchanges with unique ids and pooled connections."""

    ns: str
    index: int
    exchanges: list[Exchange] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    n: int = 0

    def add(self, t: float, method: str, rpc: str, session: str | None, status: int | None, gen: int, *, dur: float = 0.004, stream: bool = False,
            outcome: str = "complete", new_session: str | None = None, error: str = "", detail: str = "", body: str = "", rbody: str = "",
            ticks: list[SseTick] | None = None, t_end: float | None = None, tools: int | None = None) -> Exchange:
        self.n += 1
        conn = f"c{self.index}{self.n % 5}" if method == "POST" else f"c{self.index}g{self.n}"
        rid = self.n
        if method == "POST" and not body:
            params = {"name": "echo", "arguments": {"text": f"call {rid}"}} if rpc == "tools/call" else {}
            body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": rpc, "params": params}) if not rpc.startswith("notifications/") else json.dumps({"jsonrpc": "2.0", "method": rpc})
        ex = Exchange(
            xid=f"{conn}.{self.n}", conn=conn, namespace=self.ns, t=T0 + t, method=method, target=f"/{self.ns}/mcp", frame=1000 * self.index + self.n,
            session_id=session, rpc_methods=[rpc] if rpc else [], rpc_ids=[rid] if method == "POST" and not rpc.startswith("notifications/") else [],
            status=status, t_response=None if status is None else T0 + t + dur, t_end=T0 + (t_end if t_end is not None else t + dur + 0.001) if outcome != "open-at-end" else None,
            outcome=outcome, new_session_id=new_session, error=error, error_detail=detail, tool_count=tools, stream=stream, events=ticks or [],
            request_headers=req_headers(session, get=method == "GET"), response_headers=() if status is None else resp_headers(status, stream, new_session or (session if status < 400 else None)),
            request_body=body, response_body=rbody, generation=gen,
        )
        self.exchanges.append(ex)
        return ex

    def session(self, t: float, gen: int, calls_until: float, interval: float) -> None:
        """initialize -> initialized -> GET stream -> tools/list -> tool calls."""
        s = sid(self.ns, gen)
        init = self.add(t, "POST", "initialize", None, 200, gen, dur=0.05, new_session=s,
                        rbody=json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": True}}, "serverInfo": {"name": self.ns, "version": "1.30.0"}}}))
        inited = self.add(t + 0.056, "POST", "notifications/initialized", s, 202, gen, dur=0.002)
        ticks = [SseTick(t=T0 + t + 0.062, rpc="", data="", id="0", retry=1000)]
        ticks += [SseTick(t=T0 + x, rpc="notifications/message", data=json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": f"{self.ns} heartbeat"}}), event="message", id=str(i + 1))
                  for i, x in enumerate(_frange(t + 2.5, calls_until, 2.5))]
        end_outcome = "reset" if calls_until < 30 else "open-at-end"
        stream = self.add(t + 0.061, "GET", "", s, 200, gen, dur=0.003, stream=True, ticks=ticks, outcome=end_outcome, t_end=calls_until)
        tl = self.add(t + 0.064, "POST", "tools/list", s, 200, gen, dur=0.01, stream=True, tools=3,
                      ticks=[SseTick(t=T0 + t + 0.074, rpc="response", data=json.dumps({"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": n} for n in ("echo", "add", "sleep")]}}), event="message")])
        first_ok = None
        for x in _frange(t + 0.17, calls_until - 0.05, interval):
            ex = self.add(x, "POST", "tools/call", s, 200, gen, dur=0.009, stream=True,
                          ticks=[SseTick(t=T0 + x + 0.009, rpc="response", data=json.dumps({"jsonrpc": "2.0", "id": self.n + 1, "result": {"content": [{"type": "text", "text": "ok"}]}}), event="message")])
            first_ok = first_ok or ex.t
        self.generations.append(Generation(index=gen, session_id=s, t_start=T0 + t, initialize_xid=init.xid, initialized_xid=inited.xid, initialized_status=202,
                                           tools_list_xid=tl.xid, tool_count=3, streams=[(stream.t, stream.t_end, stream.xid)], first_ok_call_t=first_ok,
                                           t_last=T0 + calls_until))


def _frange(start: float, stop: float, step: float) -> list[float]:
    out, x = [], start
    while x < stop:
        out.append(round(x, 6))
        x += step
    return out


NOT_FOUND = json.dumps({"jsonrpc": "2.0", "id": "server-error", "error": {"code": -32600, "message": "Session not found"}})


def build_analysis(duration: float = 40.0, interval: float = 0.7, t_down: float = 10.0, t_back: float = 15.2, stalled: tuple[str, ...] = ("sprint",),
                   namespaces: tuple[str, ...] = NAMESPACES) -> Analysis:
    """A realistic restart: every namespace but ``stalled`` re-initializes after the server is back."""
    lifecycles = []
    unattributed = []
    for i, ns in enumerate(namespaces):
        b = _Builder(ns, i + 1)
        b.session(0.008 + i * 0.0005, 1, t_down, interval)
        for k, delay in enumerate((1.0, 3.0)):  # TS backoff while the server is down: refused
            unattributed.append({"t": T0 + t_down + delay + i * 0.01, "conn": f"r{i}{k}", "event": "refused", "client": f"127.0.0.1:{41000 + 10 * i + k}", "server": SERVER, "frame": 90000 + 10 * i + k})
        first_try = t_back + 1.8 + i * 0.01
        old = sid(ns, 1)
        if ns in stalled:
            for x in _frange(first_try, duration, interval):
                b.add(x, "POST", "tools/call", old, 404, 1, dur=0.003, error="session-not-found", detail="Session not found", rbody=NOT_FOUND)
            first = b.exchanges[-len(_frange(first_try, duration, interval))]
            diag = Diagnosis(
                verdict=STALLED, signature="stale-session-loop",
                stall_point=StallPoint(t=first.t, xid=first.xid, conn=first.conn, frame=first.frame, method="POST", target=first.target, rpc_method="tools/call", result="404"),
                explanation=(f"After the server came back at +{t_back:.2f}s, {ns} kept sending requests with its old session id {old[:8]}… and got 404 "
                             "\"Session not found\" every time; no initialize ever followed, so the namespace never got a new session."),
                advice="Make the client start a new session (initialize without Mcp-Session-Id) when it gets 404 for its session.",
                evidence=[f"{len(_frange(first_try, duration, interval))} requests with the stale session id, all 404", "no initialize after the restart"],
                t_first_try_after_back=first.t, attempt_gaps=[interval] * 5, schedule_match="fixed 0.7 s (tool-call loop)", t_server_back=T0 + t_back, basis=PROVEN,
                divergence=Divergence(t=first.t, siblings=[n for n in namespaces if n not in stalled],
                                      text=f"the others re-initialized after their first 404; {ns} came back with its old session id at +{first.t - T0:.2f}s (404)"))
        else:
            bad = b.add(first_try, "POST", "tools/call", old, 503 if ns == "dev-agents" else 404, 1, dur=0.003,
                        error="proxy-unavailable" if ns == "dev-agents" else "session-not-found",
                        rbody="<html><body><h1>503 Service Unavailable</h1></body></html>" if ns == "dev-agents" else NOT_FOUND)
            b.session(first_try + 0.02, 2, duration, interval)
            g2 = b.generations[-1]
            diag = Diagnosis(verdict=REBOUND, signature="new-session", explanation=f"{ns} got {bad.status} for its old session and started a new one.",
                             t_first_try_after_back=bad.t, t_rebound=g2.first_ok_call_t, attempt_gaps=[1.0, 2.0, 4.0], schedule_match="TS host backoff 1,2,4,8,16 s", t_server_back=T0 + t_back,
                             basis=PROVEN)
        b.exchanges.sort(key=lambda ex: ex.t)
        lifecycles.append(NamespaceLifecycle(name=ns, exchanges=b.exchanges, generations=b.generations, diagnosis=diag))
    conns: dict[str, dict[str, object]] = {}
    for lc in lifecycles:
        for ex in lc.exchanges:
            conns.setdefault(ex.conn, {"client": f"127.0.0.1:{50000 + len(conns)}", "server": SERVER, "events": []})
    n_ex = sum(len(lc.exchanges) for lc in lifecycles)
    return Analysis(
        sources=["/home/alice/captures/one-stale/capture.pcap"], t0=T0, t_last=T0 + duration + 0.2, namespaces=lifecycles,
        restarts=[RestartWindow(t_last_good=T0 + t_down - 0.3, t_down=T0 + t_down, t_back=T0 + t_back, refused=len(unattributed), resets=len(namespaces),
                                evidence=["server reset 4 GET streams", f"{len(unattributed)} connections refused", "first accepted connection"])],
        connections=conns, unattributed=unattributed, warnings=["2 packets before the first SYN were ignored"],
        stats={"packets": 9000, "connections": len(conns), "exchanges": n_ex},
    )


HOSTILE = [
    "<script>alert(1)</script>",
    "</script><script>alert(2)</script>",
    "<img src=x onerror=alert(3)>",
    "javascript:alert(4)",
    "{{ 7*7 }}{% raw %}",
    "<!-- <script>",
    "\u2028\u2029<svg onload=alert(5)>",
    "<iframe src=\"https://example.com/\"></iframe>",
    "<link rel=stylesheet href=https://example.com/x.css>",
]


def hostile_analysis() -> Analysis:
    """Every string a capture controls carries markup, script and template syntax."""
    a = build_analysis(duration=22.0)
    evil = " ".join(HOSTILE)
    sprint = next(ns for ns in a.namespaces if ns.name == "sprint")
    sprint.name = "sprint<script>alert(6)</script>"
    for ns in a.namespaces:
        for ex in ns.exchanges[:40]:
            ex.namespace = ns.name
            ex.target = f"/{ns.name}/mcp?x=<script>alert(7)</script>&u=javascript:alert(8)"
            ex.rpc_methods = [f"tools/call<img src=x onerror=alert(9)>{evil}", "__proto__", "constructor"] if ex.rpc_methods else []
            ex.request_headers = (*ex.request_headers, ("x-evil</script>", evil), ("referer", "javascript:alert(10)"))
            ex.response_headers = (*ex.response_headers, ("x-evil", evil))
            ex.request_body = json.dumps({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": evil, "arguments": {"html": evil}}})
            ex.response_body = evil + "</script><script>alert(11)</script>"
            ex.error_detail = evil
            ex.session_id = ex.session_id and ex.session_id + "<b>x</b>"
            ex.events = [SseTick(t=ex.t + 0.001, rpc=f"notifications/{evil}", data=evil, id=evil, event=evil)]
    sprint.diagnosis.signature = "stale-session-loop<script>alert(12)</script>"
    sprint.diagnosis.explanation = evil
    sprint.diagnosis.advice = evil
    sprint.diagnosis.evidence = [evil]
    if sprint.diagnosis.stall_point:
        sprint.diagnosis.stall_point.target = evil
        sprint.diagnosis.stall_point.rpc_method = evil
    a.warnings.append(evil)
    a.sources.append(f"/tmp/{HOSTILE[1]}.pcap")
    a.unattributed.append({"t": a.t0 + 12.0, "conn": evil, "event": "refused", "client": evil, "server": evil, "frame": 1})
    return a


# ---- secrets in the places redaction used to miss (issue 13, item 10) ----------------------------

LEAKS = {  # leak class -> the secrets it plants
    "json-in-json": ["AT-json-in-json-0001", "RT-json-in-json-0002", "K-twice-embedded-0003"],
    "camel-case": ["AT-camel-0004", "RT-camel-0005", "CS-camel-0006"],
    "form-body": ["PW-form-0007", "CS-form-0008", "AT-form-json-0009"],
    "private-token": ["glpat-private-0010", "glpat-private-0011"],
}


def _tool_result(rid: int, text: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}], "isError": False}})


def leaky_analysis(only: str | None = None) -> Analysis:
    """The sample capture with the secrets of ``LEAKS`` (one class, or all) where a capture holds them:
    tool results, request bodies, headers, the analysis' own text and a warning."""
    a = build_analysis(duration=22.0)
    tasks, sprint = a.namespaces[0], a.namespaces[2]
    calls = [ex for ex in tasks.exchanges if ex.rpc_methods == ["tools/call"] and ex.status == 200]
    want = set(LEAKS) if only is None else {only}
    if "json-in-json" in want:
        at, rt, key = LEAKS["json-in-json"]
        # an OAuth tool's result: JSON text inside the JSON-RPC result's "text" string, on the SSE stream and as a plain body
        token = json.dumps({"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": rt})
        calls[0].events[0].data = _tool_result(7, token)
        calls[1].response_body = _tool_result(8, json.dumps(json.loads(token), indent=2))
        # two levels down: a tool that returns a JSON document holding another JSON document as a string
        calls[2].events[0].data = _tool_result(9, json.dumps({"config": json.dumps({"api_key": key})}))
        sprint.diagnosis.evidence.append(f"last answer before the restart: {calls[0].events[0].data}")
    if "camel-case" in want:
        at, rt, cs = LEAKS["camel-case"]
        calls[3].request_body = json.dumps({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
                                            "params": {"name": "login", "arguments": {"accessToken": at, "RefreshToken": rt, "client-Secret": cs, "maxTokens": 5}}})
        calls[3].events[0].data = _tool_result(10, json.dumps({"session": {"accessToken": at}}))
        sprint.diagnosis.evidence.append(f"last call before the restart: {calls[3].request_body}")
    if "form-body" in want:
        pw, cs, at = LEAKS["form-body"]
        calls[4].request_body = f"password={pw}&username=alice&client_secret={cs}"
        calls[4].request_headers = (*calls[4].request_headers, ("content-type", "application/x-www-form-urlencoded"))
        calls[5].request_body = "grant_type=client_credentials&state=" + quote(json.dumps({"accessToken": at}), safe="")
        sprint.diagnosis.evidence.append(f"body of the last call: {calls[4].request_body}")
    if "private-token" in want:
        header, text = LEAKS["private-token"]
        for ex in calls[6:9]:
            ex.request_headers = (*ex.request_headers, ("Private-Token", header))
        sprint.diagnosis.evidence.append(f"the client retried with Private-Token: {text}")
        a.warnings.append(f"request header line 'Private-Token: {text}' was folded")
    return a
