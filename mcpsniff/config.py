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
import string
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


MAX_CONFIG_BYTES = 1 << 20  # a config file larger than this is not a config
MAX_ALIASES = 100  # YAML aliases (*name) in one config
MAX_VALUES = 100_000  # values of the loaded document, aliases expanded ("billion laughs" stop here)
MAX_BODY_LIMIT = 1 << 31  # max_body above this is refused
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(value: Any, where: str) -> str:
    if type(value) is not str:
        raise ConfigError(f"{where}: expected a string, got {_show(value)}")
    if _LONE_SURROGATE.search(value):
        raise ConfigError(f"{where}: not valid Unicode (a lone UTF-16 surrogate escape)")
    return value


def _show(value: Any) -> str:
    """A short description of a bad value for an error message (never its whole expansion)."""
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _keys(mapping: dict[Any, Any], where: str) -> None:
    bad = [k for k in mapping if type(k) is not str]
    if bad:
        raise ConfigError(f"{where}: keys must be names, not {_show(bad[0])}")


def backtracking_risk(pattern: str) -> str:
    """Why matching ``pattern`` can take exponential time (Python's ``re`` backtracks), or "".

    Flags a quantifier (``+``, ``*``, ``{n,}``) over something that itself repeats a
    variable number of times (``(a+)+``, ``(?:[\\w-]+/)*``) and a quantified alternation
    whose branches can start alike (``(a|ab)*``).  Possessive quantifiers (``a++``) and
    atomic groups (``(?>...)``) do not backtrack and are allowed anywhere.
    """
    from re import _constants as C, _parser as P  # noqa: N812 - the stdlib's own regex parser

    def variable(items: Any) -> bool:
        for op, av in items:
            if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] != av[1]:
                return True
            if op in (C.MAX_REPEAT, C.MIN_REPEAT) and variable(av[2]):
                return True
            if op == C.SUBPATTERN and variable(av[3]):
                return True
            if op == C.BRANCH and any(variable(b) for b in av[1]):
                return True
        return False

    def first(items: Any) -> set[int] | None:
        """Characters a branch can start with (None: any, or it can match nothing at all)."""
        for op, av in items:
            if op == C.LITERAL:
                return {av}
            if op == C.SUBPATTERN:
                return first(av[3])
            if op == C.AT:
                continue
            return None
        return None  # an empty alternative (the parser turns (a|ab) into a(?:|b)): overlaps every other

    def walk(items: Any, repeated: bool) -> str:
        for op, av in items:
            if op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, sub = av
                many = hi > 1
                if many and repeated and variable(sub):
                    return "a repeated group repeats again inside"
                if many and variable(sub):
                    return "nested quantifiers"
                found = walk(sub, repeated or many)
                if found:
                    return found
            elif op in (C.POSSESSIVE_REPEAT, C.ATOMIC_GROUP):
                found = walk(av[2] if op == C.POSSESSIVE_REPEAT else av, False)
                if found:
                    return found
            elif op == C.SUBPATTERN:
                found = walk(av[3], repeated)
                if found:
                    return found
            elif op == C.BRANCH:
                branches = av[1]
                if repeated:
                    starts = [first(b) for b in branches]
                    for i, one in enumerate(starts):
                        for other in starts[i + 1 :]:
                            if one is None or other is None or one & other:
                                return "an alternation whose branches can start alike is repeated"
                for branch in branches:
                    found = walk(branch, repeated)
                    if found:
                        return found
            elif op in (C.ASSERT, C.ASSERT_NOT):
                found = walk(av[1], repeated)
                if found:
                    return found
            elif op == C.GROUPREF_EXISTS:
                for branch in av[1:]:
                    if branch is not None:
                        found = walk(branch, repeated)
                        if found:
                            return found
        return ""

    return walk(P.parse(pattern), False)


