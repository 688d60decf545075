"""Protocol conformance findings per server, for both revisions (a list, not a verdict).

Checked as requests and responses stream past (headers are not kept in compact
analyses), counted per server address with the first example's time, e.g. a 400
without a JSON-RPC error body, a session id minted on an error response, an
``Mcp-Method`` header that does not match the body, a 2026-07-28 request without
``MCP-Protocol-Version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final


META_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
SESSION_ERA = ("2024-", "2025-")  # protocol versions of the session-based transport


def modern(version: str) -> bool:
    """A protocol version of the sessionless transport (2026-07-28 and later)."""
    return bool(version) and not version.startswith(SESSION_ERA)


def meta_version(messages: tuple[Any, ...]) -> str:
    """The protocol version a 2026-07-28 request declares in ``params._meta``."""
    for msg in messages:
        params = getattr(msg, "params", None)
        if isinstance(params, dict):
            meta = params.get("_meta")
            if isinstance(meta, dict) and isinstance(meta.get(META_VERSION), str):
                return meta[META_VERSION][:40]
    return ""


def rpc_name(messages: tuple[Any, ...]) -> str:
    """What ``Mcp-Name`` should carry: the tool or prompt name, or the resource URI."""
    for msg in messages:
        params = getattr(msg, "params", None)
        if isinstance(params, dict) and msg.method in ("tools/call", "prompts/get", "resources/read"):
            value = params.get("uri" if msg.method == "resources/read" else "name")
            if isinstance(value, str):
                return value[:200]
    return ""


@dataclass
class _Finding:
    text: str
    count: int = 0
    first: float = 0.0


@dataclass
class ConformanceObserver:
    findings: dict[str, dict[str, _Finding]] = field(default_factory=dict)  # server -> kind -> finding
    modern_servers: set[str] = field(default_factory=set)  # answered a 2026-07-28 request
    session_servers: set[str] = field(default_factory=set)  # answered an initialize
    _legacy_gets: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # GET/DELETE not answered 405

    def _note(self, server: str, kind: str, t: float, text: str) -> None:
        by_kind = self.findings.setdefault(server, {})
        found = by_kind.get(kind)
        if found is None:
            found = by_kind[kind] = _Finding(text, 0, t)
        found.count += 1

    def request(self, server: str, t: float, body_method: str, head_method: str | None, head_name: str | None, body_name: str, version: str | None, declared: str) -> None:
        """A request that carries 2026-07-28 headers or a ``_meta`` version (the others have nothing to check)."""
        if head_method is not None and body_method and head_method != body_method:
            self._note(server, "mcp-method-mismatch", t, f"a request's Mcp-Method header ({head_method[:40]}) does not match its body's method ({body_method[:40]})")
        if head_name is not None and body_name and head_name != body_name and not head_name.startswith("=?base64?"):
            self._note(server, "mcp-name-mismatch", t, f"a request's Mcp-Name header ({head_name[:40]}) does not match its body ({body_name[:40]})")
        if modern(declared) and version is None:
            self._note(server, "version-header-missing", t, f"a {declared} request (its _meta says so) carries no MCP-Protocol-Version header")
        elif modern(declared) and version is not None and version != declared:
            self._note(server, "version-header-mismatch", t, f"a request's MCP-Protocol-Version header ({version[:40]}) does not match its _meta ({declared})")

    def response(self, server: str, t: float, method: str, rpc_methods: list[str], session_sent: str | None, protocol: str, status: int, minted: str | None, has_rpc_error: bool) -> None:
        """An error answer, an answer to a 2026-07-28 request or to an initialize (the others have nothing to check)."""
        if status >= 400 and minted:
            what = ", ".join(rpc_methods) or method
            self._note(server, "session-on-error", t, f"the server minted a session id on an error response ({status} to {what}); no client can use it")
        if status == 400 and not has_rpc_error:
            self._note(server, "400-without-error", t, "a 400 answer carries no JSON-RPC error body")
        if modern(protocol) and 200 <= status < 300 and method == "POST":
            self.modern_servers.add(server)
            if minted:
                self._note(server, "session-on-2026", t, "a 2026-07-28 answer carries an Mcp-Session-Id header")
        if "initialize" in rpc_methods and 200 <= status < 300:
            self.session_servers.add(server)
        if method in ("GET", "DELETE") and modern(protocol) and status != 405:
            self._legacy_gets.setdefault(server, []).append((t, f"{method} answered {status}"))
        if status == 404 and method == "POST" and not session_sent and not modern(protocol) and "initialize" not in rpc_methods and has_rpc_error:
            self._note(server, "404-missing-session", t, "a 2025-era request without a session id got 404; the spec's answer is 400 (404 means an unknown session)")

    def report(self, t0: float) -> dict[str, list[str]]:
        """The findings so far (callable again later: nothing is consumed)."""
        out = {server: [f"{f.text} ({f.count}x, first at +{f.first - t0:.2f}s)" for f in by_kind.values()] for server, by_kind in self.findings.items()}
        for server, gets in self._legacy_gets.items():
            if server in self.modern_servers and server not in self.session_servers and gets:
                method, status = gets[0][1].split()[0], gets[0][1].split()[-1]
                out.setdefault(server, []).append(f"a server that speaks only 2026-07-28 answered {method} with {status}, not 405 ({len(gets)}x, first at +{gets[0][0] - t0:.2f}s)")
        return dict(sorted(out.items()))
