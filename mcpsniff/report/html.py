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

from ..analysis.model import Analysis, Exchange, NamespaceLifecycle
from ..config import Config, load_config
from ..errors import BadInputError
from .redact import Redactor

CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _template_dir() -> Any:
    """Templates inside the installed package, else the checkout's templates/ folder."""
    packaged = resources.files("mcpsniff") / "templates"
    return packaged if packaged.is_dir() else CHECKOUT_TEMPLATES


def _environment() -> Any:
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
    """Interns header pairs: the same dozen headers repeat on every exchange."""

    def __init__(self) -> None:
        self.table: list[list[str]] = []
        self.index: dict[tuple[str, str], int] = {}

    def headers(self, headers: Any) -> list[int]:
        out = []
        for pair in headers:
            key = (str(pair[0]), str(pair[1]))
            if key not in self.index:
                self.index[key] = len(self.table)
                self.table.append(list(key))
            out.append(self.index[key])
        return out


def _exchange(ex: Exchange, ns_index: int, t0: float, strings: _Strings) -> dict[str, Any]:
    """One exchange in the compact form the script reads (empty fields left out)."""
    row: dict[str, Any] = {
        "i": ex.xid, "n": ns_index, "t": _rel(ex.t, t0), "m": ex.method, "rpc": ",".join(ex.rpc_methods),
        "s": ex.status, "r": _rel(ex.t_response, t0), "e": _rel(ex.t_end, t0), "o": ex.outcome, "g": ex.generation,
        "c": ex.conn, "u": ex.target,
    }
    optional = {
        "err": ex.error, "ed": ex.error_detail, "sid": ex.session_id, "nsid": ex.new_session_id, "f": ex.frame,
        "tc": ex.tool_count, "st": 1 if ex.stream else 0, "ids": ex.rpc_ids,
        "pv": ex.protocol, "mm": ex.mcp_method, "mn": ex.mcp_name,
        "qh": strings.headers(ex.request_headers), "rh": strings.headers(ex.response_headers),
        "qb": ex.request_body, "rb": ex.response_body,
        "ev": [[_rel(ev.t, t0), ev.rpc, ev.data, ev.id, ev.event, ev.retry] for ev in ex.events],
    }
    row.update({k: v for k, v in optional.items() if v not in (None, "", 0, [])})
    return row


def _namespace(ns: NamespaceLifecycle, t0: float) -> dict[str, Any]:
    d = ns.diagnosis
    sp = d.stall_point
    return {
        "name": ns.name, "verdict": d.verdict, "sig": d.signature, "expl": d.explanation, "advice": d.advice,
        "stall": None if sp is None else {"t": _rel(sp.t, t0), "xid": sp.xid, "c": sp.conn, "how": sp.attributed_by, "desc": sp.describe(t0), "result": sp.result},
        "gens": [{"i": g.index, "sid": g.session_id, "k": g.kind, "t": _rel(g.t_start, t0), "tl": _rel(g.t_last, t0), "tools": g.tool_count} for g in ns.generations],
        "rev": ns.revision,
    }


def report_data(analysis: Analysis) -> dict[str, Any]:
    """The JSON document embedded in the report (times relative to ``t0``)."""
    t0 = analysis.t0
    strings = _Strings()
    exchanges = [_exchange(ex, i, t0, strings) for i, ns in enumerate(analysis.namespaces) for ex in ns.exchanges]
    exchanges.sort(key=lambda row: row["t"])
    conns = {cid: [str(c.get("client", "")), str(c.get("server", ""))] for cid, c in analysis.connections.items()}
    unattributed = [{"t": _rel(u.get("t"), t0) if isinstance(u.get("t"), (int, float)) else None, "ev": str(u.get("event", "")), "c": str(u.get("conn", "")),
                     "client": str(u.get("client", "")), "server": str(u.get("server", "")), "f": u.get("frame") if isinstance(u.get("frame"), int) else None}
                    for u in analysis.unattributed]
    return {
        "v": 1, "t0": t0, "end": _rel(analysis.t_last, t0),
        "ns": [_namespace(ns, t0) for ns in analysis.namespaces],
        "restarts": [{"down": _rel(r.t_down, t0), "back": _rel(r.t_back, t0), "good": _rel(r.t_last_good, t0), "refused": r.refused, "resets": r.resets}
                     for r in analysis.restarts],
        "hp": strings.table, "ex": exchanges, "conns": conns, "un": [u for u in unattributed if u["t"] is not None],
    }


