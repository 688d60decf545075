"""What ``mcpsniff watch`` shows: each namespace's state, from a snapshot's verdicts, as lines or a live table.

The states are read off the diagnosis ``diagnose.snapshot`` gives (no verdict logic here):

- connected:  not affected by a restart (so far): its session id and protocol revision;
- disrupted:  judged against a restart of its server, no attempt of its own seen yet;
- retrying:   attempts to get back, attempt n (of the schedule recognised, when one is);
- rebound:    the diagnosis proves it back: how long it took;
- stalled:    the diagnosis says stalled: signature, basis, stall point.

A namespace whose verdict is still ``unknown`` but that no restart affects (a call in
flight at the snapshot's instant looks like trouble for a moment) stays connected.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field, replace
from typing import IO, Any

from ..analysis.model import NOT_AFFECTED, REBOUND, STALLED, Analysis, NamespaceLifecycle, RestartWindow

CONNECTED, DISRUPTED, RETRYING = "connected", "disrupted", "retrying"
STATES = (CONNECTED, DISRUPTED, RETRYING, REBOUND, STALLED)
STYLES = {CONNECTED: "cyan", DISRUPTED: "yellow", RETRYING: "yellow", REBOUND: "green", STALLED: "bold red"}
REVISION_SHORT = {"2025-era sessions": "2025 sessions", "2026-07-28 sessionless": "2026-07-28 sessionless", "negotiated fallback": "fallback to 2025", "both revisions": "both revisions"}
_STEP = re.compile(r"step (\d+) of (\d+)")
_FOLLOWS = re.compile(r"attempts follow (.+) \(step \d+ of \d+\)")


@dataclass(frozen=True)
class NsState:
    """One namespace's state at one snapshot (plain data: the snapshot's objects are reused by the next)."""

    name: str
    state: str
    detail: str
    t: float  # capture time of the snapshot (its last record)
    window: float | None = None  # t_down of the restart it is judged against (None: none)
    session: str = ""
    revision: str = ""
    attempt: int = 0
    of: int = 0  # steps of the recognised schedule (0: none recognised)
    schedule: str = ""
    signature: str = ""
    basis: str = ""
    inference: str = ""
    stall_point: str = ""
    took: float | None = None  # rebound: seconds from the disruption to the first working call
    after_back: float | None = None  # rebound: seconds from the server's return to it
    verdict: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        """What changes make a new line: the state, and the session, attempt or signature within it."""
        if self.state in (CONNECTED, REBOUND):
            return (self.state, self.session)
        if self.state == RETRYING:
            return (self.state, self.attempt)
        if self.state == STALLED:
            return (self.state, self.signature)
        return (self.state, self.window)


def _window(ns: NamespaceLifecycle, windows: list[RestartWindow]) -> RestartWindow | None:
    """The restart the namespace is judged against: the last one after its first exchange on its server
    that the server came back from (else the last one), as the diagnosis picks it."""
    if not ns.exchanges or not windows:
        return None
    first = ns.exchanges[0].t
    servers = {ex.server for ex in ns.exchanges[-200:]} | {ns.exchanges[0].server}
    affecting = [w for w in windows if w.t_down > first and (not w.server or w.server in servers)]
    if not affecting:
        return None
    return ([w for w in affecting if w.t_back is not None] or affecting)[-1]


def _session(ns: NamespaceLifecycle) -> tuple[str, str]:
    """(session id of its latest session, revision in words) of a namespace."""
    sid = next((g.session_id for g in reversed(ns.generations) if g.session_id), "")
    protocol = next((ex.protocol for ex in reversed(ns.exchanges[-50:]) if ex.protocol), "")
    revision = REVISION_SHORT.get(ns.revision, ns.revision)
    if protocol and protocol not in revision:
        revision = f"{protocol}, {revision}" if revision else protocol
    return sid, revision


def _rel(t: float | None, t0: float) -> str:
    return "?" if t is None else f"+{t - t0:.2f}s"


def states_of(analysis: Analysis) -> dict[str, NsState]:
    """Every namespace's state in ``analysis`` (a snapshot's or the final one)."""
    t0, now = analysis.t0, analysis.t_last
    out = {}
    for ns in analysis.namespaces:
        d = ns.diagnosis
        w = _window(ns, analysis.restarts)
        sid, revision = _session(ns)
        common: dict[str, Any] = {"t": now, "window": w.t_down if w else None, "session": sid, "revision": revision, "verdict": d.verdict, "signature": d.signature, "basis": d.basis, "inference": d.inference}
        short = sid[:12] + ("…" if len(sid) > 12 else "")
        if d.verdict == STALLED:
            point = d.stall_point.describe(t0) if d.stall_point else ""
            how = d.basis + (f": {d.inference}" if d.inference else "")
            detail = f"{d.signature} ({how})" + (f"; stall point {point}" if point else "")
            out[ns.name] = NsState(ns.name, STALLED, detail, stall_point=point, **common)
        elif d.verdict == REBOUND and w is not None:
            took = d.t_rebound - w.t_down if d.t_rebound is not None else None
            after = d.t_rebound - d.t_server_back if d.t_rebound is not None and d.t_server_back is not None else None
            detail = f"{d.signature}" + (f", session {short}" if sid else "")
            if after is not None:
                detail += f", {after:.2f}s after the server came back"
            if took is not None:
                detail += f" ({took:.2f}s after the disruption at {_rel(w.t_down, t0)})"
            out[ns.name] = NsState(ns.name, REBOUND, detail, took=took, after_back=after, **common)
        elif d.verdict in (NOT_AFFECTED, REBOUND) or w is None:
            detail = (f"session {short}" if sid else "no session id") + (f", {revision}" if revision else "") + (f", {ns.client.family}" if ns.client.family != "unrecognised" else "")
            out[ns.name] = NsState(ns.name, CONNECTED, detail, **common)
        else:
            steps = _STEP.search(d.missing) if d.missing.startswith("still retrying") else None
            fitted = [a for a in d.attempts if _STEP.search(a.attributed_by)]
            last_step = _STEP.search(fitted[-1].attributed_by) if fitted else None
            step = steps or last_step
            attempt = max(int(step.group(1)) if step else 0, len(d.attempts))
            down = f"server {w.server or ''} down since {_rel(w.t_down, t0)}".replace("  ", " ") + (f", back at {_rel(w.t_back, t0)}" if w.t_back is not None else "")
            hint = f"; looks like {d.signature}" if d.signature else ""
            if attempt:
                named = _FOLLOWS.search(d.missing)
                schedule = named.group(1) if named else d.schedule_match
                of = int(step.group(2)) if step else 0
                last = d.attempts[-1] if d.attempts else None
                detail = f"attempt {attempt}" + (f" of {of}" if of and attempt <= of else "") + (f" ({schedule})" if schedule else "")
                if last is not None:
                    detail += f"; last {last.label} -> {last.result} at {_rel(last.t, t0)}"
                out[ns.name] = NsState(ns.name, RETRYING, detail + f"; {down}" + hint, attempt=attempt, of=of, schedule=schedule, **common)
            else:
                out[ns.name] = NsState(ns.name, DISRUPTED, down + hint, **common)
    return out


def steady(prev: NsState | None, new: NsState) -> NsState:
    """``new``, unless it only steps back within the same restart (refitting the attempts can
    lower their count for a moment): retrying never returns to disrupted, its count never
    drops; a namespace shown rebound whose verdict is open again (a call hangs) is disrupted,
    not retrying."""
    if prev is None or prev.window != new.window:
        return new
    if prev.state == REBOUND and new.state == RETRYING:
        hint = f"; looks like {new.signature}" if new.signature else ""
        return replace(new, state=DISRUPTED, detail=f"was rebound, its verdict is open again{hint}")
    if prev.state != RETRYING:
        return new
    if new.state == DISRUPTED or (new.state == RETRYING and new.attempt < prev.attempt):
        return prev
    return new


def state_line(s: NsState, t0: float, width: int = 11) -> str:
    """One log line: wall-clock time of the capture, time since its start, namespace, state, detail."""
    clock = time.strftime("%H:%M:%S", time.localtime(s.t)) + f".{int((s.t % 1) * 1000):03d}"
    return f"{clock} {_rel(s.t, t0):>9} {s.name:<{width}} {s.state:<9} {s.detail}"


class LineView:
    """Without a terminal: one line per state change (for logs)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.width = 11

    def start(self, title: str) -> None:
        pass

    def changed(self, states: list[NsState], t0: float) -> None:
        for s in states:
            self.width = max(self.width, len(s.name))
            self.stream.write(state_line(s, t0, self.width) + "\n")
        self.stream.flush()

    def show(self, states: dict[str, NsState], t0: float, status: str) -> None:
        pass

    def note(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def stop(self) -> None:
        pass


@dataclass
class TableView:
    """On a terminal: a rich Live table of every namespace, state changes printed above it."""

    stream: IO[str] | None = None
    _live: Any = None
    _console: Any = None
    _title: str = ""
    _since: dict[str, float] = field(default_factory=dict)  # namespace -> capture time of its last change

    def start(self, title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self._title = title
        self._console = Console(file=self.stream) if self.stream is not None else Console()
        self._live = Live(self._render({}, 0.0, "waiting for MCP traffic"), console=self._console, refresh_per_second=4, transient=False)
        self._live.start()

    def _render(self, states: dict[str, NsState], t0: float, status: str) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self._title, caption=status, expand=True)
        table.add_column("namespace", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("since", no_wrap=True, justify="right")
        table.add_column("detail")
        for s in states.values():
            table.add_row(s.name, Text(s.state, style=STYLES.get(s.state, "")), _rel(self._since.get(s.name), t0), s.detail)
        return table

    def changed(self, states: list[NsState], t0: float) -> None:
        from rich.text import Text

        for s in states:
            self._since[s.name] = s.t
            if self._console is not None:
                self._console.print(Text(state_line(s, t0), style=STYLES.get(s.state, "")), soft_wrap=True)

    def show(self, states: dict[str, NsState], t0: float, status: str) -> None:
        if self._live is not None:
            self._live.update(self._render(states, t0, status))

    def note(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, highlight=False, markup=False)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
