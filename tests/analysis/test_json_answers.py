"""What the lifecycle learns from a JSON (not SSE) answer to a POST.

A routine answer below 400 (a single result, no error or method in it) is not decoded
(``lifecycle._plain_result``, the hot path of big captures); these cases hold that
shortcut to what decoding the body says.
"""

from __future__ import annotations

import json

import pytest

from mcpsniff import records as R
from mcpsniff.analysis.lifecycle import LifecycleBuilder
from mcpsniff.config import Config

TOOLS = {"tools": [{"name": "a", "inputSchema": {"type": "object"}}, {"name": "b", "inputSchema": {"type": "object"}}]}


def answer(method: str, status: int, body: object) -> tuple[str, int | None]:
    """(error, tool count) of one POST /tasks/mcp answered with ``body`` as JSON."""
    builder = LifecycleBuilder(Config(), compact=True)
    server = "127.0.0.1:5076"
    request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}
    builder.feed(R.ConnEvent(1.0, "c1", "opened", "127.0.0.1:40000", server))
    builder.feed(R.Request(1.0, "c1", "c1.1", "POST", "/tasks/mcp", (("mcp-session-id", "s1"),), json.dumps(request), server=server))
    text = body if isinstance(body, str) else json.dumps(body)
    builder.feed(R.Response(1.1, "c1.1", status, headers=(("content-type", "application/json"),), body=text, t_end=1.1))
    (ex,) = builder.namespaces["tasks"].exchanges
    return ex.error, ex.tool_count


@pytest.mark.parametrize(
    ("method", "status", "body", "error", "tools"),
    [
        ("tools/call", 200, {"jsonrpc": "2.0", "id": 1, "result": {"content": []}}, "", None),
        ("tools/list", 200, {"jsonrpc": "2.0", "id": 1, "result": TOOLS}, "", 2),  # a tool list is read
        ("tools/call", 200, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "no such method"}}, "method-not-found", None),
        ("tools/call", 200, {"jsonrpc": "2.0", "id": 1, "error": {"code": 7, "message": "tool failed"}}, "jsonrpc-error", None),
        ("tools/call", 404, {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "Session not found"}}, "session-not-found", None),
        ("tools/call", 404, {"jsonrpc": "2.0", "id": 1, "result": {}}, "http-404", None),  # a result on a 404 still says 404
        ("tools/call", 503, {"jsonrpc": "2.0", "id": 1, "result": {}}, "upstream-unavailable", None),
        ("tools/call", 200, '{"jsonrpc": "2.0", "id": 1, "result": {"x": "an \\"error\\" in a string"}}', "", None),  # decoded: still no error
        ("tools/call", 200, '{"jsonrpc": "2.0", "id": 1, "result": ', "", None),  # cut short: nothing to learn
    ],
)
def test_what_a_json_answer_teaches(method: str, status: int, body: object, error: str, tools: int | None) -> None:
    assert answer(method, status, body) == (error, tools)