def _summary(analysis: Analysis) -> list[dict[str, Any]]:
    """One table row per namespace: what a reader wants before the timeline."""
    t0 = analysis.t0
    rows = []
    for i, ns in enumerate(analysis.namespaces):
        d = ns.diagnosis
        back = d.t_server_back
        sessions = [(g.session_id or "?")[:8] for g in ns.generations]
        rows.append({
            "index": i, "name": ns.name, "verdict": d.verdict, "signature": d.signature, "revision": ns.revision, "probe": ns.probe,
            "generations": len(ns.generations), "sessions": " → ".join(sessions),
            "back": _secs(None if back is None else back - t0),
            "first_try": _secs(None if d.t_first_try_after_back is None or back is None else d.t_first_try_after_back - back),  # delay after the server was back, as in the text report
            "rebind": _secs(None if d.t_rebound is None or back is None else d.t_rebound - back, signed=False),
            "stall": d.stall_point.describe(t0) if d.stall_point else "",
            "explanation": d.explanation, "advice": d.advice, "evidence": d.evidence, "findings": d.findings, "missing": d.missing,
            "gaps": ", ".join(f"{g:.1f}" for g in d.attempt_gaps), "schedule": d.schedule_match,
            "basis": d.basis, "inference": d.inference, "inference_detail": d.inference_detail,
            "client": ns.client.label + (f" {ns.client.version}" if ns.client.version else "") + (f" ({ns.client.host})" if ns.client.host else ""),
            "client_how": "; ".join(ns.client.recognised_by),
            "divergence": d.divergence.text if d.divergence is not None else "", "reports": d.known_reports, "next_capture": d.next_capture,
            "attempts": [{"t": _secs(a.t - t0), "frame": a.frame, "label": a.label, "result": a.result, "how": "" if a.kind == "request" else a.attributed_by} for a in d.attempts[-12:]],
        })
    return rows


def render_html(analysis: Analysis, config: Config | None = None, share: bool = False) -> str:
    """The whole report as one string (secrets redacted; pseudonyms when ``share``)."""
    from markupsafe import Markup

    safe = Redactor(config, share).apply(analysis)
    env = _environment()
    script = env.loader.get_source(env, "_report.js")[0]
    style = env.loader.get_source(env, "_report.css")[0]
    if "</script" in script.lower() or "</style" in style.lower():
        raise AssertionError("report assets must not contain closing tags")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src {_csp_hash(script)}; img-src data:; base-uri 'none'; form-action 'none'"
    restarts = [{"down": _secs(r.t_down - safe.t0), "back": _secs(None if r.t_back is None else r.t_back - safe.t0),
                 "downtime": _secs(None if r.t_back is None else r.t_back - r.t_down, signed=False), "refused": r.refused, "resets": r.resets, "evidence": r.evidence}
                for r in safe.restarts]
    summary = _summary(safe)
    return env.get_template("report.html").render(
        csp=csp, script=Markup(script), style=Markup(style), data=Markup(embed_json(report_data(safe))), share=share,
        sources=safe.sources, started=datetime.fromtimestamp(safe.t0, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
        duration=_secs(safe.t_last - safe.t0, signed=False), summary=summary, restarts=restarts,
        stalled=[row for row in summary if row["verdict"] == "stalled"], warnings=safe.warnings, stats=safe.stats,
        conformance=safe.conformance,
    )


def write_html(analysis: Analysis, path: Path, config_path: Path | None = None, share: bool = False, config: Config | None = None) -> None:
    """Render the report and write it to ``path`` (BadInputError if it cannot be written)."""
    html = render_html(analysis, config if config is not None else load_config(config_path), share=share)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
