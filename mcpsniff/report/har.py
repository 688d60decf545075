"""HAR 1.2 export: every exchange of every namespace as an entry HAR viewers can load.

Why the custom fields: HAR has no place for server-sent events, so each streamed
response carries its events as ``_sseEvents`` (``time`` in epoch seconds, ``event``,
``id``, ``data``, ``retry``; the shape ``mcpsniff analyze`` reads back), and the
stream's text is also in ``response.content.text`` for viewers that only show
bodies.  ``_mcp`` holds what mcpsniff learnt (namespace, session, JSON-RPC methods,
outcome, verdict, stall point); ``log._mcpsniff`` the verdicts, the restart windows
and the refused connections that carried no request (HAR entries cannot hold them,
so an exported HAR analyzed again lacks that restart evidence).  A request
that got no response has status 0 and ``_error`` as Chrome writes it.  The analysis
is redacted first (secrets always; sessions and hosts too with ``share``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..analysis.model import Analysis, Exchange, NamespaceLifecycle, SseTick
from ..config import Config
from ..errors import BadInputError
from ..records import header
from .redact import Redactor

PAGE_ID = "mcpsniff"
ERRORS = {"refused": "net::ERR_CONNECTION_REFUSED", "reset": "net::ERR_CONNECTION_RESET", "closed": "net::ERR_EMPTY_RESPONSE", "open-at-end": "capture ended before the response"}


def mcpsniff_version() -> str:
    try:
        return version("mcpsniff")
    except PackageNotFoundError:
        return "0"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ms(a: float | None, b: float | None) -> float:
    return 0.0 if a is None or b is None else max(0.0, b - a) * 1000.0


def _headers(pairs: Any) -> list[dict[str, str]]:
    return [{"name": str(k), "value": str(v)} for k, v in pairs]


def _url(ex: Exchange) -> str:
    if "://" in ex.target:
        return ex.target
    host = header(ex.request_headers, "host") or ex.server or "localhost"
    return f"http://{host}{ex.target if ex.target.startswith('/') else '/' + ex.target}"


def sse_text(events: list[SseTick]) -> str:
    """The stream as it was on the wire (one block per event)."""
    blocks = []
    for ev in events:
        lines = [f"id: {ev.id}"] if ev.id is not None else []
        lines += [f"event: {ev.event}"] if ev.event else []
        lines += [f"retry: {ev.retry}"] if ev.retry is not None else []
        lines += [f"data: {line}" for line in ev.data.split("\n")]
        blocks.append("\n".join(lines) + "\n\n")
    return "".join(blocks)


def _sse_events(events: list[SseTick]) -> list[dict[str, Any]]:
    out = []
    for ev in events:
        item: dict[str, Any] = {"time": ev.t, "event": ev.event, "data": ev.data, "rpc": ev.rpc}
        if ev.id is not None:
            item["id"] = ev.id
        if ev.retry is not None:
            item["retry"] = ev.retry
        out.append(item)
    return out


def entry(ex: Exchange, ns: NamespaceLifecycle) -> dict[str, Any]:
    """One HAR entry (request, response, timings) plus the ``_mcp`` and ``_sseEvents`` extras."""
    url = _url(ex)
    req_type = header(ex.request_headers, "content-type") or ("application/json" if ex.request_body else "")
    request: dict[str, Any] = {
        "method": ex.method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "headers": _headers(ex.request_headers),
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)],
        "headersSize": -1, "bodySize": len(ex.request_body.encode("utf-8")),
    }
    if ex.request_body or ex.method in ("POST", "PUT", "PATCH"):
        request["postData"] = {"mimeType": req_type, "text": ex.request_body}
    resp_type = header(ex.response_headers, "content-type") or ""
    text = sse_text(ex.events) if ex.stream else ex.response_body
    status = ex.status or 0
    try:
        reason = HTTPStatus(status).phrase if status else ""
    except ValueError:
        reason = ""
    response: dict[str, Any] = {
        "status": status, "statusText": reason, "httpVersion": "HTTP/1.1" if status else "", "cookies": [], "headers": _headers(ex.response_headers),
        "content": {"size": len(text.encode("utf-8")), "mimeType": resp_type or ("text/event-stream" if ex.stream else "x-unknown"), "text": text},
        "redirectURL": header(ex.response_headers, "location") or "", "headersSize": -1, "bodySize": len(text.encode("utf-8")) if status else -1,
    }
    t_resp = ex.t_response if ex.t_response is not None else ex.t_end
    wait, receive = _ms(ex.t, t_resp), _ms(t_resp, ex.t_end)
    d = ns.diagnosis
    item: dict[str, Any] = {
        "pageref": PAGE_ID, "startedDateTime": iso(ex.t), "time": wait + receive, "request": request, "response": response, "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "send": 0, "wait": wait, "receive": receive, "ssl": -1},
        "connection": ex.conn,
        "_mcp": {
            "namespace": ns.name, "sessionId": ex.session_id, "newSessionId": ex.new_session_id, "rpcMethods": ex.rpc_methods, "rpcIds": ex.rpc_ids,
            "generation": ex.generation, "outcome": ex.outcome, "error": ex.error, "errorDetail": ex.error_detail, "xid": ex.xid, "frame": ex.frame,
            "verdict": d.verdict, "stallPoint": d.stall_point is not None and d.stall_point.xid == ex.xid,
        },
    }
    server_host = ex.server.rsplit(":", 1)[0].strip("[]") if ex.server else ""
    if server_host:
        item["serverIPAddress"] = server_host
    if ex.stream:
        item["_sseEvents"] = _sse_events(ex.events)
    if not status:
        item["_error"] = response["_error"] = ERRORS.get(ex.outcome, ex.outcome or "no response")
    return item


def build_har(analysis: Analysis, config: Config | None = None, share: bool = False) -> dict[str, Any]:
    """The HAR document (a dict) of a redacted copy of ``analysis``."""
    safe = Redactor(config, share).apply(analysis)
    pairs = sorted(((ex, ns) for ns in safe.namespaces for ex in ns.exchanges), key=lambda pair: pair[0].t)
    entries = [entry(ex, ns) for ex, ns in pairs]
    verdicts = {ns.name: {"verdict": ns.diagnosis.verdict, "signature": ns.diagnosis.signature,
                          "stallPoint": ns.diagnosis.stall_point.describe(safe.t0) if ns.diagnosis.stall_point else None}
                for ns in safe.namespaces}
    restarts = [{"down": iso(w.t_down), "back": iso(w.t_back) if w.t_back is not None else None, "refused": w.refused, "evidence": w.evidence} for w in safe.restarts]
    return {"log": {
        "version": "1.2",
        "creator": {"name": "mcpsniff", "version": mcpsniff_version()},
        "pages": [{"startedDateTime": iso(safe.t0), "id": PAGE_ID, "title": "mcpsniff: " + ", ".join(safe.sources), "pageTimings": {"onContentLoad": -1, "onLoad": -1}}],
        "entries": entries,
        "comment": "exported by mcpsniff; SSE events are in each entry's _sseEvents, MCP facts in _mcp",
        "_mcpsniff": {"namespaces": verdicts, "restarts": restarts, "unattributed": safe.unattributed, "warnings": safe.warnings},
    }}


def write_har(analysis: Analysis, path: Path, config: Config | None = None, share: bool = False) -> int:
    """Write the HAR file; returns the number of entries."""
    doc = build_har(analysis, config, share)
    try:
        with path.open("w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, indent=1)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the HAR file: {exc.strerror or exc}") from None
    return len(doc["log"]["entries"])
