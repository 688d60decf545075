"""OpenTelemetry export: the analysis as OTLP/JSON traces for Jaeger, Tempo & co.

The document is an ``ExportTraceServiceRequest`` in the OTLP/JSON encoding, so it
can be POSTed to a collector's ``/v1/traces`` or read by its ``otlpjsonfile``
receiver.  The mapping's rules that differ from plain proto3 JSON are followed:
trace and span ids are lowercase hex (not base64), 64-bit integers are strings
(``startTimeUnixNano``, ``intValue``), enums are integers.

Shape: one resource per namespace (``service.name`` = the namespace), one trace per
MCP session of it (a root span for the session, a child span per HTTP exchange;
SSE events are span events), exchanges outside any session in a trace of their own,
and one trace per server restart under the ``mcpsniff`` resource.  Ids are derived
from the capture (same input, same ids), so exporting twice does not duplicate
traces in a backend.  The analysis is redacted first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..analysis.model import Analysis, Exchange, Generation, NamespaceLifecycle, RestartWindow
from ..config import Config
from ..errors import BadInputError
from .har import mcpsniff_version
from .redact import Redactor

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def _id(nbytes: int, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()[:nbytes]
    return (digest if any(digest) else b"\x01" * nbytes).hex()  # all-zero ids are invalid


def _nanos(t: float) -> str:
    return str(round(t * 1e6) * 1000)  # a float epoch holds microseconds, not nanoseconds


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    """OTLP KeyValue list; None and empty values are left out."""
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None and v != "" and v != []]


def _span(trace_id: str, span_id: str, parent: str, name: str, kind: int, start: float, end: float, attrs: dict[str, Any],
          events: Iterable[dict[str, Any]] = (), status: tuple[int, str] = (STATUS_UNSET, "")) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": _nanos(start), "endTimeUnixNano": _nanos(max(start, end)),
        "attributes": attributes(attrs), "events": list(events), "status": {"code": status[0]},
    }
    if parent:
        span["parentSpanId"] = parent
    if status[1]:
        span["status"]["message"] = status[1]
    return span


def _server(ex: Exchange) -> tuple[str, int | None]:
    host, _, port = ex.server.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else (ex.server, None)


def exchange_span(ex: Exchange, ns: NamespaceLifecycle, trace_id: str, parent: str, t_last: float) -> dict[str, Any]:
    """One HTTP exchange: a client span, its SSE events as span events."""
    d = ns.diagnosis
    is_stall = d.stall_point is not None and d.stall_point.xid == ex.xid
    host, port = _server(ex)
    failed = not ex.ok
    error_type = ex.error or (ex.outcome if ex.status is None else (str(ex.status) if ex.status >= 400 else ""))
    attrs = {
        "mcp.method.name": ",".join(ex.rpc_methods) or None,
        "mcp.session.id": ex.session_id or ex.new_session_id,
        "jsonrpc.request.id": str(ex.rpc_ids[0]) if ex.rpc_ids else None,
        "http.request.method": ex.method, "url.path": ex.target, "http.response.status_code": ex.status,
        "server.address": host or None, "server.port": port, "network.protocol.name": "http", "network.protocol.version": "1.1",
        "error.type": error_type if failed else None,
        "mcpsniff.namespace": ns.name, "mcpsniff.verdict": d.verdict, "mcpsniff.outcome": ex.outcome, "mcpsniff.xid": ex.xid,
        "mcpsniff.connection": ex.conn, "mcpsniff.generation": ex.generation, "mcpsniff.new_session_id": ex.new_session_id,
        "mcpsniff.error_detail": ex.error_detail, "mcpsniff.stall_point": True if is_stall else None,
        "mcpsniff.signature": d.signature if is_stall else None,
    }
    events = [{"timeUnixNano": _nanos(tick.t), "name": tick.rpc or "sse",
               "attributes": attributes({"mcp.method.name": tick.rpc, "mcpsniff.sse.id": tick.id, "mcpsniff.sse.event": tick.event, "mcpsniff.sse.retry": tick.retry})}
              for tick in ex.events]
    if is_stall:
        events.append({"timeUnixNano": _nanos(ex.t), "name": "mcpsniff.stall",
                       "attributes": attributes({"mcpsniff.signature": d.signature, "mcpsniff.explanation": d.explanation, "mcpsniff.advice": d.advice})})
    name = ",".join(ex.rpc_methods) or ("GET stream" if ex.method == "GET" else ex.method)
    end = ex.t_end if ex.t_end is not None else (ex.t_response if ex.t_response is not None else t_last)
    status = (STATUS_ERROR, error_type or "failed") if failed else (STATUS_UNSET, "")
    return _span(trace_id, _id(8, trace_id, ex.xid), parent, name, SPAN_KIND_CLIENT, ex.t, end, attrs, events, status)


def session_spans(ns: NamespaceLifecycle, gen: Generation | None, exchanges: list[Exchange], analysis: Analysis) -> list[dict[str, Any]]:
    """A trace: the session's root span and one child span per exchange."""
    d = ns.diagnosis
    sid = gen.session_id if gen else None
    trace_id = _id(16, *analysis.sources, ns.name, gen.index if gen else 0, sid, gen.t_start if gen else "")
    root_id = _id(8, trace_id, "session")
    children = [exchange_span(ex, ns, trace_id, root_id, analysis.t_last) for ex in exchanges]
    start = min(([gen.t_start] if gen else []) + [ex.t for ex in exchanges])
    end = max(int(s["endTimeUnixNano"]) for s in children) / 1e9 if children else start
    attrs = {"mcp.session.id": sid, "mcpsniff.namespace": ns.name, "mcpsniff.verdict": d.verdict, "mcpsniff.signature": d.signature,
             "mcpsniff.generation": gen.index if gen else 0, "mcpsniff.tool_count": gen.tool_count if gen else None, "mcpsniff.exchanges": len(exchanges)}
    name = f"MCP session {ns.name}" + (f" #{gen.index}" if gen else " (no session)")
    stalled_here = d.stall_point is not None and any(ex.xid == d.stall_point.xid for ex in exchanges)
    status = (STATUS_ERROR, f"{ns.name} stalled [{d.signature}]") if stalled_here else (STATUS_UNSET, "")
    return [_span(trace_id, root_id, "", name, SPAN_KIND_INTERNAL, start, end, attrs, status=status), *children]


