"""Which client a namespace's traffic comes from, and what that client is known to do.

Recognised from what the requests themselves show: the ``User-Agent``, the
``clientInfo`` of ``initialize``, how headers are spelled and ordered, the
``MCP-Protocol-Version`` header and the connection pattern (one keep-alive pool
shared by namespaces, or a connection per request).  The family decides which
retry schedules the attempt attribution and the verdict inferences may assume
(mcp-wire.md, "What the official SDKs do").  Pure: fed one request at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from ..records import Headers
from .model import ClientIdentity
from .schedules import CLAUDE_CODE, HOST_SCHEDULES, PY_GET, STREAM_SCHEDULES, TS_GET

MAX_SAMPLES: Final = 8  # requests of a namespace whose headers are looked at (the first ones say it all)

# clientInfo.name (lower-case substring) -> (family, label): hosts and tools named in known-client-bugs.md
HOSTS: tuple[tuple[str, str, str], ...] = (
    ("claude-code", "claude-code", "Claude Code"),
    ("claude code", "claude-code", "Claude Code"),
    ("visual studio code", "vscode", "VS Code"),
    ("vscode", "vscode", "VS Code"),
    ("cursor", "cursor", "Cursor"),
    ("codex", "codex", "Codex CLI"),
    ("cline", "cline", "Cline"),
    ("mcp-remote", "mcp-remote", "mcp-remote"),
    ("copilot", "copilot", "GitHub Copilot"),
    ("rmcp", "rust-sdk", "Rust SDK (rmcp)"),
)

# User-Agent pattern -> (family, label); the first match wins
AGENTS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"claude[- ]?code/?([\w.]*)", re.I), "claude-code", "Claude Code"),
    (re.compile(r"codex[\w-]*/?([\w.]*)", re.I), "codex", "Codex CLI"),
    (re.compile(r"cursor/?([\w.]*)", re.I), "cursor", "Cursor"),
    (re.compile(r"^(?:node|undici)(?:/([\w.]+))?$", re.I), "ts-sdk", "TypeScript SDK (Node fetch)"),
    (re.compile(r"python-httpx/([\w.]+)", re.I), "python-sdk", "Python SDK"),
    (re.compile(r"python-httpx2/([\w.]+)", re.I), "python-sdk", "Python SDK 2.x"),
    (re.compile(r"go-http-client/([\w.]+)", re.I), "go-sdk", "Go SDK (net/http)"),
    (re.compile(r"rmcp/?([\w.]*)", re.I), "rust-sdk", "Rust SDK (rmcp)"),
)

SDK_LABELS = {"ts-sdk": "TypeScript SDK (Node fetch)", "python-sdk": "Python SDK"}
META_CLIENT_INFO: Final = "io.modelcontextprotocol/clientInfo"
PYTHON_SDK_DEFAULT_INFO = ("mcp", "0.1.0")  # the Python SDK client's clientInfo unless the host sets one


@dataclass(frozen=True)
class Behaviour:
    """What a client family is known to do after a disruption (mcp-wire.md, known-client-bugs.md)."""

    stream_retry: tuple[float, ...] = ()  # delays of the SDK's own GET-stream reconnects after a cut (finite)
    stream_retry_name: str = ""
    host_retry: tuple[float, ...] = ()  # delays of the host's reconnects after a failure (finite), if known
    host_retry_name: str = ""
    reinitializes_on_404: bool = False


BEHAVIOURS: dict[str, Behaviour] = {
    # TS SDK: min(1000 * 1.5^n, 30000) ms, maxRetries 2 -> GETs at +1.0 s and +2.5 s after the cut.
    "ts-sdk": Behaviour(STREAM_SCHEDULES[TS_GET], TS_GET),
    # Python SDK 1.x: the broken stream counts as the first attempt; one more 1 s later, then it stops.
    "python-sdk": Behaviour(STREAM_SCHEDULES[PY_GET], PY_GET),
    # Claude Code (TS SDK underneath): 5 tries, 1 s doubling, then "Max reconnection attempts (5) reached".
    "claude-code": Behaviour(STREAM_SCHEDULES[TS_GET], TS_GET, HOST_SCHEDULES[CLAUDE_CODE], CLAUDE_CODE, True),
}


@dataclass
class _Seen:
    """What one namespace's requests showed so far (bounded)."""

    samples: int = 0
    agents: dict[str, int] = field(default_factory=dict)
    info: tuple[str, str] | None = None  # clientInfo (name, version)
    info_protocol: str = ""
    protocol: str = ""  # MCP-Protocol-Version header
    spelling: str = ""  # "lower-case", "capitalised", "mixed"
    get_accept_capital: bool = False  # undici fetch: the TS SDK sets 'Accept' on its GET, the rest lower-case
    fetch_headers: bool = False  # accept-language: * and sec-fetch-mode: cors (Node's fetch)
    addresses: set[str] = field(default_factory=set)
    conns: set[str] = field(default_factory=set)
    requests: int = 0
    client_resets: int = 0
    modern: bool = False  # sent 2026-07-28 requests


