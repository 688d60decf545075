from __future__ import annotations

from pathlib import Path

import pytest

from mcpsniff.config import load_config, parse_config
from mcpsniff.errors import ConfigError


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.thresholds.give_up_after == 35.0
    assert cfg.namespaces == ()


def test_full_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "namespaces:\n  - port: 9000\n    name: legacy\n"
        "thresholds:\n  give_up_after: 50\n"
        "redact:\n  headers: [X-Api-Key]\n  patterns: ['sk-[a-z]+']\n"
        "max_body: 100\n"
    )
    cfg = load_config(path)
    assert cfg.namespaces[0].port == 9000
    assert cfg.thresholds.give_up_after == 50.0
    assert cfg.redact.headers == ("x-api-key",)
    assert cfg.redact.patterns[0].search("key sk-abc")
    assert cfg.max_body == 100


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"bogus": 1}, "unknown key"),
        ({"namespaces": {"a": 1}}, "expected a list"),
        ({"namespaces": [{"name": "x"}]}, "needs 'name' and at least one"),
        ({"namespaces": [{"port": 70000, "name": "x"}]}, "port must be"),
        ({"namespaces": [{"path": "(", "name": "x"}]}, "invalid regular expression"),
        ({"thresholds": {"give_up_after": "soon"}}, "give_up_after: expected a number of seconds"),
        ({"thresholds": {"give_up_afer": 3}}, r"unknown key\(s\) give_up_afer \(valid: give_up_after, "),
        ({"thresholds": {"hung_after": float("nan")}}, "hung_after: expected a number"),
        ({"thresholds": {"sibling_margin": -5}}, "sibling_margin: expected a number of seconds >= 0"),
        ({"thresholds": {"storm_min_reopens": 2.5}}, "storm_min_reopens: expected a whole number"),
        ({"thresholds": {"give_up_after": True}}, "give_up_after: expected"),
        ({"redact": {"headers": "x"}}, "must be lists"),
        ({"max_body": -1}, "non-negative"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_invalid_configs_name_the_problem(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(doc)


def test_broken_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("namespaces: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)
