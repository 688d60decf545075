"""Redaction for every output meant to be shared (HTML report, HAR, OTLP ...).

A capture holds whatever crossed the wire: bearer tokens, cookies, API keys in
query strings.  ``Redactor.apply`` returns a redacted *copy* of an Analysis
(the caller's object is never touched), walking every string in it so that a
secret is caught wherever it appears: headers, targets, bodies, SSE data,
evidence lines.  With ``share=True`` session ids and host names/addresses are
also replaced by consistent pseudonyms (S1, S2, ... / host1, host2, ...), so a
shared report still shows which requests belonged to the same session.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from typing import Any

from ..analysis.model import Analysis
from ..config import Config
from ..records import Headers

REDACTED = "[REDACTED]"
_SCALARS = frozenset({int, float, bool, type(None)})

# Headers whose whole value is a secret (lower case).  Names that merely look like
# one (x-api-key, x-auth-token, ...) are caught by SECRET_HEADER_RE.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token", "x-access-token", "x-csrf-token", "x-xsrf-token", "x-amz-security-token"})
SECRET_HEADER_RE = re.compile(r"api[-_]?key|auth[-_]?token|access[-_]?token|secret|password|session[-_]?token|signature", re.I)

SECRET_PARAMS = "token|access_token|refresh_token|id_token|api_key|apikey|api-key|key|sig|signature|secret|client_secret|password|passwd|auth|code|x-amz-signature|x-amz-credential|x-amz-security-token"
QUERY_RE = re.compile(rf"(?i)([?&;](?:{SECRET_PARAMS})=)([^&#;\s\"'<>]+)")
BEARER_RE = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*")
JSON_SECRET_RE = re.compile(r'(?i)("(?:access_token|refresh_token|id_token|api_key|apikey|client_secret|password|secret|token|authorization)"\s*:\s*")((?:[^"\\]|\\.)+)(")')

MCP_SESSION_HEADER = "mcp-session-id"
HOST_HEADERS = ("host", "origin", "referer", ":authority")
_ADDR_RE = re.compile(r"^\[?(?P<host>[^\[\]]+?)\]?(?::\d+)?$")
_URL_HOST_RE = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)", re.I)


def _host_of(value: str) -> str:
    """"10.0.0.2:8080" -> "10.0.0.2", "[::1]:80" -> "::1", "http://h:1/x" -> "h"."""
    value = value.strip()
    m = _URL_HOST_RE.match(value)
    if m:
        return m.group(1).strip("[]")
    m = _ADDR_RE.match(value)
    return m.group("host") if m else ""


class Redactor:
    """Redacts secrets (always) and pseudonymises sessions and hosts (``share``)."""

    def __init__(self, config: Config | None = None, share: bool = False) -> None:
        config = config or Config()
        self.share = share
        self.extra_headers = frozenset(h.lower() for h in config.redact.headers)
        self.patterns = tuple(config.redact.patterns)
        self.sessions: dict[str, str] = {}
        self.hosts: dict[str, str] = {}
        self._pseudo_re: re.Pattern[str] | None = None
        self._pseudo: dict[str, str] = {}
        self._memo: dict[str, str] = {}
        self._pairs: dict[tuple[str, str], tuple[str, str]] = {}
        self._fields: dict[type, tuple[str, ...]] = {}

    # -- pseudonyms -------------------------------------------------------------

    def _session(self, sid: str | None) -> None:
        if sid and sid not in self.sessions:
            self.sessions[sid] = f"S{len(self.sessions) + 1}"

    def _host(self, value: str | None) -> None:
        host = _host_of(value or "")
        if host and host not in self.hosts:
            self.hosts[host] = f"host{len(self.hosts) + 1}"

    def learn(self, analysis: Analysis) -> None:
        """Collect session ids and hosts in order of first appearance (share mode)."""
        for gen in sorted((g for ns in analysis.namespaces for g in ns.generations), key=lambda g: g.t_start):
            self._session(gen.session_id)
        exchanges = sorted((ex for ns in analysis.namespaces for ex in ns.exchanges), key=lambda ex: ex.t)
        for ex in exchanges:
            self._session(ex.session_id)
            self._session(ex.new_session_id)
            for name, value in (*ex.request_headers, *ex.response_headers):
                if name.lower() == MCP_SESSION_HEADER:
                    self._session(value.strip())
                elif name.lower() in HOST_HEADERS:
                    self._host(value)
            if "://" in ex.target:
                self._host(ex.target)
        for conn in analysis.connections.values():
            self._host(conn.get("client"))
            self._host(conn.get("server"))
        for item in analysis.unattributed:
            self._host(item.get("client"))
            self._host(item.get("server"))
        self._compile()

    def _compile(self) -> None:
        self._memo.clear()
        self._pairs.clear()
        self._pseudo = {**self.sessions, **self.hosts}
        if not self._pseudo:
            self._pseudo_re = None
            return
        # Longest first so "10.0.0.12" wins over "10.0.0.1"; the guards keep a short
        # id or address from matching inside a longer word or number.
        alts = "|".join(re.escape(k) for k in sorted(self._pseudo, key=len, reverse=True))
        self._pseudo_re = re.compile(rf"(?<![\w.:-])(?:{alts})(?![\w-]|\.\w|:[0-9a-fA-F]*:)")

    # -- redaction of single values ---------------------------------------------

    def text(self, value: str) -> str:
        """Redact secrets (and, when sharing, sessions and hosts) in any string."""
        if not value:
            return value
        short = len(value) <= 256  # short strings (header values, ids, targets) repeat: cache them
        if short and value in self._memo:
            return self._memo[value]
        out = self._text(value)
        if short:
            self._memo[value] = out
        return out

    def _text(self, value: str) -> str:
        if "=" in value:
            value = QUERY_RE.sub(rf"\1{REDACTED}", value)
        if "earer" in value or "EARER" in value:
            value = BEARER_RE.sub(rf"\1\2{REDACTED}", value)
        if '"' in value:
            value = JSON_SECRET_RE.sub(rf"\1{REDACTED}\3", value)
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        if self._pseudo_re is not None:
            value = self._pseudo_re.sub(lambda m: self._pseudo[m.group(0)], value)
        return value

    def header_value(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in SECRET_HEADERS or lname in self.extra_headers or SECRET_HEADER_RE.search(lname):
            return self._secret_header(lname, value)
        return self.text(value)

    def _secret_header(self, lname: str, value: str) -> str:
        """Keep the harmless shape (auth scheme, cookie names) and drop the secret."""
        if lname in ("authorization", "proxy-authorization"):
            scheme, _, cred = value.strip().partition(" ")
            return f"{scheme} {REDACTED}" if cred else REDACTED
        if lname == "cookie":
            return "; ".join(f"{part.split('=', 1)[0].strip()}={REDACTED}" for part in value.split(";") if part.strip())
        if lname == "set-cookie":
            first, sep, attrs = value.partition(";")
            return f"{first.split('=', 1)[0].strip()}={REDACTED}{sep}{attrs}"
        return REDACTED

    def headers(self, headers: Iterable[tuple[str, str]]) -> Headers:
        out = []
        for pair in headers:
            done = self._pairs.get(pair)
            if done is None:
                done = self._pairs[pair] = (self.text(pair[0]), self.header_value(*pair))
            out.append(done)
        return tuple(out)

    # -- whole objects -------------------------------------------------------------

    def apply(self, analysis: Analysis) -> Analysis:
        """A redacted deep copy of ``analysis``; the original is left as it was."""
        if self.share:
            self.learn(analysis)
        result = self._walk(analysis)
        if self.share:
            result.sources = [os.path.basename(s) for s in result.sources]
        return result

    def _walk(self, obj: Any, key: str = "") -> Any:
        cls = type(obj)
        if cls is str:
            return self.text(obj)
        if cls in _SCALARS:
            return obj
        if key.endswith("headers") and isinstance(obj, (tuple, list)):
            pairs = [pair for pair in obj if isinstance(pair, (tuple, list)) and len(pair) == 2]
            if len(pairs) == len(obj):
                return self.headers((str(k), str(v)) for k, v in pairs)
        names = self._fields.get(type(obj))
        if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            names = self._fields[type(obj)] = tuple(f.name for f in dataclasses.fields(obj) if f.init)
        if names is not None:
            return type(obj)(**{name: self._walk(getattr(obj, name), name) for name in names})
        if isinstance(obj, list):
            return [self._walk(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item) for item in obj)
        if isinstance(obj, dict):
            return {self._walk(k) if isinstance(k, str) else k: self._walk(v, k if isinstance(k, str) else "") for k, v in obj.items()}
        return obj  # anything else (enums, ...) is immutable enough to share
