"""The HTML timeline report: one self-contained file that pinpoints the stall.

The summary and stall explanations are rendered server-side by jinja2 (autoescape
on) so they read without JavaScript; the timeline is drawn by inline JS from the
analysis embedded once as JSON.  Everything from the capture is untrusted: it is
redacted first (``Redactor``), escaped by jinja2 in markup, ``\\u``-escaped in the
JSON block (so ``</script>`` and ``<!--`` cannot end it) and only ever set with
``textContent`` by the script.  A strict Content-Security-Policy lets nothing but
our own script (pinned by its hash) run and forbids every network request.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..analysis.model import Analysis, Exchange, NamespaceLifecycle
from ..config import Config, load_config
from ..errors import BadInputError
from .redact import Redactor, paused_gc

CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _template_dir() -> Any:
    """Templates inside the installed package, else the checkout's templates/ folder."""
    packaged = resources.files("mcpsniff") / "templates"
    return packaged if packaged.is_dir() else CHECKOUT_TEMPLATES


def environment() -> Any:
    import jinja2

    root = _template_dir()

    def load(name: str) -> str | None:
        path = root / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def embed_json(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: no <, >, & or U+2028/9 left."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csp_hash(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii") + "'"


def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else round(t - t0, 6)


def _secs(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "–"
    return f"{'+' if signed else ''}{value:.2f} s"


class _Strings:
    """Interns what repeats (header pairs, whole header sets, short strings such as methods,
    targets and session ids) and collects the bodies, which the report keeps apart so the
    browser parses them only when they are shown or searched."""

    def __init__(self) -> None:
        self.table: list[list[str]] = []
        self.index: dict[tuple[str, str], int] = {}
        self.sets: list[list[int]] = []
        self.set_index: dict[Any, int] = {}
        self.strings: list[str] = []
        self.string_index: dict[str, int] = {}
        self.bodies: list[str] = []
        self.sv: Any = None  # set by report_data: redact, then intern

    def headers(self, headers: Any) -> int:
        """Index of the header set in ``sets`` (each a list of indexes into ``table``)."""
        try:
            found = self.set_index.get(headers)
        except TypeError:  # unhashable
            found, headers = None, tuple(tuple(p) for p in headers)
        if found is not None:
            return found
        out = []
        for pair in headers:
            key = (str(pair[0]), str(pair[1]))
            if key not in self.index:
                self.index[key] = len(self.table)
                self.table.append(list(key))
            out.append(self.index[key])
        self.set_index[headers] = len(self.sets)
        self.sets.append(out)
        return self.set_index[headers]

    def s(self, value: Any) -> int:
        """Index of a short string in ``strings``."""
        if type(value) is not str:
            value = "" if value is None else str(value)
        found = self.string_index.get(value)
        if found is None:
            found = self.string_index[value] = len(self.strings)
            self.strings.append(value)
        return found

    def redacted(self, redact: Any) -> Any:
        """``s(redact(value))`` memoised by the value as captured: one look-up per repeated string."""
        cache: dict[Any, int] = {}
        get, s = cache.get, self.s

        def sv(value: Any) -> int:
            try:
                found = get(value)
            except TypeError:  # unhashable (a list where a string belongs)
                return s(redact(value))
            if found is None:
                found = cache[value] = s(redact(value))
            return found

        return sv

    def body(self, value: Any) -> int:
        """Index of a body (or SSE data) in ``bodies``."""
        self.bodies.append(value if type(value) is str else str(value))
        return len(self.bodies) - 1


def _same(value: Any, key: str = "") -> Any:
    return value


def _exchange(ex: Exchange, ns_index: int, t0: float, strings: _Strings, redactor: Redactor | None = None) -> dict[str, Any]:
    """One exchange in the compact form the script reads (empty fields left out; strings as
    indexes into ``strings.strings``, bodies into ``strings.bodies``).

    With ``redactor`` every value from the capture is redacted on the way (as
    ``Redactor.apply`` would have redacted it); without, ``ex`` is already redacted.
    Written for speed (a big capture has a hundred thousand exchanges): values that
    are usually empty are tested before a call."""
    v = redactor.value if redactor is not None else _same
    hv = redactor.headers if redactor is not None else _same
    sv = strings.sv if strings.sv is not None else strings.s
    s, body = strings.s, strings.body
    t_response, t_end = ex.t_response, ex.t_end
    row: dict[str, Any] = {
        "i": v(ex.xid), "n": ns_index, "t": round(ex.t - t0, 6), "m": sv(ex.method), "rpc": s(",".join([str(v(m)) for m in ex.rpc_methods]) if ex.rpc_methods else ""),
        "s": ex.status, "r": None if t_response is None else round(t_response - t0, 6), "e": None if t_end is None else round(t_end - t0, 6),
        "o": sv(ex.outcome), "g": ex.generation, "c": sv(ex.conn), "u": sv(ex.target),
    }
    if ex.error:
        row["err"] = sv(ex.error)
    if ex.error_detail:
        row["ed"] = sv(ex.error_detail)
    if ex.session_id:
        row["sid"] = sv(ex.session_id)
    if ex.new_session_id:
        row["nsid"] = sv(ex.new_session_id)
    if ex.frame is not None:
        row["f"] = ex.frame
    if ex.tool_count:
        row["tc"] = ex.tool_count
    if ex.stream:
        row["st"] = 1
    if ex.rpc_ids:
        row["ids"] = v(ex.rpc_ids, "rpc_ids")
    if ex.protocol:
        row["pv"] = sv(ex.protocol)
    if ex.mcp_method:
        row["mm"] = sv(ex.mcp_method)
    if ex.mcp_name:
        row["mn"] = sv(ex.mcp_name)
    if ex.request_headers:
        row["qh"] = strings.headers(hv(ex.request_headers))
    if ex.response_headers:
        row["rh"] = strings.headers(hv(ex.response_headers))
    if ex.request_body:
        row["qb"] = body(v(ex.request_body))
    if ex.response_body:
        row["rb"] = body(v(ex.response_body))
    if ex.events:
        row["ev"] = [[round(ev.t - t0, 6), sv(ev.rpc), body(v(ev.data)) if ev.data else None, None if ev.id is None else v(ev.id), sv(ev.event), ev.retry]
                     for ev in ex.events]
    return row


def _window(t: float, restarts: list[dict[str, Any]]) -> tuple[float, float]:
    """The zoom that shows a stall point in its context (the restart before it, if any)."""
    down = restarts[0]["down"] if restarts else None
    a = max(down - 2, t - 25) if down is not None and down < t else t - 6
    return a, t + max(6.0, (t - a) * 0.6)


def stall_link(stall: dict[str, Any] | None, restarts: list[dict[str, Any]]) -> str:
    """The deep link (URL fragment) that selects a stall point and zooms to it."""
    if stall is None:
        return "#timeline"
    a, b = _window(stall["t"], restarts)
    what = f"x={quote(str(stall['xid']), safe='')}" if stall["xid"] is not None else f"u={quote(str(stall['c']), safe='')}"
    return f"#{what}&t={a:.3f}..{b:.3f}"


def _namespace(ns: NamespaceLifecycle, t0: float, index: dict[str, int]) -> dict[str, Any]:
    d = ns.diagnosis
    sp = d.stall_point
    div = d.divergence
    return {
        "name": ns.name, "verdict": d.verdict, "sig": d.signature, "expl": d.explanation, "advice": d.advice,
        "stall": None if sp is None else {"t": _rel(sp.t, t0), "xid": sp.xid, "c": sp.conn, "how": sp.attributed_by, "desc": sp.describe(t0), "result": sp.result},
        "gens": [{"i": g.index, "sid": g.session_id, "k": g.kind, "t": _rel(g.t_start, t0), "tl": _rel(g.t_last, t0), "tools": g.tool_count, "rev": g.revision}
                 for g in ns.generations],
        "rev": ns.revision, "client": ns.client.label, "basis": d.basis, "reb": _rel(d.t_rebound, t0), "back": _rel(d.t_server_back, t0),
        "div": None if div is None else {"t": _rel(div.t, t0), "sib": [index[s] for s in div.siblings if s in index], "text": div.text},
    }


def report_data(analysis: Analysis, exchanges_of: Analysis | None = None, redactor: Redactor | None = None) -> dict[str, Any]:
    """The JSON document embedded in the report (times relative to ``t0``).

    ``analysis`` is already redacted; the exchange rows come from ``exchanges_of``
    (default: ``analysis``) and are redacted with ``redactor`` as they are built."""
    t0 = analysis.t0
    strings = _Strings()
    strings.sv = strings.redacted(redactor.value if redactor is not None else _same)
    source = exchanges_of if exchanges_of is not None else analysis
    exchanges = [_exchange(ex, i, t0, strings, redactor) for i, ns in enumerate(source.namespaces) for ex in ns.exchanges]
    exchanges.sort(key=lambda row: row["t"])
    conns = {cid: [str(c.get("client", "")), str(c.get("server", ""))] for cid, c in analysis.connections.items()}
    unattributed = [{"t": _rel(u.get("t"), t0) if isinstance(u.get("t"), (int, float)) else None, "ev": str(u.get("event", "")), "c": str(u.get("conn", "")),
                     "client": str(u.get("client", "")), "server": str(u.get("server", "")), "f": u.get("frame") if isinstance(u.get("frame"), int) else None}
                    for u in analysis.unattributed]
    index = {ns.name: i for i, ns in enumerate(analysis.namespaces)}
    return {
        "v": 2, "t0": t0, "end": _rel(analysis.t_last, t0),
        "ns": [_namespace(ns, t0, index) for ns in analysis.namespaces],
        "restarts": [{"down": _rel(r.t_down, t0), "back": _rel(r.t_back, t0), "good": _rel(r.t_last_good, t0), "refused": r.refused, "resets": r.resets}
                     for r in analysis.restarts],
        "hp": strings.table, "hs": strings.sets, "sx": strings.strings, "ex": exchanges, "conns": conns, "un": [u for u in unattributed if u["t"] is not None],
        "bodies": strings.bodies,
    }


def embed_lines(texts: list[str]) -> str:
    """Strings as a JSON array with one element per line (``embed_json``'s escaping): a JSON
    string holds no raw newline, so the script splits it at ",\\n" and parses only the
    elements it shows or searches."""
    text = json.dumps(texts, ensure_ascii=True, separators=(",\n", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _summary(analysis: Analysis, data: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per namespace: what a reader wants before the timeline."""
    t0 = analysis.t0
    rows = []
    for i, ns in enumerate(analysis.namespaces):
        d = ns.diagnosis
        back = d.t_server_back
        sessions = [g.session_id[:8] if g.session_id else (f"i{g.index}" if g.kind == "instance" else "?") for g in ns.generations]  # i<n>: a 2026-07-28 client instance
        rows.append({
            "index": i, "name": ns.name, "verdict": d.verdict, "signature": d.signature, "revision": ns.revision, "probe": ns.probe,
            "generations": len(ns.generations), "sessions": " → ".join(sessions),
            "back": _secs(None if back is None else back - t0),
            "first_try": _secs(None if d.t_first_try_after_back is None or back is None else d.t_first_try_after_back - back),  # delay after the server was back, as in the text report
            "rebind": _secs(None if d.t_rebound is None or back is None else d.t_rebound - back, signed=False),
            "stall": d.stall_point.describe(t0) if d.stall_point else "",
            "display_filter": d.stall_point.display_filter if d.stall_point else "",
            "explanation": d.explanation, "advice": d.advice, "evidence": d.evidence, "findings": d.findings, "missing": d.missing,
            "gaps": ", ".join(f"{g:.1f}" for g in d.attempt_gaps), "schedule": d.schedule_match,
            "basis": d.basis, "inference": d.inference, "inference_detail": d.inference_detail,
            "client": ns.client.label + (f" {ns.client.version}" if ns.client.version else "") + (f" ({ns.client.host})" if ns.client.host else ""),
            "client_how": "; ".join(ns.client.recognised_by),
            "divergence": d.divergence.text if d.divergence is not None else "", "reports": d.known_reports, "next_capture": d.next_capture,
            "link": stall_link(data["ns"][i]["stall"], data["restarts"]),
            "siblings": [analysis.namespaces[j].name for j in (data["ns"][i]["div"] or {}).get("sib", [])],
            "attempts": [{"t": _secs(a.t - t0), "frame": a.frame, "label": a.label, "result": a.result, "how": "" if a.kind == "request" else a.attributed_by} for a in d.attempts[-12:]],
        })
    return rows


def render_html(analysis: Analysis, config: Config | None = None, share: bool = False) -> str:
    """The whole report as one string (secrets redacted; pseudonyms when ``share``)."""
    with paused_gc():
        return _render_html(analysis, config, share)


def assets(env: Any) -> tuple[str, Any, Any]:
    """The page's Content-Security-Policy, script and style (the script pinned by its hash)."""
    from markupsafe import Markup

    script = env.loader.get_source(env, "_report.js")[0]
    style = env.loader.get_source(env, "_report.css")[0]
    if "</script" in script.lower() or "</style" in style.lower():
        raise AssertionError("report assets must not contain closing tags")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src {_csp_hash(script)}; img-src data:; base-uri 'none'; form-action 'none'"
    return csp, Markup(script), Markup(style)


def prepare(analysis: Analysis, redactor: Redactor) -> dict[str, Any]:
    """What the templates show of one analysis, redacted: the embedded data and bodies (escaped
    JSON), the summary rows, restarts and verdict counts, and ``safe``, the redacted analysis."""
    from markupsafe import Markup

    safe = redactor.apply(analysis, exchanges=False)  # the exchanges are redacted row by row in report_data
    restarts = [{"down": _secs(r.t_down - safe.t0), "back": _secs(None if r.t_back is None else r.t_back - safe.t0),
                 "downtime": _secs(None if r.t_back is None else r.t_back - r.t_down, signed=False), "refused": r.refused, "resets": r.resets, "evidence": r.evidence}
                for r in safe.restarts]
    data = report_data(safe, analysis, redactor)
    bodies = data.pop("bodies")
    summary = _summary(safe, data)
    verdicts: dict[str, int] = {}
    for row in summary:
        verdicts[row["verdict"]] = verdicts.get(row["verdict"], 0) + 1
    return {
        "safe": safe, "data": Markup(embed_json(data)), "bodies": Markup(embed_lines(bodies)), "summary": summary, "restarts": restarts, "verdicts": verdicts,
        "stalled": [row for row in summary if row["verdict"] == "stalled"], "exchanges": len(data["ex"]),
        "started": datetime.fromtimestamp(safe.t0, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC", "duration": _secs(safe.t_last - safe.t0, signed=False),
    }


def _render_html(analysis: Analysis, config: Config | None, share: bool) -> str:
    env = environment()
    csp, script, style = assets(env)
    page = prepare(analysis, Redactor(config, share))
    safe = page["safe"]
    return env.get_template("report.html").render(
        csp=csp, script=script, style=style, data=page["data"], bodies=page["bodies"], share=share,
        sources=safe.sources, started=page["started"], duration=page["duration"], summary=page["summary"], restarts=page["restarts"], verdicts=page["verdicts"],
        stalled=page["stalled"], warnings=safe.warnings, stats=safe.stats, conformance=safe.conformance, exchanges=page["exchanges"],
    )


def write_html(analysis: Analysis, path: Path, config_path: Path | None = None, share: bool = False, config: Config | None = None) -> None:
    """Render the report and write it to ``path`` (BadInputError if it cannot be written)."""
    html = render_html(analysis, config if config is not None else load_config(config_path), share=share)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
