"""Issue 13: a config file is input too: every bad one is a one-line ConfigError (exit 2),
never a traceback, a hang or unbounded memory.  Each file is written by the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff.analysis.namespaces import NamespaceResolver
from mcpsniff.cli import main
from mcpsniff.config import MAX_ALIASES, backtracking_risk, load_config
from mcpsniff.errors import ConfigError

CAPTURE = Path(__file__).resolve().parent / "data" / "real" / "one-stale" / "capture.pcap"

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)
) + "namespaces:\n  - path: '^/x$'\n    name: *i\n"

BAD: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (b"namespaces:\n  - path: '^/a$'\n    name: caf\xe9\n", "not UTF-8"),
    "NUL byte": (b"max_body: 1\x00\n", "invalid YAML"),
    ".inf for an integer": (b"thresholds:\n  storm_min_reopens: .inf\n", "storm_min_reopens"),
    ".nan": (b"thresholds:\n  give_up_after: .nan\n", "give_up_after"),
    "negative seconds": (b"thresholds:\n  rebind_within: -5\n", "rebind_within"),
    "integer of 5000 digits": (b"max_body: " + b"9" * 5000 + b"\n", "max_body|invalid YAML value"),
    "deep nesting": (b"namespaces: " + b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested too deeply"),
    "integer key": (b"1: x\nnamespaces: []\n", "keys must be names"),
    "integer key in a rule": (b"namespaces:\n  - {path: '^/a$', name: a, 7: b}\n", "keys must be names"),
    "attribute in a name": (b"namespaces:\n  - path: '^/(?P<ns>[^/]+)/mcp$'\n    name: '{ns.x}'\n", "only plain"),
    "huge format spec": (b"namespaces:\n  - path: '^/(?P<ns>[^/]+)/mcp$'\n    name: '{ns:>20000000}'\n", "only plain"),
    "conversion": (b"namespaces:\n  - path: '^/(?P<ns>[^/]+)/mcp$'\n    name: '{ns!r}'\n", "only plain"),
    "unknown group": (b"namespaces:\n  - path: '^/(?P<ns>[^/]+)/mcp$'\n    name: '{other}'\n", "only plain"),
    "positional field": (b"namespaces:\n  - path: '^/([^/]+)/mcp$'\n    name: 'x{0}'\n", "only plain"),
    "unbalanced brace": (b"namespaces:\n  - path: '^/a$'\n    name: 'x{'\n", "not a valid name template"),
    "name is a list": (b"namespaces:\n  - path: '^/a$'\n    name: [a]\n", "expected a string"),
    "port: true": (b"namespaces:\n  - port: true\n    name: legacy\n", "port must be"),
    "max_body: true": (b"max_body: true\n", "max_body"),
    "max_body too big": (b"max_body: 99999999999999\n", "max_body"),
    "billion laughs": (LAUGHS.encode(), f"more than {MAX_ALIASES} YAML aliases|values once YAML aliases"),
    "catastrophic namespace regex": (b"namespaces:\n  - path: '^/(a+)+$'\n    name: x\n", "exponential time"),
    "catastrophic redaction regex": (b"redact:\n  patterns: ['(x*)*y']\n", "exponential time"),
    "overlapping alternation": (b"redact:\n  patterns: ['^(a|ab)*$']\n", "exponential time"),
    "lone surrogate": (b'namespaces:\n  - path: "^/a$"\n    name: "\\ud800"\n', "not valid Unicode"),
    "redact header not a string": (b"redact:\n  headers: [[x]]\n", "expected a string"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_is_a_config_error(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize("case", ["invalid UTF-8", "billion laughs", "attribute in a name", "catastrophic namespace regex", "deep nesting"])
def test_bad_config_on_the_command_line_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(BAD[case][0])
    result = CliRunner().invoke(main, ["analyze", str(CAPTURE), "--config", str(path)])
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcpsniff: error:"), result.stderr


def test_a_config_larger_than_a_mebibyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


@pytest.mark.parametrize("pattern", [r"^/api/(?P<ns>[^/]+)/mcp$", r"sk-[A-Za-z0-9]{8,}", r"^/(?:GET|POST)+$", r"^/(?:[\w-]++/)*mcp$", r"(?>a+)+b", r"^/x(?:ab){2}+$", r"acct-\d+"])
def test_ordinary_and_possessive_regexes_are_accepted(pattern: str) -> None:
    assert backtracking_risk(pattern) == ""


def test_valid_name_templates_still_work(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("namespaces:\n  - path: '^/api/(?P<ns>[^/]+)/(?P<v>v\\d)/mcp$'\n    name: 'x-{ns}-{v} {{literal}}'\n  - port: 9000\n    name: 2024\n")
    config = load_config(path)
    assert NamespaceResolver(config).resolve("/api/tasks/v2/mcp", "127.0.0.1:5076") == "x-tasks-v2 {literal}"
    assert NamespaceResolver(config).resolve("/other", "127.0.0.1:9000") == "2024"
