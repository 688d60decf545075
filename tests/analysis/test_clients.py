"""Client identification from what requests show (analysis/clients.py), table-driven.

The header sets are the ones the official SDKs really send (copied from the real captures
in tests/data/real: TS SDK 1.32 / 2.4 on Node 20, Python SDK 1.30 on httpx, Python SDK 2.3
on httpx2), plus hosts named in known-client-bugs.md.
"""

from __future__ import annotations

import json

import pytest

from mcpsniff.analysis.clients import ClientObserver, behaviour
from mcpsniff.analysis.schedules import CLAUDE_CODE, PY_GET, TS_GET
from mcpsniff.wire import jsonrpc

TS_POST = (("host", "127.0.0.1:18202"), ("connection", "keep-alive"), ("content-type", "application/json"), ("accept", "application/json, text/event-stream"), ("accept-language", "*"), ("sec-fetch-mode", "cors"), ("user-agent", "node"), ("accept-encoding", "gzip, deflate"))
TS_GET_HEADERS = (("host", "127.0.0.1:18202"), ("connection", "keep-alive"), ("mcp-session-id", "s1"), ("mcp-protocol-version", "2025-11-25"), ("Accept", "text/event-stream"), ("accept-language", "*"), ("sec-fetch-mode", "cors"), ("user-agent", "node"))
PY_POST = (("Host", "127.0.0.1:18207"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"), ("User-Agent", "python-httpx/0.28.1"), ("accept", "application/json, text/event-stream"), ("content-type", "application/json"))
PY2_POST = (("Host", "127.0.0.1:51613"), ("User-Agent", "python-httpx2/2.16.2"), ("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list"))


def initialize(name: str, version: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": name, "version": version}}})


def modern(name: str, version: str) -> str:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": name, "version": version}, "io.modelcontextprotocol/clientCapabilities": {}}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}})


CASES = [
    # (what, requests [(method, headers, body, conn)], family, version, host, a phrase of recognised_by)
    ("TS SDK 1.32: node user agent, fetch headers, capital Accept on GET, a shared pool",
     [("POST", TS_POST, initialize("lab-ts-client", "0.1.0"), "c1"), ("GET", TS_GET_HEADERS, "", "c1"), ("POST", TS_POST, "", "c1")], "ts-sdk", "", "lab-ts-client 0.1.0", "GET 'Accept' spelled as the TS SDK sets it"),
    ("Python SDK 1.x: httpx user agent, default clientInfo, a connection per request",
     [("POST", PY_POST, initialize("mcp", "0.1.0"), "c1"), ("POST", PY_POST, "", "c2"), ("POST", PY_POST, "", "c3")], "python-sdk", "(httpx 0.28.1)", "mcp 0.1.0", "a connection per request"),
    ("Python SDK 2.x speaking 2026-07-28: httpx2, clientInfo in _meta",
     [("POST", PY2_POST, modern("mcpsniff-lab-py", "2.3.0"), "c1")] * 3, "python-sdk", "(httpx2 2.16.2)", "mcpsniff-lab-py 2.3.0", "speaks 2026-07-28"),
    ("Claude Code by its clientInfo",
     [("POST", TS_POST, initialize("claude-code", "2.1.143"), "c1")], "claude-code", "2.1.143", "claude-code 2.1.143", "clientInfo claude-code"),
    ("VS Code by its clientInfo",
     [("POST", TS_POST, initialize("Visual Studio Code", "1.105.0"), "c1")], "vscode", "1.105.0", "Visual Studio Code 1.105.0", "clientInfo Visual Studio Code"),
    ("Claude Code by its user agent",
     [("POST", (("user-agent", "claude-code/2.0.31"),), "", "c1")], "claude-code", "2.0.31", "", "User-Agent: claude-code/2.0.31"),
    ("Go SDK by net/http's user agent",
     [("POST", (("User-Agent", "Go-http-client/1.1"),), "", "c1")], "go-sdk", "1.1", "", "User-Agent: Go-http-client/1.1"),
    ("an unknown agent stays unrecognised, and says so",
     [("POST", (("user-agent", "curl/8.5.0"),), "", "c1")], "unrecognised", "", "", "not a known client"),
]


@pytest.mark.parametrize(("requests", "family", "version", "host", "how"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_identification(requests: list, family: str, version: str, host: str, how: str) -> None:
    observer = ClientObserver()
    for method, headers, body, conn in requests:
        observer.request("ns", conn, "127.0.0.1:40000", method, headers, jsonrpc.parse(body).messages if body else ())
    if family == "ts-sdk":
        observer.request("other", "c1", "127.0.0.1:40000", "POST", TS_POST, ())  # a sibling on the same pooled connection
    ident = observer.identify("ns")
    assert (ident.family, ident.version, ident.host) == (family, version, host)
    assert any(how in line for line in ident.recognised_by), ident.recognised_by
    if family == "ts-sdk":
        assert ident.connections == "keep-alive pool shared with other namespaces"
        assert observer.pool_mates("ns") == {"other"}


def test_namespaces_of_one_client_share_a_key_and_other_clients_do_not() -> None:
    observer = ClientObserver()
    for ns in ("tasks", "sprint"):
        observer.request(ns, f"c-{ns}", "127.0.0.1:40001", "POST", PY_POST, jsonrpc.parse(initialize("mcp", "0.1.0")).messages)
    observer.request("ci-infra", "c9", "127.0.0.2:40002", "POST", TS_POST, jsonrpc.parse(initialize("lab-ts-client", "0.1.0")).messages)
    keys = {ns: observer.identify(ns).key for ns in ("tasks", "sprint", "ci-infra")}
    assert keys["tasks"] == keys["sprint"] != keys["ci-infra"]
    assert observer.identify("nobody").key == ""  # nothing seen: no siblings assumed


@pytest.mark.parametrize(("family", "stream", "host"), [("ts-sdk", TS_GET, ""), ("python-sdk", PY_GET, ""), ("claude-code", TS_GET, CLAUDE_CODE), ("unrecognised", "", "")])
def test_known_behaviour_per_family(family: str, stream: str, host: str) -> None:
    from mcpsniff.analysis.model import ClientIdentity

    got = behaviour(ClientIdentity(family=family))
    assert (got.stream_retry_name, got.host_retry_name) == (stream, host)
