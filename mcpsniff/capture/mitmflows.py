"""mitmproxy flow files (``mitmdump -w flows.mitm``) -> mcpsniff records.

A flow file keeps whole flows, not the moments SSE events passed: every event of a
stored ``text/event-stream`` body gets the response's end time. Records are sorted by
time so the analysis sees requests, responses and connection facts in order.
A flow file written while streaming (the mcpsniff addon, ``stream_large_bodies``)
holds no streamed body: the response is then marked as a stream without events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mitmproxy import exceptions, http, io

from .. import records as R
from ..errors import BadInputError
from ..wire.sse import SseDecoder

MAX_BODY = 65536  # characters of each body kept (the config's default)


def _addr(address: Any) -> str:
    if not address:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _headers(headers: http.Headers) -> R.Headers:
    return tuple((str(k), str(v)) for k, v in headers.items(multi=True))


def _body(message: http.Message) -> tuple[str, int, bool]:
    raw = message.get_content(strict=False) or b""
    text = raw.decode("utf-8", errors="replace")
    return text[:MAX_BODY], len(raw), len(text) > MAX_BODY


def _outcome(message: str) -> str:
    low = message.lower()
    if "connect call failed" in low or "refused" in low:
        return R.REFUSED
    if "reset" in low:
        return R.RESET
    if "disconnect" in low or "closed" in low or "incomplete" in low:
        return R.CLOSED
    return R.ERROR


def _time_key(rec: R.Record) -> float:
    t = getattr(rec, "t", None)
    return float("inf") if t is None else t  # untimed warnings last


def read_flows(path: Path) -> Iterator[R.Record]:
    """Records of a mitmproxy flow file; BadInputError if it cannot be read at all."""
    out: list[R.Record] = []
    try:
        with Path(path).open("rb") as fh:
            out = list(_records(io.FlowReader(fh).stream(), path))
    except OSError as exc:
        raise BadInputError(f"{path}: {exc.strerror or exc}") from None
    yield R.Meta(source="mitm-flows", origin=Path(path).name)
    out.sort(key=_time_key)  # stable: a flow's records keep their order
    yield from out


def _records(flows: Iterable[Any], path: Path) -> Iterator[R.Record]:
    ids = R.Ids()
    conns: dict[str, str] = {}  # mitmproxy client connection id -> our conn id
    count = 0
    try:
        for flow in flows:
            count += 1
            if not isinstance(flow, http.HTTPFlow):
                continue
            client = flow.client_conn
            cid = conns.get(client.id)
            if cid is None:
                cid = conns[client.id] = ids.conn()
                server = _addr(flow.server_conn.address)
                yield R.ConnEvent(t=client.timestamp_start, conn=cid, event="opened", client=_addr(client.peername), server=server, detail="client connected to proxy")
                if client.timestamp_end:
                    yield R.ConnEvent(t=client.timestamp_end, conn=cid, event="closed", client=_addr(client.peername), server=server, detail="client connection closed")
            yield from _flow_records(flow, cid, ids.xid(cid))
    except exceptions.FlowReadException as exc:
        if count == 0:
            raise BadInputError(f"{path}: not a readable mitmproxy flow file ({exc})") from None
        yield R.CaptureWarning(t=None, message=f"{Path(path).name}: flow file ends in a damaged flow after {count} flow(s) ({exc})")


def _flow_records(flow: http.HTTPFlow, cid: str, xid: str) -> Iterator[R.Record]:
    req, resp = flow.request, flow.response
    body, size, cut = _body(req)
    server = _addr(flow.server_conn.address) or f"{req.host}:{req.port}"
    yield R.Request(t=req.timestamp_start, conn=cid, xid=xid, method=req.method, target=req.path, headers=_headers(req.headers), body=body, body_size=size, truncated=cut, server=server)
    if resp is not None:
        t_end = resp.timestamp_end or resp.timestamp_start
        if resp.headers.get("content-type", "").lower().startswith("text/event-stream"):
            yield R.Response(t=resp.timestamp_start, xid=xid, status=resp.status_code, reason=resp.reason, headers=_headers(resp.headers), stream=True)
            content = resp.get_content(strict=False)
            if content is None:
                yield R.CaptureWarning(t=resp.timestamp_start, conn=cid, message=f"{xid}: the flow file holds no body for this event stream (it was streamed through the proxy)")
            else:
                for event in SseDecoder().feed(content, t_end):
                    yield R.SseEvent(t=t_end, xid=xid, data=event.data, event=event.event, id=event.id, retry=event.retry)
        else:
            body, size, cut = _body(resp)
            yield R.Response(t=resp.timestamp_start, xid=xid, status=resp.status_code, reason=resp.reason, headers=_headers(resp.headers), body=body, body_size=size, truncated=cut, t_end=t_end)
    if flow.error is not None:
        outcome = _outcome(flow.error.msg)
        if outcome == R.REFUSED:
            yield R.ConnEvent(t=flow.error.timestamp, conn=cid, event="refused", server=server, by="server", detail=f"upstream: {flow.error.msg}")
        yield R.End(t=flow.error.timestamp, xid=xid, outcome=outcome, detail=flow.error.msg)
    elif resp is not None:
        yield R.End(t=resp.timestamp_end or resp.timestamp_start, xid=xid, outcome=R.COMPLETE)
    else:
        yield R.End(t=req.timestamp_end or req.timestamp_start, xid=xid, outcome=R.OPEN_AT_END, detail="the flow file holds no response")
