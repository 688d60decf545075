"""The dataclasses whose ``__init__`` is written out (so that mypyc compiles it) build the
same objects as the one dataclass would write: fields in order, defaults, fresh lists."""

from __future__ import annotations

import ast
import copy
import dataclasses
import pickle
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from mcpsniff import records as R
from mcpsniff.analysis.lifecycle import _Conn
from mcpsniff.analysis.model import Exchange, SseTick
from mcpsniff.wire import http1, tcpevents
from mcpsniff.wire.jsonrpc import RpcBody, RpcMessage
from mcpsniff.wire.sse import SseMessage


def annotations(cls: type) -> dict[str, str]:
    """The fields' annotations as written in the source (compiled, ``Field.type`` may say only ``type``)."""
    source = Path(sys.modules[cls.__module__].__file__ or "").with_suffix("").with_suffix(".py")
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return {b.target.id: ast.unparse(b.annotation) for b in node.body if isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name)}
    raise LookupError(cls)


def sample(kind: str, i: int) -> Any:
    """A value of the annotated type (the compiled build checks them), different for every field."""
    for prefix, value in (("str", f"s{i}"), ("float", i + 0.5), ("bool", True), ("int", i + 2), ("bytes", b"b%d" % i), ("list", [f"l{i}"]), ("set", {f"e{i}"}),
                          ("tuple[RpcMessage", (RpcMessage(f"k{i}"),)), ("tuple", ((f"a{i}", "b"),)), ("Headers", ((f"a{i}", "b"),))):
        if kind.startswith(prefix):
            return value
    return f"any{i}"  # Any


WRITTEN_OUT = [
    Exchange, SseTick, _Conn, RpcMessage, RpcBody, SseMessage,
    R.Meta, R.ConnEvent, R.Request, R.Response, R.SseEvent, R.End, R.CaptureWarning,
    tcpevents.TcpOpened, tcpevents.TcpRefused, tcpevents.TcpData, tcpevents.TcpGap, tcpevents.TcpClosed, tcpevents.TcpReset, tcpevents.TcpOpenAtEnd,
    http1.RequestHead, http1.ResponseHead, http1.BodyPiece, http1.MessageEnd, http1.ParseError,
]


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_written_out_init_matches_the_fields(cls: type) -> None:
    fields = dataclasses.fields(cls)
    kinds = annotations(cls)
    required = [sample(kinds[f.name], i) for i, f in enumerate(fields) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    bare, other = cls(*required), cls(*required)
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default_factory(), f.name
            assert getattr(bare, f.name) is not getattr(other, f.name), f.name  # a new one each time
        elif f.default is not dataclasses.MISSING:
            assert getattr(bare, f.name) == f.default, f.name
    values = [sample(kinds[f.name], i) for i, f in enumerate(fields)]  # every field set, by position and by name
    for obj in (cls(*values), cls(**{f.name: v for f, v in zip(fields, values)})):
        assert [getattr(obj, f.name) for f in fields] == values
    copied = copy.deepcopy(obj)  # (compiled, __new__ runs __init__: __reduce__ gives it the fields)
    assert copied == obj and copied is not obj
    assert pickle.loads(pickle.dumps(obj)) == obj


@pytest.mark.parametrize("cls", typing.get_args(R.Record), ids=lambda cls: cls.__name__)
def test_every_record_field_goes_through_the_parallel_readers_pipe(cls: type) -> None:
    """What a worker sends (``pack_records``, pickled) comes out as the same record, every field kept."""
    fields = dataclasses.fields(cls)
    kinds = annotations(cls)
    record = cls(*(sample(kinds[f.name], i) for i, f in enumerate(fields)))  # a different value in every field
    (item,) = R.pack_records([record])
    assert len(item) == len(fields) + 1
    assert R.unpack_records(pickle.loads(pickle.dumps([item], pickle.HIGHEST_PROTOCOL))) == [record]


@pytest.mark.parametrize(("record", "t"), [
    (R.SseEvent(2.5, "c1.1", "{}"), 2.5),
    (R.ConnEvent(1.0, "c1", "opened"), 1.0),
    (R.CaptureWarning(3.0, "lost bytes"), 3.0),
    (R.CaptureWarning(None, "a file with no packet"), float("inf")),
    (R.Meta("pcap"), float("inf")),
])
def test_time_key_puts_records_without_a_time_last(record: R.Record, t: float) -> None:
    """Records (the parallel reader's merge among them) sort by ``time_key``: one without a time comes last."""
    assert R.time_key(record) == t
