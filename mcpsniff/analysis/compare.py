"""Two analyses of the same setup side by side (``mcpsniff diff BEFORE AFTER``), per namespace.

E.g. before and after a client or server upgrade, or two restarts. AFTER is *worse* for a
namespace when its verdict went from rebound (or not-affected) to stalled or unknown, or
when it rebound more than ``slower_than`` seconds later after the server came back.
Pure: two Analysis objects in, a Comparison out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import session_catalogs
from .model import NOT_AFFECTED, REBOUND, STALLED, UNKNOWN, Analysis, NamespaceLifecycle

GOOD = (REBOUND, NOT_AFFECTED)


@dataclass
class Side:
    """One namespace in one capture (None fields: not in that capture)."""

    verdict: str = "missing"
    signature: str = ""
    basis: str = ""
    revision: str = ""
    client: str = ""
    rebind_seconds: float | None = None  # first successful call in the new session, after the server came back
    schedule: str = ""  # the retry schedule its attempts followed
    attempts: int = 0
    stall: str = ""
    tools: list[str] = field(default_factory=list)  # the tools its last session listed


@dataclass
class Row:
    namespace: str
    before: Side
    after: Side
    worse: list[str] = field(default_factory=list)  # why AFTER is worse, if it is
    better: list[str] = field(default_factory=list)
    tools_missing: list[str] = field(default_factory=list)  # listed before, not after
    tools_added: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    before: list[str]  # sources
    after: list[str]
    rows: list[Row]
    slower_than: float

    @property
    def worse(self) -> list[Row]:
        return [r for r in self.rows if r.worse]


def side(ns: NamespaceLifecycle, analysis: Analysis) -> Side:
    d = ns.diagnosis
    catalogs = session_catalogs(ns)
    last = max(catalogs, default=None)
    rebind = None if d.t_rebound is None or d.t_server_back is None else max(0.0, d.t_rebound - d.t_server_back)
    client = ns.client.label + (f" {ns.client.version}" if ns.client.version else "") + (f" ({ns.client.host})" if ns.client.host else "")
    return Side(
        verdict=d.verdict,
        signature=d.signature,
        basis=d.basis + (f" ({d.inference})" if d.inference else ""),
        revision=ns.revision,
        client=client,
        rebind_seconds=rebind,
        schedule=d.schedule_match,
        attempts=len(d.attempts),
        stall=d.stall_point.describe(analysis.t0) if d.stall_point else "",
        tools=sorted(catalogs[last]) if last is not None else [],
    )


def compare(before: Analysis, after: Analysis, slower_than: float) -> Comparison:
    old = {ns.name: side(ns, before) for ns in before.namespaces}
    new = {ns.name: side(ns, after) for ns in after.namespaces}
    rows = []
    for name in list(dict.fromkeys([*old, *new])):
        b, a = old.get(name, Side()), new.get(name, Side())
        row = Row(name, b, a)
        if b.verdict in GOOD and a.verdict in (STALLED, UNKNOWN):
            row.worse.append(f"{b.verdict} before, {a.verdict} after" + (f" [{a.signature}]" if a.signature else ""))
        elif b.verdict in (STALLED, UNKNOWN) and a.verdict in GOOD:
            row.better.append(f"{b.verdict} before, {a.verdict} after")
        if b.verdict != "missing" and a.verdict == "missing":
            row.worse.append("not in the AFTER capture")
        if b.rebind_seconds is not None and a.rebind_seconds is not None:
            delta = a.rebind_seconds - b.rebind_seconds
            if delta > slower_than:
                row.worse.append(f"rebound {delta:.2f} s slower ({b.rebind_seconds:.2f} s -> {a.rebind_seconds:.2f} s after the server came back; allowed: {slower_than:g} s)")
            elif delta < -slower_than:
                row.better.append(f"rebound {-delta:.2f} s faster")
        if b.tools and a.tools:
            row.tools_missing = sorted(set(b.tools) - set(a.tools))
            row.tools_added = sorted(set(a.tools) - set(b.tools))
        rows.append(row)
    return Comparison(before.sources, after.sources, rows, slower_than)
