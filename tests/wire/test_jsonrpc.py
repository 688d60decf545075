"""JSON-RPC 2.0 / MCP classification (mcpsniff.wire.jsonrpc)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from mcpsniff.wire.jsonrpc import RpcMessage, classify, parse, tool_count


def short(m: RpcMessage) -> tuple:
    return (m.kind, m.method, m.id, m.error_code, m.error_message, m.reason)


CASES = [
    ("request", '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}', False, [("request", "initialize", 0, None, "", "")]),
    ("string id", '{"jsonrpc":"2.0","id":"a-1","method":"tools/list"}', False, [("request", "tools/list", "a-1", None, "", "")]),
    ("notification", '{"jsonrpc":"2.0","method":"notifications/initialized"}', False, [("notification", "notifications/initialized", None, None, "", "")]),
    ("response", '{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}', False, [("response", "", 1, None, "", "")]),
    ("error: session not found (python SDK)", '{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Session not found"}}', False, [("error", "", "server-error", -32600, "Session not found", "")]),
    ("error with null id", '{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}', False, [("error", "", None, -32001, "Session not found", "")]),
    ("batch", '[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]', True, [("notification", "notifications/initialized", None, None, "", ""), ("request", "tools/list", 2, None, "", "")]),
    ("batch with a non-object", '[{"jsonrpc":"2.0","id":1,"result":{}}, 5]', True, [("response", "", 1, None, "", ""), ("invalid", "", None, None, "", "not a JSON-RPC message: a number")]),
    ("empty batch", "[]", True, [("invalid", "", None, None, "", "empty batch")]),
    ("invalid JSON", '{"jsonrpc":"2.0",', False, [("invalid", "", None, None, "", "invalid JSON: Expecting property name enclosed in double quotes: line 1 column 18 (char 17)")]),
    ("not UTF-8 bytes", b"\xff\xfe\xfa", False, [("invalid", "", None, None, "", "invalid JSON: 'utf-16-le' codec can't decode byte 0xfa in position 2: truncated data")]),
    ("framework 404 body", '{"detail":"Not Found"}', False, [("invalid", "", None, None, "", 'jsonrpc is not "2.0"')]),
    ("string", '"hello"', False, [("invalid", "", None, None, "", "not a JSON-RPC message: a string")]),
    ("null", "null", False, [("invalid", "", None, None, "", "not a JSON-RPC message: null")]),
    ("missing jsonrpc keeps method and id", '{"id":3,"method":"ping"}', False, [("invalid", "ping", 3, None, "", 'jsonrpc is not "2.0"')]),
    ("method not a string", '{"jsonrpc":"2.0","id":3,"method":7}', False, [("invalid", "", 3, None, "", "method is a number")]),
    ("bad id type", '{"jsonrpc":"2.0","id":true,"method":"ping"}', False, [("invalid", "ping", None, None, "", "id is a boolean")]),
    ("result and error", '{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}', False, [("invalid", "", 1, 1, "m", "both result and error")]),
    ("error not an object", '{"jsonrpc":"2.0","id":1,"error":"boom"}', False, [("invalid", "", 1, None, "", "error is a string")]),
    ("error code not an integer", '{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}', False, [("invalid", "", 1, None, "m", "error code is not an integer")]),
    ("response without id", '{"jsonrpc":"2.0","result":{}}', False, [("invalid", "", None, None, "", "response without id")]),
    ("neither", '{"jsonrpc":"2.0","id":1}', False, [("invalid", "", 1, None, "", "neither method, result nor error")]),
    ("nested too deeply", "[" * 100000, False, [("invalid", "", None, None, "", "invalid JSON: nested too deeply")]),
]


@pytest.mark.parametrize("text, batch, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(text: str | bytes, batch: bool, expected: list[tuple]) -> None:
    body = parse(text)
    assert body.batch is batch
    assert [short(m) for m in body.messages] == expected


@pytest.mark.parametrize("text", ["", "  \r\n", b""])
def test_blank_body_has_no_messages(text: str | bytes) -> None:
    assert parse(text).messages == ()


def test_fields_are_kept() -> None:
    (msg,) = parse('{"jsonrpc":"2.0","id":9,"error":{"code":-32602,"message":"bad","data":{"x":1}}}').messages
    assert msg.error_data == {"x": 1}
    (req,) = parse('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}').messages
    assert req.params == {"name": "echo"}


@pytest.mark.parametrize(
    "result, count",
    [({"tools": [{"name": "a"}, {"name": "b"}]}, 2), ({"tools": []}, 0), ({"tools": "x"}, None), ({}, None), (None, None), ([1], None)],
)
def test_tool_count(result: object, count: int | None) -> None:
    assert tool_count(result) == count


def test_tool_count_of_a_real_tools_list_response() -> None:
    (msg,) = parse('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{}},{"name":"hold","inputSchema":{}}]}}').messages
    assert tool_count(msg.result) == 2


def test_classify_a_decoded_object() -> None:
    assert classify({"jsonrpc": "2.0", "id": 1, "result": None}).kind == "response"


@pytest.mark.parametrize("text", ['{"a":1}', '{"a":1}  \n', '{"a":1}\x0b', '{"a":1} x', '{"a":1}{"b":2}', "{", '{"a":NaN}', '{"a":"\\ud800"}', '{"a":"x\x01"}', " {}", "[]", '"s"'])
def test_decoding_shortcut_agrees_with_json_loads(text: str) -> None:
    """``_decode`` skips json.loads' wrappers for objects; results and errors must not change."""
    import json

    from mcpsniff.wire.jsonrpc import _decode

    try:
        expected: object = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc), match="^" + re.escape(str(exc)) + "$"):
            _decode(text)
    else:
        assert _decode(text) == expected


