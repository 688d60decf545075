"""``json.dumps(asdict(obj), indent=1, ensure_ascii=False, default=str)``, byte for byte, faster.

With an ``indent`` the standard library encodes in pure Python (its C encoder takes no
indent before Python 3.13): on a big capture's ``--format json`` that, and ``asdict``'s
deep copy before it, took about 10% of ``analyze``.  This walks the dataclasses
directly, in one compiled function (``mcpsniff/native.py`` lists it); strings go
through the standard library's C string encoder.  ``tests/report`` checks it against
``json.dumps`` of ``to_dict()`` on every capture in tests/data.
"""

from __future__ import annotations

import dataclasses
import json.encoder
from typing import Any

_ENCODE: Any = json.encoder.encode_basestring  # the C one where _json is there (it is in CPython)
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}  # dataclass -> (field name, its encoded key and ": ")
_INF = float("inf")


def dumps(obj: object, extra: dict[str, Any] | None = None) -> str:
    """The JSON of ``obj`` (dataclasses as objects, tuples as lists), ``extra``'s keys added
    after a top-level dataclass's own fields (as ``Analysis.to_dict`` adds "version")."""
    out: list[str] = []
    _value(obj, out, 0, extra)
    return "".join(out)


def _fields(cls: type) -> tuple[tuple[str, str], ...] | None:
    """A dataclass's fields with their keys as written, or None for any other class."""
    fields = _FIELDS.get(cls)
    if fields is None and dataclasses.is_dataclass(cls):
        fields = _FIELDS[cls] = tuple((f.name, _ENCODE(f.name) + ": ") for f in dataclasses.fields(cls))
    return fields


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k: object) -> str:
    if isinstance(k, str):
        return _ENCODE(k) + ": "
    if k is True:
        return '"true": '
    if k is False:
        return '"false": '
    if k is None:
        return '"null": '
    if isinstance(k, int):
        return '"' + int.__repr__(k) + '": '
    if isinstance(k, float):
        return '"' + _float(k) + '": '
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _value(o: object, out: list[str], level: int, extra: dict[str, Any] | None = None) -> None:
    if isinstance(o, str):
        out.append(_ENCODE(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, (list, tuple)):
        _items([("", item) for item in o], out, level, "[", "]")
    elif isinstance(o, dict):
        _items([(_key(k), v) for k, v in o.items()], out, level)
    else:
        fields = _fields(type(o))
        if fields is None:  # (a dataclass itself, not an instance, is no dataclass instance either: type(o) is type)
            _value(str(o), out, level)
            return
        items = [(key, getattr(o, name)) for name, key in fields]
        if extra:
            items.extend((_key(k), v) for k, v in extra.items())
        _items(items, out, level)


def _items(items: list[tuple[str, Any]], out: list[str], level: int, opening: str = "{", closing: str = "}") -> None:
    """An object's (key as written, with ": "; value) or an array's ("", value)."""
    if not items:
        out.append(opening + closing)
        return
    inner = "\n" + " " * (level + 1)
    sep = "," + inner
    out.append(opening + inner)
    first = True
    for key, v in items:
        if first:
            first = False
        else:
            out.append(sep)
        if key:
            out.append(key)
        _value(v, out, level + 1)
    out.append("\n" + " " * level + closing)
