"""Which namespace a request belongs to: decided per request, never per connection.

Node's fetch pool carries requests of several namespaces on one keep-alive
connection, so the request path (and config rules on path or port) is the only
reliable key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..config import Config, NamespaceRule
from ..records import ConnEvent, Record, Request

_DEFAULT = re.compile(r"/(?P<ns>[^/]+)/mcp/?$")
_BARE = re.compile(r"^/mcp/?$")


def request_path(target: str) -> str:
    """Path of an origin-form or absolute-form request target, without query."""
    if target.startswith(("http://", "https://")):
        return urlsplit(target).path or "/"
    return target.split("?", 1)[0].split("#", 1)[0] or "/"


def server_port(server: str) -> int | None:
    """The port of "ip:port" / "[v6]:port" / "host:port" (None when there is none)."""
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
        port = server_port(server)
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


def holdings(records: Iterable[Record], config: Config) -> dict[int | None, dict[str, None]]:
    """Server port -> the namespaces of the requests sent to it, in the order they came (None: a port not known).

    What a capture holds, for saying so when ``--port`` or ``--namespace`` names
    something it does not hold.  A cheap pass (no lifecycle): a request counts as MCP
    by the signs the lifecycle reads (a JSON-RPC body, a session header, a GET for an
    event stream).
    """
    resolver = NamespaceResolver(config)
    servers: dict[str, str] = {}
    out: dict[int | None, dict[str, None]] = {}
    for rec in records:
        if isinstance(rec, ConnEvent):
            if rec.server:
                servers.setdefault(rec.conn, rec.server)
        elif isinstance(rec, Request):
            names = {k.lower() for k, _ in rec.headers}
            accept = next((v for k, v in rec.headers if k.lower() == "accept"), "")
            looks_mcp = '"jsonrpc"' in rec.body or "mcp-session-id" in names or (rec.method == "GET" and "event-stream" in accept)
            server = rec.server or servers.get(rec.conn, "")
            name = resolver.resolve(rec.target, server, looks_mcp)
            if name is not None:
                out.setdefault(server_port(server), {})[name] = None
    return out