PROGRESS = '{"method":"notifications/progress","params":{"progressToken":3,"progress":1,"total":24},"jsonrpc":"2.0"}'


@pytest.mark.parametrize(
    ("text", "method"),
    [
        (PROGRESS, "notifications/progress"),  # the TS SDK's member order
        ('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t-1","progress":0.5,"message":"half way","total":null}}', "notifications/progress"),
        ('{"jsonrpc":"2.0","method":"notifications/initialized"}', "notifications/initialized"),
        ('{"params":{},"jsonrpc":"2.0","method":"x"}', "x"),
        ('{"jsonrpc":"2.0","method":"m","params":{"a":-0,"b":1e5,"c":true,"d":false,"é":"ü"}}', "m"),
        # everything below needs the full parse: the answer is "" (and parse() may still call it valid)
        ('{"jsonrpc":"2.0","id":1,"method":"ping"}', ""),  # a request
        ('{"jsonrpc":"2.0","method":"m","params":{"a":{"b":1}}}', ""),  # nested params
        ('{"jsonrpc":"2.0","method":"m","params":[1]}', ""),
        ('{"jsonrpc": "2.0","method":"m"}', ""),  # whitespace
        ('{"jsonrpc":"2.0","method":"m\\u0041"}', ""),  # an escape
        ('{"jsonrpc":"2.0","method":"m","params":{"a":"x\x01"}}', ""),  # a control character: invalid JSON
        ('{"jsonrpc":"2.0","method":"m","params":{"a":01}}', ""),  # invalid number
        ('{"jsonrpc":"2.0","method":"m","params":{"a":' + "9" * 5000 + "}}", ""),  # more digits than int() takes
        ('{"jsonrpc":"2.0","method":"m","params":{"a":NaN}}', ""),
        ('{"jsonrpc":"1.0","method":"m"}', ""),
        ('{"method":"m"}', ""),
        ('{"jsonrpc":"2.0","method":""}', ""),
        ('{"jsonrpc":"2.0","method":7}', ""),
        ('{"jsonrpc":"2.0","params":{"method":"m"},"jsonrpc":"2.0"}', ""),  # "method" only inside params
        ('{"jsonrpc":"2.0","method":"m","result":1}', ""),
        (PROGRESS[:-1], ""),  # cut short
        (PROGRESS + " ", ""),
        ("[" + PROGRESS + "]", ""),  # a batch
        ("", ""),
    ],
)
def test_plain_notification_says_what_parse_says(text: str, method: str) -> None:
    """The lifecycle's shortcut for notification events: a method only where parse() finds that one valid notification."""
    from mcpsniff.wire.jsonrpc import plain_notification, plain_notification_re

    assert plain_notification(text) == method
    assert plain_notification_re(text) == method
    if method:
        assert [(m.kind, m.method, m.id) for m in parse(text).messages] == [("notification", method, None)]


