"""JSON-RPC 2.0 / MCP message classification of an HTTP body or an SSE ``data`` string.

Captured bodies are untrusted and sometimes cut short, so nothing here raises:
anything that is not a well-formed message comes back as kind "invalid" with a
one-line ``reason`` (plus whatever method/id could still be read).  Batches (a JSON
array, allowed by 2025-03-26 and removed by 2025-06-18) are flattened.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ..records import Rebuilt

REQUEST: Final = "request"
NOTIFICATION: Final = "notification"
RESPONSE: Final = "response"
ERROR: Final = "error"
INVALID: Final = "invalid"
KINDS = (REQUEST, NOTIFICATION, RESPONSE, ERROR, INVALID)


# The dataclasses below spell out __init__ (mypyc compiles it; the generated one runs as Python: see records.py).
@dataclass(slots=True)
class RpcMessage(Rebuilt):
    """One JSON-RPC message.  ``id`` is None for notifications (and for ``"id": null``).

    Read-only by convention (not frozen: a frozen dataclass is ~5x slower to build,
    and ``analyze`` builds one per captured message).
    """

    kind: str
    method: str = ""
    id: str | int | float | None = None
    params: Any = None
    result: Any = None
    error_code: int | None = None
    error_message: str = ""
    error_data: Any = None
    reason: str = ""  # why the message is "invalid"

    def __init__(
        self,
        kind: str,
        method: str = "",
        id: str | int | float | None = None,
        params: Any = None,
        result: Any = None,
        error_code: int | None = None,
        error_message: str = "",
        error_data: Any = None,
        reason: str = "",
    ) -> None:
        self.kind = kind
        self.method = method
        self.id = id
        self.params = params
        self.result = result
        self.error_code = error_code
        self.error_message = error_message
        self.error_data = error_data
        self.reason = reason


@dataclass(slots=True)
class RpcBody(Rebuilt):
    """The messages of one body; ``batch`` when the body was a JSON array."""

    messages: tuple[RpcMessage, ...]
    batch: bool = False

    def __init__(self, messages: tuple[RpcMessage, ...], batch: bool = False) -> None:
        self.messages = messages
        self.batch = batch


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner json.loads ends in, without its three Python frames


def _decode(text: str | bytes) -> Any:
    """``json.loads(text)``; a str that starts a JSON object goes straight to the scanner (the
    usual MCP message: ``analyze`` decodes one per request and per SSE event)."""
    if type(text) is str and text[:1] == "{":
        try:
            scanned: tuple[Any, int] = _scan(text, 0)  # typed: unpacked by index, not by an iterator
        except StopIteration:
            pass  # invalid: json.loads says why
        else:
            value, end = scanned
            if end == len(text) or not text[end:].strip(" \t\n\r"):  # JSON whitespace only
                return value
    return json.loads(text)


def _flat_notification_pattern() -> re.Pattern[str]:
    """A whole JSON text that is one notification with ``jsonrpc``, ``method`` and flat ``params``.

    Strict JSON only (no whitespace, escapes or control characters in strings, numbers
    ``json`` turns into int or float), in any member order: one capture group per order
    holds the method.  Anything else (nested params, an id, other members) is not matched.
    """
    string = r'"[^"\\\x00-\x1f]*"'
    number = r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?(?:[eE][+-]?[0-9]{1,3})?"  # no 4300-digit int
    scalar = f"(?:{string}|{number}|true|false|null)"
    params = rf'"params":\{{(?:{string}:{scalar}(?:,{string}:{scalar})*)?\}}'
    method = r'"method":"([^"\\\x00-\x1f]+)"'
    version = r'"jsonrpc":"2\.0"'
    orders = [",".join(order) for members in ((method, version, params), (method, version)) for order in itertools.permutations(members)]
    return re.compile("|".join(rf"\{{{order}\}}" for order in orders))


_FLAT_NOTIFICATION: Final[list[re.Pattern[str]]] = []  # compiled on first use (7 ms): the C walk usually stands in


def plain_notification_re(text: str) -> str:
    """``plain_notification`` by the regular expression: the fallback, and the reference for the C walk."""
    if not _FLAT_NOTIFICATION:
        _FLAT_NOTIFICATION.append(_flat_notification_pattern())
    match = _FLAT_NOTIFICATION[0].fullmatch(text)
    if match is None:
        return ""
    for method in match.groups():
        if method is not None:
            return method
    return ""


try:  # the same test in C (wire/_rpcscan.c), built by scripts/compile.py: the expression costs as much as json.loads
    from ._rpcscan import plain_notification as _c_plain_notification
except ImportError:
    _c_plain_notification = None


def plain_notification(text: str) -> str:
    """The method of ``text`` when it is one well-formed notification with flat params, else "".

    What ``parse`` would say of it (one valid notification of that method) for a fraction
    of the cost: no dicts built.  Progress notifications (``{"method":
    "notifications/progress","params":{"progressToken":3,"progress":1,"total":24},
    "jsonrpc":"2.0"}``) are most of the SSE events of a busy capture, and what the
    lifecycle learns from one is its method.
    """
    if _c_plain_notification is not None:
        method: str = _c_plain_notification(text)
        return method
    return plain_notification_re(text)


try:  # built by scripts/compile.py beside plain_notification's walk; without it every request goes to parse()
    from ._rpcscan import plain_request as _c_plain_request
except ImportError:
    _c_plain_request = None

_NAMED: Final = frozenset({"tools/call", "prompts/get"})  # methods whose params.name is what Mcp-Name carries


def plain_request(text: str) -> tuple[RpcMessage, str] | None:
    """What ``parse`` says of the usual request body, for a fraction of the cost: its one
    message (``params`` left out) and the tool or prompt name or resource URI it names
    (``rpc_name``); None for everything else, which ``parse`` must read.

    "Usual": one object of ``jsonrpc`` ("2.0"), ``method``, an optional ``id`` (an int, a string
    or null) and optional ``params`` (an object without ``_meta``: what a 2026-07-28 request
    declares there is read from the parsed body), in strict JSON without whitespace, not an
    ``initialize`` (its params are read).  A request costs ``parse`` about 2.5 us of
    ``json.loads`` and dicts nobody reads; this walk (``_rpcscan.c``) a tenth of that.
    """
    if _c_plain_request is None or type(text) is not str:
        return None
    facts: tuple[str, Any, bool, str | None, str | None] | None = _c_plain_request(text)
    if facts is None or facts[0] == "initialize":
        return None
    method, msg_id, has_id, name, uri = facts
    named = (uri if method == "resources/read" else name if method in _NAMED else None) or ""
    return RpcMessage(REQUEST if has_id else NOTIFICATION, method, msg_id), named[:200]


def _what(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def parse(text: str | bytes) -> RpcBody:
    """Classify a whole body (or SSE data). Blank text has no messages."""
    try:
        value = _decode(text)
    except RecursionError:
        return RpcBody((RpcMessage(INVALID, reason="invalid JSON: nested too deeply"),))
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        if not text.strip():
            return RpcBody(())
        return RpcBody((RpcMessage(INVALID, reason=f"invalid JSON: {exc}"),))
    if type(value) is list:
        if not value:
            return RpcBody((RpcMessage(INVALID, reason="empty batch"),), True)
        return RpcBody(tuple([classify(item) for item in value]), True)
    return RpcBody((classify(value),))


def classify(obj: Any) -> RpcMessage:
    """Classify one decoded JSON value as a JSON-RPC 2.0 message."""
    if type(obj) is dict and obj.get("jsonrpc") == "2.0":  # fast paths: well-formed messages
        msg_id = obj.get("id")
        if msg_id is None or type(msg_id) is int or type(msg_id) is str:
            method = obj.get("method")
            if type(method) is str:
                return RpcMessage(REQUEST if "id" in obj else NOTIFICATION, method, msg_id, obj.get("params"))
            if method is None and "method" not in obj and "id" in obj:
                if "result" in obj and "error" not in obj:
                    return RpcMessage(RESPONSE, "", msg_id, None, obj["result"])
                error = obj.get("error")
                if type(error) is dict and "result" not in obj:
                    code, message = error.get("code"), error.get("message")
                    if type(code) is int and type(message) is str:
                        return RpcMessage(ERROR, "", msg_id, None, None, code, message, error.get("data"))
    return _classify_odd(obj)


def _classify_odd(obj: Any) -> RpcMessage:
    """Everything the fast paths did not accept: say what is wrong, keep what can be read."""
    if not isinstance(obj, dict):
        return RpcMessage(INVALID, reason=f"not a JSON-RPC message: {_what(obj)}")
    method = obj.get("method")
    msg_id = obj.get("id")
    problem = ""
    if obj.get("jsonrpc") != "2.0":
        problem = 'jsonrpc is not "2.0"'
    if msg_id is not None and (isinstance(msg_id, bool) or not isinstance(msg_id, str | int | float)):
        problem = problem or f"id is {_what(msg_id)}"
        msg_id = None
    elif type(msg_id) is float and not math.isfinite(msg_id):  # 1e999: no JSON output could hold it
        problem = problem or "id is not a finite number"
        msg_id = None
    if "method" in obj:
        if not isinstance(method, str):
            return RpcMessage(INVALID, id=msg_id, reason=f"method is {_what(method)}")
        kind = REQUEST if "id" in obj else NOTIFICATION
        return RpcMessage(INVALID if problem else kind, method, msg_id, obj.get("params"), reason=problem)
    if "error" in obj:
        error = obj["error"]
        if "result" in obj:
            problem = problem or "both result and error"
        if not isinstance(error, dict):
            return RpcMessage(INVALID, id=msg_id, reason=problem or f"error is {_what(error)}")
        code, message = error.get("code"), error.get("message")
        if isinstance(code, bool) or not isinstance(code, int):
            problem = problem or "error code is not an integer"
            code = None
        if not isinstance(message, str):
            problem = problem or "error message is not a string"
            message = ""
        if "id" not in obj:
            problem = problem or "response without id"
        return RpcMessage(INVALID if problem else ERROR, "", msg_id, None, None, code, message, error.get("data"), problem)
    if "result" in obj:
        if "id" not in obj:
            problem = problem or "response without id"
        return RpcMessage(INVALID if problem else RESPONSE, "", msg_id, result=obj["result"], reason=problem)
    return RpcMessage(INVALID, id=msg_id, reason=problem or "neither method, result nor error")


def tool_count(result: Any) -> int | None:
    """Number of tools in a ``tools/list`` result (None if it is not one)."""
    if isinstance(result, dict):
        tools = result.get("tools")
        if isinstance(tools, list):
            return len(tools)
    return None


def tool_catalog(result: Any) -> tuple[tuple[str, str], ...] | None:
    """(name, schema hash) of each tool in a ``tools/list`` result (None if it is not one).

    The hash covers the tool's input and output schema, so a changed argument shows as a
    changed tool while a reworded description does not.
    """
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
        return None
    out = []
    for tool in result["tools"]:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            schema = _canonical([tool.get("inputSchema"), tool.get("outputSchema")])
            digest = _DIGESTS.get(schema)
            if digest is None:
                digest = hashlib.sha1(schema.encode("utf-8", "replace")).hexdigest()[:12]
                if len(_DIGESTS) < MAX_DIGESTS and len(schema) <= MAX_DIGESTED:
                    _DIGESTS[schema] = digest
            out.append((tool["name"][:200], digest))
    return tuple(sorted(out))


# Every tools/list answer hashes each tool's schemas again, and the same few schemas come back
# in every session: their digests are kept (bounded: a few small schemas is the usual case).
_DIGESTS: dict[str, str] = {}
MAX_DIGESTS: Final = 4096
MAX_DIGESTED: Final = 4096  # characters: a bigger schema is hashed each time


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, default=str)``, the same text, without building an encoder per call.

    The C encoder itself when there is one (no circular check: decoded JSON has no cycles), else a
    prebuilt ``JSONEncoder``.
    """
    encoder = json.JSONEncoder(sort_keys=True, default=str)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    try:
        chunks = make(None, str, json.encoder.encode_basestring_ascii, None, encoder.key_separator, encoder.item_separator, True, False, True)
    except TypeError:  # a signature this Python does not have
        return encoder.encode

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_canonical: Final = _json_encoder()
