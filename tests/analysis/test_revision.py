"""The 2026-07-28 revision: header and _meta parsing, the new error codes, revision per namespace,
client instances, the sessionless signatures and the conformance findings.

Records are written the way the mitmproxy addon writes them (a request, its response, its end),
with the headers and bodies the official SDKs 2.x send (see tests/data/real/*/ for the real ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from mcpsniff import records as R
from mcpsniff.analysis.conformance import meta_version, rpc_name
from mcpsniff.analysis.diagnose import analyze_records
from mcpsniff.analysis.lifecycle import classify_error
from mcpsniff.analysis.model import FALLBACK, MIXED, SESSIONLESS, SESSIONS
from mcpsniff.config import Config
from mcpsniff.wire import jsonrpc

SERVER = "127.0.0.1:5076"
MODERN = "2026-07-28"


def meta(version: str = MODERN) -> dict[str, object]:
    return {"io.modelcontextprotocol/protocolVersion": version, "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"}, "io.modelcontextprotocol/clientCapabilities": {}}


def error(code: int, message: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}})


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, error(-32020, "mcp-method header does not match the request body's method"), "header-mismatch"),
        (400, error(-32021, "Client did not declare required extension"), "missing-capability"),
        (400, error(-32022, "Unsupported protocol version"), "unsupported-version"),
        (404, error(-32601, "Method not found"), "method-not-found"),
        (404, error(-32600, "Session not found"), "session-not-found"),
        (400, error(-32600, "Bad Request: Missing session ID"), "session-not-found"),
        (404, '{"detail":"Not Found"}', "route-not-mounted"),
    ],
)
def test_error_bodies_are_named_by_their_code(status: int, body: str, kind: str) -> None:
    assert classify_error(status, body, jsonrpc.parse(body).messages)[0] == kind


@pytest.mark.parametrize(
    ("body", "version", "name"),
    [
        ({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "ping", "arguments": {}, "_meta": meta()}}, MODERN, "ping"),
        ({"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": "file:///a.txt", "_meta": meta()}}, MODERN, "file:///a.txt"),
        ({"jsonrpc": "2.0", "id": 5, "method": "prompts/get", "params": {"name": "review", "_meta": meta("2099-01-01")}}, "2099-01-01", "review"),
        ({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}, "", ""),
        ({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": "not an object"}, "", ""),
    ],
)
def test_meta_version_and_mcp_name_from_the_body(body: dict, version: str, name: str) -> None:
    messages = jsonrpc.parse(json.dumps(body)).messages
    assert (meta_version(messages), rpc_name(messages)) == (version, name)


@dataclass
class Script:
    """Records of proxied 2026-07-28 (and 2025) clients, one exchange at a time."""

    recs: list[R.Record] = field(default_factory=list)
    n: int = 0

    def post(self, t: float, ns: str, method: str, status: int | None, *, version: str | None = MODERN, body: dict | None = None, answer: str | None = None, new_sid: str | None = None, sid: str | None = None, outcome: str = R.COMPLETE, stream: bool = False, headers: tuple = (), t_end: float | None = None) -> None:
        self.n += 1
        conn, xid = f"c{self.n}", f"c{self.n}.1"
        msg = body or {"jsonrpc": "2.0", "id": self.n, "method": method, "params": {"_meta": meta(version or MODERN)} if version and version != "2025-11-25" else {}}
        hdrs = [*headers]
        if version:
            hdrs.append(("mcp-protocol-version", version))
            if version != "2025-11-25":
                hdrs.append(("mcp-method", method))
        if sid:
            hdrs.append(("mcp-session-id", sid))
        self.recs.append(R.Request(t=t, conn=conn, xid=xid, method="POST", target=f"/{ns}/mcp", headers=tuple(hdrs), body=json.dumps(msg), server=SERVER))
        if status is not None:
            result = {"tools": [{"name": "ping"}]} if method == "tools/list" else {}
            rbody = answer if answer is not None else json.dumps({"jsonrpc": "2.0", "id": self.n, "result": result})
            rh = (("mcp-session-id", new_sid),) if new_sid else ()
            self.recs.append(R.Response(t=t + 0.01, xid=xid, status=status, headers=rh, body="" if stream else rbody, stream=stream, t_end=None if stream else t + 0.01))
        self.recs.append(R.End(t=t_end if t_end is not None else t + 0.02, xid=xid, outcome=outcome))

    def refused(self, t: float, ns: str, method: str = "tools/call") -> None:
        self.post(t, ns, method, None, outcome=R.REFUSED)

    def discover_and_call(self, t: float, ns: str) -> None:
        self.post(t, ns, "server/discover", 200)
        self.post(t + 0.1, ns, "tools/list", 200)
        self.post(t + 0.2, ns, "tools/call", 200)

    def analyze(self):  # type: ignore[no-untyped-def]
        return analyze_records(iter(sorted(self.recs, key=lambda r: r.t)), Config(), sources=["test"])


def by_name(analysis) -> dict:  # type: ignore[no-untyped-def]
    return {ns.name: ns for ns in analysis.namespaces}


def test_revision_per_namespace_and_the_probe_is_neither_session_nor_failure() -> None:
    s = Script()
    s.discover_and_call(0.0, "new")  # 2026-07-28 both ways
    probe_answer = error(-32600, "Bad Request: Missing session ID")
    s.post(0.0, "fallback", "server/discover", 400, answer=probe_answer, new_sid="throwaway")  # an old server answers the probe
    s.post(0.1, "fallback", "initialize", 200, version=None, body={"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}, new_sid="real")
    s.post(0.2, "fallback", "notifications/initialized", 202, version="2025-11-25", sid="real", body={"jsonrpc": "2.0", "method": "notifications/initialized"})
    s.post(0.3, "old", "initialize", 200, version=None, body={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}, new_sid="s1")
    a = s.analyze()
    ns = by_name(a)
    assert (ns["new"].revision, ns["fallback"].revision, ns["old"].revision) == (SESSIONLESS, FALLBACK, SESSIONS)
    assert "server/discover" in ns["fallback"].probe and "400" in ns["fallback"].probe and "throwaway" in ns["fallback"].probe
    assert [g.session_id for g in ns["fallback"].generations] == ["real"]  # the throwaway id is no session
    assert all(d.diagnosis.verdict == "not-affected" for d in ns.values())  # the probe's 400 is no failure
    assert [g.kind for g in ns["new"].generations] == ["instance"]
    assert any("minted a session id on an error response" in f for f in a.conformance[SERVER])


def test_client_instances_start_at_discover_and_after_a_transport_error() -> None:
    s = Script()
    s.discover_and_call(0.0, "ns")
    s.post(0.7, "ns", "tools/call", 200)
    s.post(1.4, "ns", "tools/call", None, outcome=R.RESET)  # the connection broke
    s.post(2.1, "ns", "tools/call", 200)  # same client, new instance (no discover: the TS 2.4 client just goes on)
    s.discover_and_call(5.0, "ns")  # a rebuilt client
    ns = by_name(s.analyze())["ns"]
    assert [round(g.t_start, 1) for g in ns.generations] == [0.0, 2.1, 5.0]
    assert [g.initialize_xid is not None for g in ns.generations] == [True, False, True]


def healthy(s: Script, ns: str) -> None:
    s.discover_and_call(0.0, ns)
    s.refused(10.0, ns)
    s.discover_and_call(16.0, ns)


def test_sessionless_rebind_by_a_rebuilt_client() -> None:
    s = Script()
    healthy(s, "ok")
    d = by_name(s.analyze())["ok"].diagnosis
    assert (d.verdict, d.signature, d.basis) == ("rebound", "rebuilt-client", "proven")


def test_version_mismatch_loop_is_proven() -> None:
    s = Script()
    healthy(s, "ok")
    s.discover_and_call(0.5, "pinned")
    s.refused(10.1, "pinned")
    for t in (16.5, 17.5, 18.5):
        s.post(t, "pinned", "tools/call", 400, answer=error(-32022, "Unsupported protocol version"))
    d = by_name(s.analyze())["pinned"].diagnosis
    assert (d.verdict, d.signature, d.basis) == ("stalled", "version-mismatch-loop", "proven")
    assert d.stall_point is not None and d.stall_point.t == 16.5 and d.stall_point.result.startswith("400 unsupported-version")


def test_a_request_the_restart_cut_that_is_never_sent_again() -> None:
    s = Script()
    healthy(s, "ok")
    s.discover_and_call(0.5, "cut")
    s.post(9.8, "cut", "tools/call", 200, stream=True, outcome=R.CLOSED, t_end=10.05)  # its stream broke with the server
    s.post(60.0, "ok", "tools/call", 200)  # the capture goes on
    d = by_name(s.analyze())["cut"].diagnosis
    assert (d.verdict, d.signature) == ("stalled", "request-not-reissued")
    assert d.stall_point is not None and d.stall_point.t == 9.8


def test_calls_resume_but_the_listen_is_lost_is_a_rebind_with_a_finding() -> None:
    s = Script()
    s.discover_and_call(0.0, "keep")
    s.post(0.3, "keep", "subscriptions/listen", 200, stream=True, outcome=R.CLOSED, t_end=10.05)
    s.refused(10.0, "keep")
    s.post(16.0, "keep", "tools/call", 200)
    d = by_name(s.analyze())["keep"].diagnosis
    assert (d.verdict, d.signature) == ("rebound", "requests-resumed")
    assert any(f.startswith("subscription-not-reissued") for f in d.findings)


def test_conformance_findings() -> None:
    s = Script()
    s.post(0.0, "a", "tools/list", 200, headers=(("mcp-name", "x"),), body={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ping", "_meta": meta()}})
    s.post(0.1, "a", "tools/list", 400, answer="bad request")
    s.recs.append(R.Request(t=0.2, conn="cx", xid="cx.1", method="POST", target="/a/mcp", headers=(), body=json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": meta()}}), server=SERVER))
    s.recs.append(R.End(t=0.3, xid="cx.1", outcome=R.COMPLETE))
    found = " | ".join(s.analyze().conformance[SERVER])
    assert "Mcp-Method header (tools/list) does not match its body's method (tools/call)" in found
    assert "Mcp-Name header (x) does not match its body (ping)" in found
    assert "400 answer carries no JSON-RPC error body" in found
    assert "carries no MCP-Protocol-Version header" in found


def test_both_revisions_in_one_namespace_are_named() -> None:
    s = Script()
    s.discover_and_call(0.0, "ns")
    s.post(1.0, "ns", "initialize", 200, version=None, body={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}, new_sid="s1")
    assert by_name(s.analyze())["ns"].revision == MIXED
