"""Which namespace a request belongs to: decided per request, never per connection.

Node's fetch pool carries requests of several namespaces on one keep-alive
connection, so the request path (and config rules on path or port) is the only
reliable key.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..config import Config, NamespaceRule

_DEFAULT = re.compile(r"/(?P<ns>[^/]+)/mcp/?$")
_BARE = re.compile(r"^/mcp/?$")


def request_path(target: str) -> str:
    """Path of an origin-form or absolute-form request target, without query."""
    if target.startswith(("http://", "https://")):
        return urlsplit(target).path or "/"
    return target.split("?", 1)[0].split("#", 1)[0] or "/"


def _port(server: str) -> int | None:
    _, _, port = server.rpartition(":")
    return int(port) if port.isdigit() else None


def _apply(rule: NamespaceRule, path: str, port: int | None) -> str | None:
    if rule.port is not None and rule.port != port:
        return None
    if rule.path is None:
        return rule.name
    match = rule.path.search(path)
    if match is None:
        return None
    try:
        return rule.name.format(**{k: v for k, v in match.groupdict().items() if v is not None})
    except (KeyError, IndexError, ValueError):
        return rule.name


class NamespaceResolver:
    """Maps (request target, server address) to a namespace name, or None for non-MCP paths."""

    def __init__(self, config: Config) -> None:
        self._rules = config.namespaces
        self._cache: dict[tuple[str, str, bool], str | None] = {}

    def resolve(self, target: str, server: str, looks_like_mcp: bool = True) -> str | None:
        key = (target, server, looks_like_mcp)
        if key in self._cache:
            return self._cache[key]
        name = self._resolve(request_path(target), server, looks_like_mcp)
        if len(self._cache) < 10000:
            self._cache[key] = name
        return name

    def _resolve(self, path: str, server: str, looks_like_mcp: bool) -> str | None:
        port = _port(server)
        for rule in self._rules:
            name = _apply(rule, path, port)
            if name is not None:
                return name
        if _BARE.match(path):
            return server or "mcp"
        match = _DEFAULT.search(path)
        if match:
            return match.group("ns")
        # An unusual path that still carries MCP (JSON-RPC body, session header): keep it by path.
        return path if looks_like_mcp else None
