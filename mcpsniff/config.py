"""YAML config -> frozen dataclasses: namespace rules, thresholds, redaction.

Example (every key optional)::

    namespaces:
      - path: "^/api/(?P<ns>[^/]+)/mcp$"   # regex on the request path; {ns} names the group
        name: "{ns}"
      - port: 9000                          # every request to this server port
        name: legacy
    thresholds:
      give_up_after: 35        # s of silence after a failed attempt => stalled
      storm_min_reopens: 5     # clean GET reopens at a fixed interval => reconnect-storm
      rebind_within: 60        # s after the server came back (used by `check --within`)
      hung_after: 10           # s unanswered while the server answers others => hung-request
      schedule_margin: 0       # s of nothing needed after the last step of a known finite schedule => gave up
      sibling_margin: 10       # s a namespace may lag behind siblings of the same client that rebound
    redact:
      headers: [x-api-key]     # extra header names to redact (Authorization, Cookie, ... always are)
      patterns: ["sk-[A-Za-z0-9]{8,}"]  # regexes replaced in bodies, URLs and SSE data
    max_body: 65536            # characters of each body kept
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class NamespaceRule:
    name: str  # may use {ns} and other named groups of ``path``
    path: re.Pattern[str] | None = None
    port: int | None = None


@dataclass(frozen=True)
class Thresholds:
    # Longest known client schedule: Claude Code's 1+2+4+8+16 s = 31 s, plus slack.
    give_up_after: float = 35.0
    storm_min_reopens: int = 5
    rebind_within: float = 60.0
    hung_after: float = 10.0  # a request unanswered this long while the server answered others is hung
    schedule_margin: float = 0.0  # nothing this long after the last step of a finite schedule: it gave up (the schedule says it stops)
    sibling_margin: float = 10.0  # least lag behind the same client's rebound namespaces that means a stall


@dataclass(frozen=True)
class Redaction:
    headers: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Config:
    namespaces: tuple[NamespaceRule, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    redact: Redaction = field(default_factory=Redaction)
    max_body: int = 65536


def _regex(text: Any, where: str) -> re.Pattern[str]:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected a regular expression string")
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regular expression {text!r}: {exc}") from None


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    return value


def _rules(items: Any) -> tuple[NamespaceRule, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError("namespaces: expected a list of rules")
    rules = []
    for i, item in enumerate(items, start=1):
        where = f"namespaces[{i}]"
        item = _mapping(item, where)
        unknown = set(item) - {"path", "port", "name"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "name" not in item or ("path" not in item and "port" not in item):
            raise ConfigError(f"{where}: needs 'name' and at least one of 'path' or 'port'")
        port = item.get("port")
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ConfigError(f"{where}: port must be 1..65535")
        path = _regex(item["path"], f"{where}.path") if "path" in item else None
        rules.append(NamespaceRule(name=str(item["name"]), path=path, port=port))
    return tuple(rules)


def _thresholds(th: dict[str, Any]) -> Thresholds:
    """Every key a known threshold, every value a finite number >= 0 (an integer where one is meant)."""
    defaults = Thresholds()
    names = {f.name: type(getattr(defaults, f.name)) for f in fields(Thresholds)}
    unknown = sorted(str(k) for k in th if k not in names)
    if unknown:
        raise ConfigError(f"thresholds: unknown key(s) {', '.join(unknown)} (valid: {', '.join(names)})")
    values: dict[str, Any] = {}
    for key, value in th.items():
        kind = names[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (kind is int and not float(value).is_integer()):
            raise ConfigError(f"thresholds.{key}: expected {'a whole number' if kind is int else 'a number of seconds'} >= 0, got {value!r}")
        values[key] = kind(value)
    return Thresholds(**values)


def parse_config(data: Any) -> Config:
    """Validate a loaded YAML document; raises ConfigError naming the bad key."""
    data = _mapping(data, "config")
    unknown = set(data) - {"namespaces", "thresholds", "redact", "max_body"}
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}")
    th = _mapping(data.get("thresholds"), "thresholds")
    thresholds = _thresholds(th)
    red = _mapping(data.get("redact"), "redact")
    headers = red.get("headers") or []
    patterns = red.get("patterns") or []
    if not isinstance(headers, list) or not isinstance(patterns, list):
        raise ConfigError("redact: 'headers' and 'patterns' must be lists")
    max_body = data.get("max_body", 65536)
    if not isinstance(max_body, int) or max_body < 0:
        raise ConfigError("max_body: must be a non-negative integer")
    return Config(
        namespaces=_rules(data.get("namespaces")),
        thresholds=thresholds,
        redact=Redaction(
            headers=tuple(str(h).lower() for h in headers),
            patterns=tuple(_regex(p, f"redact.patterns[{i}]") for i, p in enumerate(patterns, 1)),
        ),
        max_body=max_body,
    )


def load_config(path: Path | None) -> Config:
    """Read a YAML config file (None: defaults)."""
    if path is None:
        return Config()
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