def near_misses(rng: random.Random, seeds: list[str], alphabet: str, count: int) -> Iterator[str]:
    """``count`` texts, each a seed with 1-3 edits: a character deleted, inserted or replaced, or the text cut."""
    for _ in range(count):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text) + 1)
            edit = rng.randrange(4)
            if edit == 0:
                text = text[:i] + text[i + 1 :]
            elif edit == 1:
                text = text[:i] + rng.choice(alphabet) + text[i:]
            elif edit == 2:
                text = text[:i] + rng.choice(alphabet) + text[i + 1 :]
            else:
                text = text[:i]
        yield text


def test_plain_notification_in_c_agrees_with_the_expression() -> None:
    """The C walk (the compiled build) against the regular expression, on thousands of near-misses."""
    from mcpsniff import native
    from mcpsniff.wire import jsonrpc

    if not native.compiled_now():
        pytest.skip(f"the C walk is part of the compiled build: {native.status()}")
    c_walk = jsonrpc._c_plain_notification
    assert c_walk is not None
    rng = random.Random(14)
    seeds = [PROGRESS, '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"é ü 日本"}}', '{"jsonrpc":"2.0","method":"x"}']
    alphabet = '{}[]":,.-+eE0123456789 \\\x01\u00e9\u65e5trufalsn' + "abcdefghijklmnopqrstuvwxyz"
    checked = found = 0
    for text in near_misses(rng, seeds, alphabet, 6000):
        expected = jsonrpc.plain_notification_re(text)
        assert c_walk(text) == expected, text
        checked += 1
        found += bool(expected)
    assert checked == 6000 and found > 100  # near-misses both ways, not only rejects


PY_CALL = '{"method":"tools/call","params":{"name":"tool_1","arguments":{"arg":"x"}},"jsonrpc":"2.0","id":7}'  # the Python SDK's order
TS_CALL = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a \\"quoted\\" \\u00e9 word","n":[1,-2.5e3,{"k":null}]}}}'
NAMED = {"tools/call", "prompts/get", "resources/read"}


def _parse_says(text: str) -> tuple[str, str, object, str] | None:
    """What the lifecycle takes from parse() of a request body: (kind, method, id, name), when
    the body is one request or notification without params._meta."""
    messages = parse(text).messages
    if len(messages) != 1 or messages[0].kind not in ("request", "notification"):
        return None
    msg = messages[0]
    params = msg.params
    if params is not None and (type(params) is not dict or "_meta" in params):
        return None
    value = (params or {}).get("uri" if msg.method == "resources/read" else "name")
    name = value[:200] if msg.method in NAMED and isinstance(value, str) else ""
    return msg.kind, msg.method, msg.id, name


@pytest.mark.parametrize(
    "text, expected",
    [
        (PY_CALL, ("request", "tools/call", 7, "tool_1")),
        (TS_CALL, ("request", "tools/call", 3, "echo")),  # escapes and nesting in the arguments
        ('{"jsonrpc":"2.0","id":"r-1","method":"resources/read","params":{"uri":"file:///a b"}}', ("request", "resources/read", "r-1", "file:///a b")),
        ('{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{}}}', ("request", "prompts/get", 1, "p")),
        ('{"jsonrpc":"2.0","id":2,"method":"tools/list"}', ("request", "tools/list", 2, "")),
        ('{"jsonrpc":"2.0","id":-0,"method":"ping"}', ("request", "ping", 0, "")),
        ('{"jsonrpc":"2.0","id":null,"method":"ping"}\r\n', ("request", "ping", None, "")),  # "id": null is still a request
        ('{"jsonrpc":"2.0","method":"notifications/initialized"}', ("notification", "notifications/initialized", None, "")),
        ('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":7}}', ("request", "tools/call", 4, "")),  # a name that is not a string
        ('{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"name":"x"}}', ("request", "tools/list", 4, "")),  # a name only tools/call and prompts/get carry
        ('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"' + "n" * 300 + '"}}', ("request", "tools/call", 5, "n" * 200)),
        ('{"jsonrpc":"2.0","id":999999999999999999,"method":"m"}', ("request", "m", 999999999999999999, "")),
        # everything below goes to parse()
        ('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}', None),  # its params are read
        ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}', None),
        ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","name":"y"}}', None),  # json keeps the last name
        ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\u0078"}}', None),  # an escaped name
        ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"\\u005fmeta":{}}}', None),  # an escaped key
        ('{"jsonrpc":"2.0","id":1.5,"method":"m"}', None),
        ('{"jsonrpc":"2.0","id":1e3,"method":"m"}', None),
        ('{"jsonrpc":"2.0","id":true,"method":"m"}', None),
        ('{"jsonrpc":"2.0","id":9999999999999999999,"method":"m"}', None),  # more digits than the walk keeps
        ('{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}', None),
        ('{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}', None),
        ('{"jsonrpc":"2.0","id":1,"method":"m","result":{}}', None),
        ('{"jsonrpc":"2.0","id":1}', None),
        ('{"id":1,"method":"m"}', None),
        ('{"jsonrpc": "2.0","id":1,"method":"m"}', None),  # whitespace inside
        ('{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"x\x01"}}', None),  # a control character: invalid JSON
        ('{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":NaN}}', None),
        ('{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"\\x"}}', None),  # a bad escape
        ('{"jsonrpc":"2.0","id":1,"method":"m","params":' + "[" * 40 + "]" * 40 + "}", None),  # deep: json decides
        (PY_CALL[:-1], None),
        (PY_CALL + "x", None),
        ("[" + PY_CALL + "]", None),
        ("", None),
    ],
)
def test_plain_request_says_what_parse_says(text: str, expected: tuple | None) -> None:
    """The lifecycle's shortcut for request bodies (the C walk): parse()'s answer, or None to ask parse()."""
    from mcpsniff.wire import jsonrpc

    plain = jsonrpc.plain_request(text)
    if jsonrpc._c_plain_request is None:  # the pure-Python build: every body goes to parse()
        assert plain is None
        return
    assert (None if plain is None else (plain[0].kind, plain[0].method, plain[0].id, plain[1])) == expected
    if expected is not None:
        assert _parse_says(text) == expected


