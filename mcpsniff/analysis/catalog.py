"""Tool-catalog drift across a restart: the tools a namespace listed before and after its rebind.

Each session's (or client instance's) catalog is the union of its ``tools/list`` results
(pages of a paginated list are combined): tool names with a hash of each tool's input and
output schema (wire/jsonrpc.tool_catalog).  Findings (not verdicts):

- ``catalog-drift``: after the rebind tools are missing, added or changed (schema differs);
- ``called-unlisted-tool``: the client keeps calling a tool the new session did not list
  (it kept its old catalogue, or the server dropped the tool).
"""

from __future__ import annotations

from collections.abc import Callable

from .model import Exchange, Generation, NamespaceLifecycle

DRIFT = "catalog-drift"
UNLISTED = "called-unlisted-tool"


def session_catalogs(ns: NamespaceLifecycle) -> dict[int, dict[str, str]]:
    """Generation index -> {tool name: schema hash}, for every generation that listed tools."""
    out: dict[int, dict[str, str]] = {}
    for ex in ns.exchanges:
        if ex.tools and ex.generation:
            out.setdefault(ex.generation, {}).update(ex.tools)
    for gen in ns.generations:
        if gen.index in out:
            gen.catalog = sorted(out[gen.index].items())
    return out


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def drift_findings(ns: NamespaceLifecycle, trouble_t: float, rel: Callable[[float], str]) -> list[str]:
    """Findings comparing the last catalog before ``trouble_t`` with the first one after it."""
    catalogs = session_catalogs(ns)
    gens = sorted((g for g in ns.generations if g.index in catalogs), key=lambda g: g.t_start)
    before = [g for g in gens if g.t_start < trouble_t]
    after = [g for g in gens if g.t_start >= trouble_t]
    out: list[str] = []
    if before and after:
        old, new = catalogs[before[-1].index], catalogs[after[0].index]
        missing = sorted(set(old) - set(new))
        added = sorted(set(new) - set(old))
        changed = sorted(name for name in set(old) & set(new) if old[name] != new[name])
        if missing or added or changed:
            parts = [f"{len(missing)} missing ({_names(missing)})" if missing else "", f"{len(added)} added ({_names(added)})" if added else "", f"{len(changed)} changed ({_names(changed)})" if changed else ""]
            out.append(f"{DRIFT}: the catalog after the rebind ({len(new)} tools, session {after[0].index}) differs from the one before ({len(old)} tools): " + ", ".join(p for p in parts if p))
    unlisted: dict[str, list[Exchange]] = {}
    for ex in ns.exchanges:
        if ex.t < trouble_t or "tools/call" not in ex.rpc_methods or not ex.mcp_name:
            continue
        gen = _generation(ns, ex)
        if gen is None or gen.index not in catalogs:
            continue
        if ex.mcp_name not in catalogs[gen.index]:
            unlisted.setdefault(ex.mcp_name, []).append(ex)
    for name, calls in sorted(unlisted.items()):
        first = calls[0]
        out.append(f"{UNLISTED}: it called {name} {sum(c.count for c in calls)} time(s) (first at {rel(first.t)}), a tool its session did not list")
    return out


def _generation(ns: NamespaceLifecycle, ex: Exchange) -> Generation | None:
    return next((g for g in ns.generations if g.index == ex.generation), None)
