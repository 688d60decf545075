from __future__ import annotations

import pytest

from mcpsniff.analysis.namespaces import NamespaceResolver, request_path
from mcpsniff.config import parse_config


@pytest.mark.parametrize(
    ("target", "server", "mcp", "expected"),
    [
        ("/tasks/mcp", "127.0.0.1:5076", True, "tasks"),
        ("/tasks/mcp/", "127.0.0.1:5076", True, "tasks"),
        ("/ci-infra/mcp?x=1", "127.0.0.1:5076", True, "ci-infra"),
        ("/api/v1/sprint/mcp", "127.0.0.1:5076", True, "sprint"),
        ("http://example:5076/sprint/mcp", "127.0.0.1:5076", True, "sprint"),
        ("/mcp", "127.0.0.1:5076", True, "127.0.0.1:5076"),
        ("/mcp", "[::1]:8000", True, "[::1]:8000"),
        ("/rpc", "127.0.0.1:5076", True, "/rpc"),
        ("/health", "127.0.0.1:5076", False, None),
        ("/favicon.ico", "127.0.0.1:5076", False, None),
    ],
)
def test_default_rules(target: str, server: str, mcp: bool, expected: str | None) -> None:
    assert NamespaceResolver(parse_config({})).resolve(target, server, mcp) == expected


def test_config_rules_come_first_and_use_groups() -> None:
    cfg = parse_config(
        {
            "namespaces": [
                {"path": r"^/api/(?P<ns>[^/]+)/rpc$", "name": "{ns}"},
                {"port": 9000, "name": "legacy"},
            ]
        }
    )
    resolver = NamespaceResolver(cfg)
    assert resolver.resolve("/api/billing/rpc", "127.0.0.1:5076") == "billing"
    assert resolver.resolve("/mcp", "127.0.0.1:9000") == "legacy"
    assert resolver.resolve("/tasks/mcp", "127.0.0.1:5076") == "tasks"


def test_request_path() -> None:
    assert request_path("/a/mcp?token=x#f") == "/a/mcp"
    assert request_path("https://h:1/a/mcp?q") == "/a/mcp"
    assert request_path("") == "/"