def test_plain_request_agrees_with_parse_on_near_misses_and_real_bodies() -> None:
    """Whatever the C walk accepts, parse() reads the same way: thousands of edited bodies, and
    every request body of the real SDK captures (most of which the walk must take)."""
    from pathlib import Path

    from mcpsniff import native
    from mcpsniff.capture.pcap import read_capture
    from mcpsniff.records import Request
    from mcpsniff.wire import jsonrpc

    if jsonrpc._c_plain_request is None:
        pytest.skip(f"the C walk is part of the compiled build: {native.status()}")

    def agree(text: str) -> bool:
        plain = jsonrpc.plain_request(text)
        if plain is not None:
            assert (plain[0].kind, plain[0].method, plain[0].id, plain[1]) == _parse_says(text), text
        return plain is not None

    rng = random.Random(14)
    alphabet = '{}[]":,.-+eE0123456789 \\/u\x01\u00e9\u65e5trufalsn_' + "abcdefghijklmnopqrstuvwxyz"
    seeds = [PY_CALL, TS_CALL, '{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"u","_meta":{}}}']
    found = sum(agree(text) for text in near_misses(rng, seeds, alphabet, 6000))
    assert found > 500  # near-misses both ways, not only rejects
    bodies = [rec.body for cap in sorted(Path(__file__).parents[1].glob("data/real/*/capture.pcap")) for rec in read_capture(cap) if isinstance(rec, Request) and rec.body]
    taken = sum(agree(body) for body in bodies)
    assert len(bodies) > 100 and taken > len(bodies) / 2, (taken, len(bodies))


@pytest.mark.parametrize("schema", [{"b": 1, "a": [1.5, 1e300, -0.0, True, None]}, {"z": {"y": "é\u2028\"\\x"}, "a": {}}, [float("nan"), float("inf")], None, "text", 12])
def test_tool_catalog_hashes_the_dumps_text(schema: object) -> None:
    """The schema hash is sha1 of json.dumps(sort_keys=True) (the catalog of a saved analysis must still match)."""
    import hashlib
    import json

    from mcpsniff.wire.jsonrpc import tool_catalog

    result = {"tools": [{"name": "t", "inputSchema": schema}, {"name": "u", "inputSchema": schema, "outputSchema": {"k": schema}}]}
    expected = tuple(sorted((tool["name"], hashlib.sha1(json.dumps([tool.get("inputSchema"), tool.get("outputSchema")], sort_keys=True, default=str).encode("utf-8", "replace")).hexdigest()[:12]) for tool in result["tools"]))
    assert tool_catalog(result) == expected
    assert tool_catalog(result) == expected  # again, from the digests kept
