"""The request headers the lifecycle reads, whatever their case (``lifecycle._mcp_headers``)."""

from __future__ import annotations

import pytest

from mcpsniff.analysis.lifecycle import _mcp_headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("mcp-session-id", "s1"), ("accept", "text/event-stream")), {"mcp-session-id": "s1", "accept": "text/event-stream"}),
        ((("Mcp-Session-Id", "s1"), ("ACCEPT", "a"), ("MCP-Protocol-Version", "2025-11-25")), {"mcp-session-id": "s1", "accept": "a", "mcp-protocol-version": "2025-11-25"}),
        ((("mCP-method", "tools/call"), ("Mcp-Name", "t")), {"mcp-method": "tools/call", "mcp-name": "t"}),
        ((("mcp-session-id", "first"), ("Mcp-Session-Id", "second")), {"mcp-session-id": "first"}),  # the first of each
        ((("accept-encoding", "gzip"), ("Authorization", "x"), ("MCP-Other", "y"), ("host", "h")), {}),
        ((), {}),
    ],
)
def test_headers_by_lower_case_name(headers: tuple[tuple[str, str], ...], expected: dict[str, str]) -> None:
    assert _mcp_headers(headers) == expected
