"""Redaction for every output meant to be shared (HTML report, HAR, OTLP, JUnit, summary.json).

A capture holds whatever crossed the wire: bearer tokens, cookies, API keys in
query strings, OAuth tokens inside tool results.  ``Redactor.apply`` returns a
redacted *copy* of an Analysis (the caller's object is never touched), walking
every string in it so that a secret is caught wherever it appears: headers,
targets, bodies, SSE data, evidence lines.  With ``share=True`` session ids and
host names/addresses are also replaced by consistent pseudonyms (S1, S2, ... /
host1, host2, ...), so a shared report still shows which requests belonged to
the same session.

What counts as a secret is decided on *names*, normalised (case and separators
ignored, so ``accessToken``, ``access_token``, ``Access-Token`` are one name):
header names, JSON keys, query and form parameters, ``name: value`` text.  JSON
is matched at any depth of embedding: an MCP tool result is JSON text inside a
JSON string (``"text": "{\\"access_token\\": \\"...\\"}"``), and its quotes carry
one more backslash per level, so a key is recognised with its quoting and its
value scanned to the closing quote of the same level.  Values are replaced in
place, so the rest of a body stays byte for byte as captured.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote_plus

from ..analysis.model import Analysis
from ..config import Config
from ..records import Headers

REDACTED = "[REDACTED]"
_SCALARS = frozenset({int, float, bool, type(None)})

# ---- what is a secret: names, normalised ------------------------------------------------------

# A normalised name (lower case, letters and digits only) is a secret when it is one of
# SECRET_NAMES, contains one of SECRET_PARTS or ends with one of SECRET_SUFFIXES:
# accessToken, refresh_token, Private-Token, clientSecret, x-api-key, db_password, ...
# but not max_tokens, token_type, tokenizer or access-control-allow-credentials.
SECRET_NAMES = frozenset({"auth", "pwd", "sig", "authorization", "cookie", "setcookie"})
SECRET_PARTS = ("secret", "password", "passwd", "apikey", "privatekey", "passphrase", "codeverifier", "signature")
SECRET_SUFFIXES = ("token", "credential", "authorization", "cookie")
# Query and form parameters add a few short names that are secrets there (OAuth ``code``, ``key``).
PARAM_NAMES = SECRET_NAMES | {"key", "code"}
# Headers whose whole value is a secret, on top of the rule above (lower case).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token", "x-access-token",
                            "x-csrf-token", "x-xsrf-token", "x-amz-security-token", "private-token", "job-token", "deploy-token"})
AUTH_SCHEMES = frozenset({"bearer", "basic", "digest", "negotiate", "ntlm", "token", "bot", "dpop", "mac", "hoba", "mutual", "apikey", "aws4-hmac-sha256", "gitlab-ci-token"})

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Cheap pre-filter: text can only hold a secret-named key, a bearer token or encoded JSON in a form
# if its lower-case form contains one of these.
TRIGGERS = ("tok", "secret", "pas", "pwd", "auth", "sig", "credential", "cookie", "verifier", "key", "code", "earer", "%7b", "%5b")


def _may_hold_secret(low: str) -> bool:
    for word in TRIGGERS:
        if word in low:
            return True
    return False


def normalise(name: str) -> str:
    """"Access-Token", "access_token", "accessToken" -> "accesstoken"."""
    return _NOT_ALNUM.sub("", name.lower())


def is_secret_name(name: str) -> bool:
    """A JSON key, header name or text label that names a secret (case and separators ignored)."""
    n = normalise(name)
    return n in SECRET_NAMES or n.endswith(SECRET_SUFFIXES) or any(part in n for part in SECRET_PARTS)


def is_secret_param(name: str) -> bool:
    """A query-string or form parameter that holds a secret."""
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return normalise(name) in PARAM_NAMES or is_secret_name(name)


def _keep_scheme(value: str) -> str:
    """"Bearer abc" -> "Bearer [REDACTED]"; anything else -> "[REDACTED]"."""
    scheme, sep, rest = value.strip().partition(" ")
    return f"{scheme} {REDACTED}" if sep and rest.strip() and scheme.lower() in AUTH_SCHEMES else REDACTED


# ---- patterns ---------------------------------------------------------------------------------

BEARER_RE = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*")
# key=value in a query string, a form body (also at the very start: "password=..."), a cookie or any text.
PARAM_RE = re.compile(r"(?<![\w.%+*\-])([\w.%+*\-]{1,64})=(?!=)((?:[^&#;\s\"'<>\\]|\\\\)+)")
# "name: value" in text (a header line in a log, YAML, a command line): the value runs to the end of the line.
LABEL_RE = re.compile(r"(?<![\w.\-])([A-Za-z][\w.\-]{0,63})[ \t]*:[ \t]*(?![ \t]|//)([^\r\n\"'<>\\]+)")
# A quoted JSON (or Python repr) key at any depth of embedding: the quote is preceded by 0, 1, 3, 7 ...
# backslashes, captured so the value can be scanned with the same quoting.
JSON_KEY_RE = re.compile(r"(?<!\\)(\\*)([\"'])([^\"'\\]{1,64})\1\2(?:\s|\\+[nrt])*:(?:\s|\\+[nrt])*")
_NUMBER_RE = re.compile(r"-?\d[\d.eE+\-]*")
# A form field holding percent-encoded JSON ("payload=%7B%22token%22..."): decoded, redacted, encoded again.
FORM_JSON_RE = re.compile(r"(?i)(?<![\w.%+*\-])([\w.%+*\-]{1,64}=)((?:%7B|%5B)[^&#;\s\"'<>\\]*)")

MCP_SESSION_HEADER = "mcp-session-id"
HOST_HEADERS = ("host", "origin", "referer", ":authority")
_ADDR_RE = re.compile(r"^\[?(?P<host>[^\[\]]+?)\]?(?::\d+)?$")
_URL_HOST_RE = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(\[[^\]]+\]|[^:/?#]+)", re.I)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a big copy is built: it makes no cycles, and every
    collection would walk the whole capture again (half the time of a 100k-event report)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _host_of(value: str) -> str:
    """"10.0.0.2:8080" -> "10.0.0.2", "[::1]:80" -> "::1", "http://h:1/x" -> "h"."""
    value = value.strip()
    m = _URL_HOST_RE.match(value)
    if m:
        return m.group(1).strip("[]")
    m = _ADDR_RE.match(value)
    return m.group("host") if m else ""


def _string_end(s: str, i: int, quote_char: str, level: int) -> int:
    """Index of the closing quote of a string that starts at ``i`` (just after its opening quote),
    its quotes preceded by ``level`` backslashes (0, 1, 3, 7 ... for each level of embedding).
    A quote closes it when the run of backslashes before it is ``level`` modulo ``2 * level + 2``;
    the other runs are escapes inside it.  -1 when it does not close (a truncated body)."""
    period = 2 * level + 2
    n = len(s)
    while True:
        j = s.find(quote_char, i)
        if j < 0:
            return -1
        k = j
        while k > i and s[k - 1] == "\\":
            k -= 1
        if (j - k) % period == level:
            return j - level
        i = j + 1
        if i >= n:
            return -1


def redact_json_values(s: str) -> str:
    """Replace the values of secret-named keys in JSON text, at any depth of embedding."""
    edits: list[tuple[int, int, str]] = []
    pos, n = 0, len(s)
    search = JSON_KEY_RE.search
    while pos < n:
        m = search(s, pos)
        if m is None:
            break
        pos = m.end()
        name = m.group(3)
        if not is_secret_name(name):
            continue
        slashes, q = m.group(1), m.group(2)
        opener = slashes + q
        if s.startswith(opener, pos):  # a string value
            start = pos + len(opener)
            end = _string_end(s, start, q, len(slashes))
            stop = n if end < 0 else end
            value = s[start:stop]
            if value != REDACTED:
                edits.append((start, stop, _keep_scheme(value) if normalise(name) in ("authorization", "auth", "proxyauthorization") else REDACTED))
            pos = stop
        elif q == '"':
            num = _NUMBER_RE.match(s, pos)
            if num:
                edits.append((num.start(), num.end(), f"{opener}{REDACTED}{opener}"))
                pos = num.end()
    if not edits:
        return s
    parts, last = [], 0
    for a, b, text in edits:
        parts += (s[last:a], text)
        last = b
    parts.append(s[last:])
    return "".join(parts)


def redact_params(s: str) -> str:
    """Secret ``key=value`` pairs (query strings, form bodies, cookies) in any text."""
    return PARAM_RE.sub(_param, s)


def _param(m: re.Match[str]) -> str:
    key, value = m.group(1), m.group(2)
    if is_secret_param(key) and value != REDACTED:
        return f"{key}={REDACTED}"
    return m.group(0)


def _label(m: re.Match[str]) -> str:
    name, value = m.group(1), m.group(2).rstrip()
    if not is_secret_name(name) or value.startswith(REDACTED) or value.endswith(REDACTED):
        return m.group(0)
    cut = m.group(0)[: m.start(2) - m.start(0)]
    return cut + _keep_scheme(value) + m.group(2)[len(value):]


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
        self._header_sets: dict[Any, Headers] = {}
        self._fields: dict[type, tuple[str, ...] | None] = {}

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
        seen: set[Any] = set()
        for ex in exchanges:
            self._session(ex.session_id)
            self._session(ex.new_session_id)
            for hdrs in (ex.request_headers, ex.response_headers):
                if hdrs in seen:
                    continue
                seen.add(hdrs)
                for name, value in hdrs:
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
        self._header_sets.clear()
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
        if short:
            done = self._memo.get(value)
            if done is None:
                done = self._memo[value] = self._text(value)
            return done
        return self._text(value)

    def _text(self, value: str) -> str:
        low = value.lower()
        if _may_hold_secret(low):
            if "earer" in low:
                value = BEARER_RE.sub(rf"\1\2{REDACTED}", value)
            if '"' in value or "'" in value:
                value = redact_json_values(value)
            if "=" in value:
                value = PARAM_RE.sub(_param, value)
                if "=%" in value:
                    value = FORM_JSON_RE.sub(self._form_json, value)
            if ":" in value:
                value = LABEL_RE.sub(_label, value)
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        if self._pseudo_re is not None:
            value = self._pseudo_re.sub(lambda m: self._pseudo[m.group(0)], value)
        return value

    def _form_json(self, m: re.Match[str]) -> str:
        decoded = unquote_plus(m.group(2))
        done = self._text(decoded)
        return m.group(0) if done == decoded else m.group(1) + quote(done, safe="")

    def is_secret_header(self, name: str) -> bool:
        lname = name.lower()
        return lname in SECRET_HEADERS or lname in self.extra_headers or is_secret_name(lname)

    def header_value(self, name: str, value: str) -> str:
        if self.is_secret_header(name):
            return self._secret_header(name.lower(), value)
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
        try:
            done = self._header_sets.get(headers)  # the same header set repeats on every request of a session
        except TypeError:  # unhashable (a list of lists)
            done, headers = None, tuple(tuple(p) for p in headers)  # type: ignore[misc]
        if done is not None:
            return done
        out = []
        for pair in headers:
            d = self._pairs.get(pair)  # type: ignore[arg-type]
            if d is None:
                d = self._pairs[pair] = (self.text(pair[0]), self.header_value(pair[0], pair[1]))  # type: ignore[index]
            out.append(d)
        result = tuple(out)
        if isinstance(headers, tuple):
            self._header_sets[headers] = result
        return result

    # -- whole objects -------------------------------------------------------------

    def apply(self, analysis: Analysis, exchanges: bool = True) -> Analysis:
        """A redacted deep copy of ``analysis``; the original is left as it was.

        ``exchanges=False`` leaves the (copied) namespaces without their exchanges, for a
        caller that redacts each exchange itself with ``value`` as it converts it (the
        HTML report: one pass over a big capture instead of two); the pseudonyms are
        learnt from the whole analysis either way."""
        with paused_gc():
            if self.share:
                self.learn(analysis)
            if not exchanges:
                analysis = dataclasses.replace(analysis, namespaces=[dataclasses.replace(ns, exchanges=[]) for ns in analysis.namespaces])
            result = self._walk(analysis)
        if self.share:
            result.sources = [os.path.basename(s) for s in result.sources]
        return result

    def value(self, obj: Any, key: str = "") -> Any:
        """Any value redacted as ``apply`` would redact it inside an analysis (``key``: its field name)."""
        if type(obj) is str:
            if len(obj) <= 256:
                done = self._memo.get(obj)
                return done if done is not None else self.text(obj)
            return self._text(obj)
        return self._walk(obj, key)

    def _walk(self, obj: Any, key: str = "") -> Any:
        cls = type(obj)
        if cls is str:
            return self.text(obj)
        if cls in _SCALARS:
            return obj
        if key.endswith("headers") and isinstance(obj, (tuple, list)):
            if cls is tuple:
                done = self._header_sets.get(obj)
                if done is not None:
                    return done
            pairs = [pair for pair in obj if isinstance(pair, (tuple, list)) and len(pair) == 2 and type(pair[0]) is str and type(pair[1]) is str]
            if len(pairs) == len(obj):
                return self.headers(obj if cls is tuple and all(type(p) is tuple for p in obj) else tuple((k, v) for k, v in pairs))
        if cls not in self._fields:
            self._fields[cls] = tuple(vars(obj)) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and hasattr(obj, "__dict__") else None
        if self._fields[cls] is not None:
            return self._dataclass(obj, cls)
        if cls is list:
            return [self._walk(item) for item in obj]
        if cls is tuple:
            return tuple(self._walk(item) for item in obj)
        if cls is dict:
            return {self._walk(k) if type(k) is str else k: self._walk(v, k if type(k) is str else "") for k, v in obj.items()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # slotted dataclass
            return cls(**{f.name: self._walk(getattr(obj, f.name), f.name) for f in dataclasses.fields(obj) if f.init})
        if isinstance(obj, list):
            return [self._walk(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(item) for item in obj)
        if isinstance(obj, dict):
            return {self._walk(k) if isinstance(k, str) else k: self._walk(v, k if isinstance(k, str) else "") for k, v in obj.items()}
        return obj  # anything else (enums, ...) is immutable enough to share

    def _dataclass(self, obj: Any, cls: type) -> Any:
        """A copy of a (plain, not slotted) dataclass with every field walked; strings and scalars
        inline, as an Exchange has thirty fields and a big capture a hundred thousand exchanges."""
        memo, text, walk = self._memo, self._text, self._walk
        fields: dict[str, Any] = {}
        for name, value in vars(obj).items():
            vcls = type(value)
            if vcls is str:
                if not value:
                    fields[name] = value
                elif len(value) <= 256:
                    done = memo.get(value)
                    if done is None:
                        done = memo[value] = text(value)
                    fields[name] = done
                else:
                    fields[name] = text(value)
            elif vcls in _SCALARS:
                fields[name] = value
            else:
                fields[name] = walk(value, name)
        copy = object.__new__(cls)
        copy.__dict__.update(fields)
        return copy