class ClientObserver:
    """Collects per-namespace client evidence from requests (cheap: a few samples each)."""

    def __init__(self) -> None:
        self.seen: dict[str, _Seen] = {}
        self.conn_namespaces: dict[str, set[str]] = {}  # connection -> namespaces whose requests it carried

    def request(self, ns: str, conn: str, client: str, method: str, headers: Headers, messages: tuple[Any, ...]) -> None:
        seen = self.seen.get(ns)
        if seen is None:
            seen = self.seen[ns] = _Seen()
        seen.requests += 1
        if conn not in seen.conns and len(seen.conns) < 10_000:
            seen.conns.add(conn)
            if client and len(seen.addresses) < 16:
                seen.addresses.add(client.rpartition(":")[0])
            names = self.conn_namespaces.get(conn)
            if names is None:
                names = self.conn_namespaces[conn] = set()
            if len(names) < 64:
                names.add(ns)
        if seen.info is not None and seen.samples >= MAX_SAMPLES and (not messages or messages[0].method != "initialize"):
            return  # the hot path of a big capture: nothing more to learn
        for msg in messages:
            if not isinstance(msg.params, dict):
                continue
            if msg.method == "initialize":
                info = msg.params.get("clientInfo")
                seen.info_protocol = str(msg.params.get("protocolVersion", ""))[:40]
            elif seen.info is None and isinstance(msg.params.get("_meta"), dict):
                info = msg.params["_meta"].get(META_CLIENT_INFO)  # 2026-07-28: every request says who sent it
            else:
                continue
            if isinstance(info, dict):
                seen.info = (str(info.get("name", ""))[:80], str(info.get("version", ""))[:40])
        if seen.samples >= MAX_SAMPLES:
            return
        seen.samples += 1
        for key, value in headers:
            low = key.lower()
            if low == "user-agent":
                seen.agents[value[:120]] = seen.agents.get(value[:120], 0) + 1
            elif low == "mcp-protocol-version":
                seen.protocol = value[:40]
                seen.modern = seen.modern or not value.startswith(("2024-", "2025-"))
            elif low in ("accept-language", "sec-fetch-mode") and value in ("*", "cors"):
                seen.fetch_headers = True
            elif key == "Accept" and method == "GET":
                seen.get_accept_capital = True
        spelled = {"lower-case" if k == k.lower() else "capitalised" for k, _ in headers if k.lower() != "accept" or method != "GET"}
        shape = spelled.pop() if len(spelled) == 1 else ("mixed" if spelled else "")
        if shape:
            seen.spelling = shape if seen.spelling in ("", shape) else "mixed"

    def client_reset(self, conn: str) -> None:
        """A connection the client reset: the Python SDK 1.x does that right after many answers."""
        for ns in self.conn_namespaces.get(conn, ()):
            seen = self.seen.get(ns)
            if seen is not None:
                seen.client_resets += 1

    def identify(self, ns: str) -> ClientIdentity:
        seen = self.seen.get(ns)
        if seen is None:
            return ClientIdentity()
        ident = ClientIdentity(protocol_version=seen.protocol or seen.info_protocol)
        agent = max(seen.agents, key=seen.agents.__getitem__) if seen.agents else ""
        if seen.info is not None:
            ident.host = " ".join(part for part in seen.info if part)
        for pattern, family, label in AGENTS:
            match = pattern.search(agent) if agent else None
            if match:
                ident.family, ident.label = family, label
                ident.version = match.group(1) or ""
                if family == "python-sdk" and ident.version:
                    ident.version = f"({agent.split('/')[0].removeprefix('python-')} {ident.version})"  # the HTTP library's version, not the SDK's
                ident.recognised_by.append(f"User-Agent: {agent}")
                break
        else:
            if agent:
                ident.recognised_by.append(f"User-Agent: {agent} (not a known client)")
        if seen.info is not None:
            name = seen.info[0].lower()
            for needle, family, label in HOSTS:
                if needle in name:
                    ident.family, ident.label = family, label
                    ident.version = seen.info[1]
                    ident.recognised_by.append(f"clientInfo {seen.info[0]} {seen.info[1]}".rstrip())
                    break
            else:
                if seen.info == PYTHON_SDK_DEFAULT_INFO:
                    ident.recognised_by.append("clientInfo mcp 0.1.0 (the Python SDK's default)")
                    if ident.family == "unrecognised":
                        ident.family, ident.label = "python-sdk", SDK_LABELS["python-sdk"]
        if seen.fetch_headers or seen.get_accept_capital:
            ident.recognised_by.append("Node fetch headers (accept-language: *, sec-fetch-mode: cors)" + ("; GET 'Accept' spelled as the TS SDK sets it" if seen.get_accept_capital else ""))
            if ident.family == "unrecognised":
                ident.family, ident.label = "ts-sdk", SDK_LABELS["ts-sdk"]
        ident.connections = self._pattern(ns, seen)
        if ident.connections:
            ident.recognised_by.append(f"connections: {ident.connections}")
        if seen.spelling:
            ident.recognised_by.append(f"header names {seen.spelling}")
        if seen.modern:
            ident.recognised_by.append("speaks 2026-07-28 (a 2.x SDK)")
        ident.address = ",".join(sorted(seen.addresses))
        if ident.family == "unrecognised" and ident.label == "unrecognised" and agent:
            ident.label = f"unrecognised ({agent})"
        ident.key = "|".join((ident.family, ident.host, agent, ident.address))
        return ident

    def _pattern(self, ns: str, seen: _Seen) -> str:
        if seen.requests < 3:
            return ""
        shared = any(len(self.conn_namespaces.get(c, ())) > 1 for c in seen.conns)
        per_conn = seen.requests / max(1, len(seen.conns))
        if shared:
            return "keep-alive pool shared with other namespaces"
        if per_conn >= 1.5:
            return "keep-alive"
        return "a connection per request" + (", reset by the client after the answer" if seen.client_resets * 3 >= len(seen.conns) else "")

    def pool_mates(self, ns: str) -> set[str]:
        """Namespaces whose requests shared a TCP connection with this one's: the same client process."""
        seen = self.seen.get(ns)
        mates: set[str] = set()
        if seen is None:
            return mates
        for conn in seen.conns:
            mates |= self.conn_namespaces.get(conn, set())
        mates.discard(ns)
        return mates


def behaviour(ident: ClientIdentity) -> Behaviour:
    return BEHAVIOURS.get(ident.family, Behaviour())