def _regex(text: Any, where: str) -> re.Pattern[str]:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected a regular expression string")
    _string(text, where)
    try:
        compiled = re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ConfigError(f"{where}: invalid regular expression {_show(text)}: {exc}") from None
    risk = backtracking_risk(text)
    if risk:
        raise ConfigError(f"{where}: {_show(text)} can take exponential time to match ({risk}); "
                          "rewrite it without nesting, or use a possessive quantifier (a++) or an atomic group (?>...)")
    return compiled


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    _keys(value, where)
    return value


def _name(value: Any, path: re.Pattern[str] | None, where: str) -> str:
    """A namespace name, whose ``{group}`` fields (only plain named groups of ``path``) are checked now."""
    if type(value) is int:
        value = str(value)
    name = _string(value, f"{where}.name")
    if not name or len(name) > 200:
        raise ConfigError(f"{where}.name: expected 1 to 200 characters")
    groups = set(path.groupindex) if path is not None else set()
    try:
        parts = list(string.Formatter().parse(name))
    except ValueError as exc:
        raise ConfigError(f"{where}.name: {_show(name)} is not a valid name template ({exc}; write {{{{ and }}}} for literal braces)") from None
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if spec or conversion or field_name not in groups:
            hint = f"named groups of its path: {', '.join(sorted(groups))}" if groups else "a path regex with named groups, e.g. (?P<ns>[^/]+)"
            raise ConfigError(f"{where}.name: {{{field_name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} is not allowed: "
                              f"only plain {{group}} fields ({hint})")
    return name


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
        if port is not None and not (type(port) is int and 0 < port < 65536):
            raise ConfigError(f"{where}: port must be 1..65535, got {_show(port)}")
        path = _regex(item["path"], f"{where}.path") if "path" in item else None
        rules.append(NamespaceRule(name=_name(item["name"], path, where), path=path, port=port))
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
    unknown = set(red) - {"headers", "patterns"}
    if unknown:
        raise ConfigError(f"redact: unknown key(s) {', '.join(sorted(unknown))} (valid: headers, patterns)")
    headers = red.get("headers") or []
    patterns = red.get("patterns") or []
    if not isinstance(headers, list) or not isinstance(patterns, list):
        raise ConfigError("redact: 'headers' and 'patterns' must be lists")
    max_body = data.get("max_body", 65536)
    if type(max_body) is not int or not 0 <= max_body <= MAX_BODY_LIMIT:
        raise ConfigError(f"max_body: must be a non-negative integer (characters, at most {MAX_BODY_LIMIT}), got {_show(max_body)}")
    return Config(
        namespaces=_rules(data.get("namespaces")),
        thresholds=thresholds,
        redact=Redaction(
            headers=tuple(_string(h, f"redact.headers[{i}]").lower() for i, h in enumerate(headers, 1)),
            patterns=tuple(_regex(p, f"redact.patterns[{i}]") for i, p in enumerate(patterns, 1)),
        ),
        max_body=max_body,
    )


def _loader(text: str) -> Any:
    """A SafeLoader that refuses more than MAX_ALIASES aliases (a "billion laughs" is all aliases)."""
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_ALIASES:
                    raise ConfigError(f"more than {MAX_ALIASES} YAML aliases (*name)")
            return super().compose_node(parent, index)

    return Loader(text)


def _bounded(data: Any) -> None:
    """Refuse a document of more than MAX_VALUES values, aliases expanded (counted without expanding)."""
    seen = 0
    stack = [data]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(f"more than {MAX_VALUES} values once YAML aliases are expanded")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def load_config(path: Path | None) -> Config:
    """Read a YAML config file (None: defaults)."""
    if path is None:
        return Config()
    import yaml

    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    loader = None
    try:
        loader = _loader(text)
        data = loader.get_single_data()
        _bounded(data)
        return parse_config(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValueError as exc:  # a YAML value Python cannot hold (an integer of more than 4300 digits, ...)
        raise ConfigError(f"{path}: invalid YAML value ({str(exc)[:120]})") from None
    finally:
        if loader is not None:
            loader.dispose()
