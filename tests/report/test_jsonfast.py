"""`--format json` is written by report/jsonfast.py: the same bytes as json.dumps of to_dict()."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcpsniff.api import analyze_files
from mcpsniff.errors import MCPSniffError
from mcpsniff.report import jsonfast
from mcpsniff.report.jsondoc import render_json

DATA = Path(__file__).resolve().parents[1] / "data"


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@dataclass
class Inner:
    pairs: tuple[tuple[str, str], ...] = (("a", "b"),)
    empty: list[int] = field(default_factory=list)


@dataclass
class Outer:
    inner: Inner
    items: list[Any]
    table: dict[Any, Any]


VALUES = [
    ("scalars", [None, True, False, 0, -7, 2**70, 1.5, -0.0, 1e300, float("nan"), float("inf"), float("-inf")]),
    ("strings", ["", "plain", 'quote " and \\ backslash', "tab\tnewline\n\x00\x1f", "é ü 日本 \u2028 😀", "\ud800", Name("sub")]),
    ("containers", {"": [], "e": {}, "t": (1, (2, ())), "nested": [[{"a": [{}]}]]}),
    ("keys", {1: "int", 2.5: "float", True: "true", None: "null", float("inf"): "inf", "s": "str"}),
    ("by default=str", [Color.RED, Level.HIGH, Path("/tmp/x"), b"bytes", {1, 2} and frozenset()]),
    ("dataclasses", Outer(Inner(), [Inner((("x", "y"), ("z", "w")), [1])], {"k": Inner()})),
]


@pytest.mark.parametrize("name, value", VALUES, ids=[v[0] for v in VALUES])
def test_same_bytes_as_json_dumps(name: str, value: Any) -> None:
    plain = asdict(value) if isinstance(value, Outer) else value
    assert jsonfast.dumps(value) == json.dumps(plain, indent=1, ensure_ascii=False, default=str)


def test_extra_keys_come_after_the_fields() -> None:
    assert jsonfast.dumps(Inner(), {"version": 2}) == json.dumps({**asdict(Inner()), "version": 2}, indent=1)


def test_keys_json_cannot_encode_are_refused_like_json() -> None:
    with pytest.raises(TypeError):
        json.dumps({(1, 2): 0}, indent=1)
    with pytest.raises(TypeError):
        jsonfast.dumps({(1, 2): 0})


def _inputs() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".jsonl", ".flows", ".har"))


@pytest.mark.parametrize("full", [False, True], ids=["compact", "full"])
def test_every_capture_in_tests_data_gives_the_same_json(full: bool) -> None:
    checked = 0
    for path in _inputs():
        try:
            analysis = analyze_files([path], full=full)
        except MCPSniffError:
            continue  # a bad input: no document
        assert render_json(analysis) == json.dumps(analysis.to_dict(), indent=1, ensure_ascii=False, default=str), path
        checked += 1
    assert checked > 30
