"""HAR 1.2 files (browser devtools, mitmproxy ``save.har``, ``mcpsniff export --har``) -> records.

HAR keeps whole entries, not connections: each distinct ``connection`` value is one
connection (an entry without it gets its own). SSE events come from a ``_sseEvents``
list when present (``{"time": epoch seconds or ISO 8601, "data", "event", "id",
"retry"}``; Chrome's ``eventName``/``eventId`` spellings are accepted), otherwise from
the ``text/event-stream`` body, all at the entry's end time. A failed entry (status 0
with ``_error``) becomes an End record; a refused connection also a ConnEvent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import records as R
from ..errors import BadInputError
from ..wire.sse import SseDecoder

MAX_BODY = 65536  # characters of each body kept (the config's default)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# what a malformed entry makes the record building raise (times out of range: OverflowError, OSError)
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, OSError, RecursionError, BadInputError)


def read_har(path: Path) -> Iterator[R.Record]:
    """Records of a HAR file; BadInputError if it is not HAR at all."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
        if _SURROGATE_ESCAPE.search(raw):
            doc = R.scrub(doc)  # "\ud800" alone: no UTF-8 output could hold it
    except RecursionError:
        raise BadInputError(f"{path}: not a HAR file (JSON nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number of more than 4300 digits
        raise BadInputError(f"{path}: not a HAR file (invalid JSON: {R.text(str(exc))[:200]})") from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) and isinstance(doc.get("log"), dict) else None
    if not isinstance(entries, list):
        raise BadInputError(f"{path}: not a HAR file (no log.entries list)")
    yield R.Meta(source="har", origin=Path(path).name)
    ids = R.Ids()
    conns: dict[str, str] = {}
    out: list[R.Record] = []
    for n, entry in enumerate(entries, start=1):
        try:
            got = [R.validate(r) for r in _entry_records(entry, ids, conns)]  # all of an entry or none of it
        except _MALFORMED as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else R.text(repr(exc) if not isinstance(exc, BadInputError) else str(exc))[:200]
            out.append(R.CaptureWarning(t=None, message=f"{Path(path).name}: entry {n} skipped (malformed: {reason})"))
            continue
        out.extend(got)
    out.sort(key=R.time_key)  # stable: an entry's records keep their order
    yield from out


def _time(value: Any) -> float:
    """Epoch seconds from an ISO 8601 string or a number."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _headers(items: Any) -> R.Headers:
    return tuple((str(h["name"]), str(h["value"])) for h in items or ())


def _decoded(content: dict[str, Any]) -> str:
    text = str(content.get("text") or "")
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            pass
    return text


def _body(content: dict[str, Any]) -> tuple[str, int, bool]:
    text = _decoded(content)
    return text[:MAX_BODY], len(text.encode("utf-8", errors="replace")), len(text) > MAX_BODY


def _ms(value: Any) -> float:
    return float(value) / 1000.0 if isinstance(value, (int, float)) and value > 0 else 0.0


def _entry_records(entry: dict[str, Any], ids: R.Ids, conns: dict[str, str]) -> Iterator[R.Record]:
    req, resp = entry["request"], entry.get("response") or {}
    t = _time(entry["startedDateTime"])
    url = urlsplit(req["url"])
    port = url.port or (443 if url.scheme == "https" else 80)
    host = entry.get("serverIPAddress") or url.hostname or ""
    server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    key = str(entry.get("connection") or "")
    cid = conns.get(key) if key else None
    if cid is None:
        cid = ids.conn()
        if key:
            conns[key] = cid
    xid = ids.xid(cid)
    post = req.get("postData") or {}
    body, size, cut = _body(post)
    target = url.path + (f"?{url.query}" if url.query else "")
    yield R.Request(t=t, conn=cid, xid=xid, method=req["method"], target=target or "/", headers=_headers(req.get("headers")), body=body, body_size=size, truncated=cut, server=server)

    timings = entry.get("timings") or {}
    t_end = t + _ms(entry.get("time"))
    t_resp = min(t + sum(_ms(timings.get(k)) for k in ("blocked", "dns", "connect", "send", "wait")), t_end)
    status = int(resp.get("status") or 0)
    if status == 0:
        error = str(resp.get("_error") or entry.get("_error") or "no response")
        low = error.lower()
        refused = "refused" in low or "connect call failed" in low
        if refused:
            yield R.ConnEvent(t=t, conn=cid, event="refused", server=server, by="server", detail=error)
        outcome = R.REFUSED if refused else R.RESET if "reset" in low else R.ERROR
        yield R.End(t=t_end, xid=xid, outcome=outcome, detail=error)
        return
    headers = _headers(resp.get("headers"))
    content = resp.get("content") or {}
    mime = str(content.get("mimeType") or R.header(headers, "content-type") or "")
    if mime.lower().startswith("text/event-stream"):
        yield R.Response(t=t_resp, xid=xid, status=status, reason=str(resp.get("statusText") or ""), headers=headers, stream=True)
        yield from _sse_records(entry.get("_sseEvents"), content, xid, t_end)
    else:
        body, size, cut = _body(content)
        yield R.Response(t=t_resp, xid=xid, status=status, reason=str(resp.get("statusText") or ""), headers=headers, body=body, body_size=size, truncated=cut, t_end=t_end)
    yield R.End(t=t_end, xid=xid, outcome=R.COMPLETE)


def _sse_records(events: Any, content: dict[str, Any], xid: str, t_end: float) -> Iterator[R.Record]:
    if isinstance(events, list):
        for ev in events:
            retry = ev.get("retry")
            ev_id = ev.get("id", ev.get("eventId"))
            yield R.SseEvent(
                t=_time(ev["time"]) if "time" in ev else t_end,
                xid=xid,
                data=str(ev.get("data") or ""),
                event=str(ev.get("event") or ev.get("eventName") or ""),
                id=None if ev_id is None else str(ev_id),
                retry=int(retry) if retry is not None else None,
            )
        return
    for event in SseDecoder().feed(_decoded(content), t_end):
        yield R.SseEvent(t=t_end, xid=xid, data=event.data, event=event.event, id=event.id, retry=event.retry)