def restart_span(window: RestartWindow, analysis: Analysis, index: int) -> dict[str, Any]:
    trace_id = _id(16, *analysis.sources, "restart", index, window.t_down)
    end = window.t_back if window.t_back is not None else analysis.t_last
    attrs = {"mcpsniff.refused": window.refused, "mcpsniff.resets": window.resets, "mcpsniff.back_seen": window.t_back is not None, "mcpsniff.evidence": window.evidence}
    return _span(trace_id, _id(8, trace_id, "restart"), "", "server restart", SPAN_KIND_INTERNAL, window.t_down, end, attrs)


def _resource(attrs: dict[str, Any], spans: list[dict[str, Any]]) -> dict[str, Any]:
    scope = {"name": "mcpsniff", "version": mcpsniff_version()}
    return {"resource": {"attributes": attributes(attrs)}, "scopeSpans": [{"scope": scope, "spans": spans}]}


def build_otlp(analysis: Analysis, config: Config | None = None, share: bool = False) -> dict[str, Any]:
    """The ExportTraceServiceRequest (OTLP/JSON) of a redacted copy of ``analysis``."""
    safe = Redactor(config, share).apply(analysis)
    resources = []
    for ns in safe.namespaces:
        by_gen: dict[int, list[Exchange]] = {}
        for ex in ns.exchanges:
            by_gen.setdefault(ex.generation, []).append(ex)
        gens = {g.index: g for g in ns.generations}
        spans = [span for index, exs in sorted(by_gen.items()) for span in session_spans(ns, gens.get(index), exs, safe)]
        for gen in ns.generations:  # a session with no exchange of its own still gets its trace
            if gen.index not in by_gen:
                spans += session_spans(ns, gen, [], safe)
        servers = sorted({ex.server for ex in ns.exchanges if ex.server})
        d = ns.diagnosis
        resources.append(_resource({"service.name": ns.name, "service.namespace": servers[0] if servers else None, "mcpsniff.namespace": ns.name,
                                    "mcpsniff.verdict": d.verdict, "mcpsniff.signature": d.signature}, spans))
    if safe.restarts:
        resources.append(_resource({"service.name": "mcpsniff", "mcpsniff.sources": safe.sources}, [restart_span(w, safe, i) for i, w in enumerate(safe.restarts)]))
    return {"resourceSpans": resources}


def write_otlp(analysis: Analysis, path: Path, config: Config | None = None, share: bool = False) -> int:
    """Write the OTLP/JSON file; returns the number of spans."""
    doc = build_otlp(analysis, config, share)
    try:
        # one request per line: the collector's otlpjsonfile receiver reads JSON lines
        path.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the OTLP file: {exc.strerror or exc}") from None
    return sum(len(s["spans"]) for r in doc["resourceSpans"] for s in r["scopeSpans"])
