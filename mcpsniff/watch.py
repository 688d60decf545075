"""``mcpsniff watch`` (and ``capture --watch``, ``proxy --watch``): every namespace's state, live.

One ``LifecycleBuilder`` is fed each record once, as it arrives, from one of three sources:

- live: scapy on ``lo`` (``capture/live.py``) writes the pcapng as ``capture`` does and hands
  each frame written to this process's main thread through a queue; the frames go through
  the same pipeline ``analyze`` uses (``wire.pipeline.records_from_frames``);
- follow: a growing pcap/pcapng or records JSONL another process writes (``capture/follow.py``);
- proxy: ``mcpsniff proxy``'s mitmdump, its records file followed as the addon writes it.

About once a second (``interval``; less often when a snapshot is slow: a snapshot never takes
more than a fifth of the time) ``diagnose.snapshot`` judges what the builder holds so far
without disturbing it, and ``report.live`` turns the verdicts into states; a change of
state is a line (or a row of the live table).  Snapshots are taken between two records,
in the thread that feeds the builder, so nothing is locked.  At the end the builder is
finished and judged like ``analyze_records`` does: the final verdicts are those of
``mcpsniff analyze`` of the written capture.  Times are the records' (the capture's), never
the clock: a snapshot judges the capture up to its last record.

``--on-stall CMD`` runs CMD (with a shell, not waited for) once per namespace and restart
when the namespace becomes stalled, with MCPSNIFF_NAMESPACE, MCPSNIFF_SIGNATURE,
MCPSNIFF_STALL_POINT, MCPSNIFF_BASIS, MCPSNIFF_INFERENCE, MCPSNIFF_DETAIL,
MCPSNIFF_TIME (epoch seconds of the capture) and MCPSNIFF_SOURCE in its environment.
``--exit-on-stall`` stops at the first stall (the capture file is closed as on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis.diagnose import judge_state, snapshot
from .analysis.lifecycle import LifecycleBuilder
from .analysis.model import PROVEN, Analysis
from .config import Config
from .errors import CaptureError
from .records import CaptureWarning, Meta, Record, guard_times, read_records
from .report.live import STALLED, LineView, NsState, TableView, states_of, steady

SNAPSHOT_SHARE = 5.0  # a snapshot that took x s is followed by the next one at least 5x later (<= 20% of the time)
IDLE_SLEEP = 0.1  # s between looks at a followed file that did not grow
MAX_BACKLOG = 500_000  # frames waiting for the analysis (live); beyond: counted as dropped, still written to the file
HOOK_WAIT = 10.0  # s at the end for --on-stall commands still running
CONFIRM = 1.0  # s of capture time an inferred stall must hold before it is shown (see Watch._confirmed)


@dataclass
class Counters:
    """What a watch did, for the status caption, the summary line and the benchmark."""

    records: int = 0
    frames: int = 0  # frames handed to the analysis (live, follow of a pcap)
    snapshots: int = 0
    snapshot_seconds: float = 0.0
    slowest_snapshot: float = 0.0
    backlog_peak: int = 0  # most frames waiting in the queue at once (live)
    dropped: int = 0  # frames the analysis never saw because the backlog was full (live)
    kernel_packets: int = 0
    kernel_drops: int = 0
    hooks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Watch:
    """The builder, the states shown, the hooks; fed by one of the sources below."""

    def __init__(self, config: Config, sources: list[str], view: Any, on_stall: str | None = None, exit_on_stall: bool = False, interval: float = 1.0) -> None:
        self.config = config
        self.sources = sources
        self.view = view
        self.on_stall = on_stall
        self.exit_on_stall = exit_on_stall
        self.interval = interval
        self.builder = LifecycleBuilder(config, compact=True)  # what `analyze` uses (without --full)
        self.states: dict[str, NsState] = {}
        self.fired: set[tuple[str, float | None]] = set()  # (namespace, restart) the hook ran for
        self.hooks: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stalled = False  # a namespace was shown stalled
        self.stop = threading.Event()  # set by a signal, --duration, --exit-on-stall
        self.counters = Counters()
        self.status: Callable[[], str] = lambda: ""
        self.t0 = 0.0
        self._due = time.monotonic() + interval
        self._suspected: dict[str, float] = {}  # namespace -> capture time a snapshot first inferred it stalled

    # -- fed by the sources ------------------------------------------------------------
    def feed(self, rec: Record) -> None:
        self.builder.feed(rec)
        self.counters.records += 1
        if time.monotonic() >= self._due:
            self.tick()

    def tick_if_due(self) -> None:
        if time.monotonic() >= self._due:
            self.tick()

    def tick(self) -> None:
        """Take a snapshot now and show what changed."""
        start = time.monotonic()
        if self.builder.namespaces:
            analysis = snapshot(self.builder, self.config, self.sources)
            self.t0 = analysis.t0
            self._update(states_of(analysis))
        cost = time.monotonic() - start
        c = self.counters
        c.snapshots += 1
        c.snapshot_seconds += cost
        c.slowest_snapshot = max(c.slowest_snapshot, cost)
        self._due = time.monotonic() + max(self.interval, SNAPSHOT_SHARE * cost)
        self.view.show(self.states, self.t0, self.status_line(cost))
        self._reap()

    def status_line(self, cost: float | None = None) -> str:
        c = self.counters
        parts = [self.status() or f"{c.records} records"]
        if cost is not None:
            parts.append(f"snapshot {cost * 1000:.0f} ms")
        if c.dropped:
            parts.append(f"{c.dropped} frames not analyzed (backlog full)")
        return "; ".join(p for p in parts if p)

    def _update(self, new: dict[str, NsState], final: bool = False) -> None:
        changed = []
        for name, s in new.items():
            prev = self.states.get(name)
            if not final:
                s = self._confirmed(prev, steady(prev, s))
            if prev is None or prev.key != s.key:
                changed.append(s)
            self.states[name] = s
        if final:
            self.states = {name: self.states[name] for name in new}
        if changed:
            self.view.changed(changed, self.t0)
        for s in changed:
            if s.state == STALLED:
                self._became_stalled(s)

    def _confirmed(self, prev: NsState | None, s: NsState) -> NsState:
        """An inferred stall is shown once a snapshot CONFIRM s (capture time) after the first that
        said it still says it; until then the namespace keeps its state. (A snapshot taken just
        as the server came back has inferred a stall that the next records undid.)"""
        name = s.name
        if s.state != STALLED or s.basis == PROVEN or (prev is not None and prev.state == STALLED):
            self._suspected.pop(name, None)
            return s
        since = self._suspected.setdefault(name, s.t)
        if s.t - since >= CONFIRM or prev is None:
            self._suspected.pop(name, None)
            return s
        return prev

    def _became_stalled(self, s: NsState) -> None:
        self.stalled = True
        episode = (s.name, s.window)
        if self.on_stall and episode not in self.fired:
            self.fired.add(episode)
            env = {
                **os.environ,
                "MCPSNIFF_EVENT": "stalled", "MCPSNIFF_NAMESPACE": s.name, "MCPSNIFF_SIGNATURE": s.signature,
                "MCPSNIFF_STALL_POINT": s.stall_point, "MCPSNIFF_BASIS": s.basis, "MCPSNIFF_INFERENCE": s.inference,
                "MCPSNIFF_DETAIL": s.detail, "MCPSNIFF_TIME": f"{s.t:.6f}", "MCPSNIFF_SOURCE": " ".join(self.sources),
            }
            try:
                proc = subprocess.Popen(self.on_stall, shell=True, env=env, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S602 - the user's own command line
            except OSError as exc:
                self.view.note(f"mcpsniff: --on-stall command could not start: {exc.strerror or exc}")
            else:
                self.counters.hooks += 1
                self.hooks.append((s.name, proc))
        if self.exit_on_stall:
            self.stop.set()

    def _reap(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        for name, proc in list(self.hooks):
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic())) if wait else proc.poll()
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                if wait:
                    self.view.note(f"mcpsniff: --on-stall command for {name} still running after {wait:.0f} s; left running (pid {proc.pid})")
                    self.hooks.remove((name, proc))
                continue
            self.hooks.remove((name, proc))
            if code != 0:
                self.view.note(f"mcpsniff: --on-stall command for {name} exited {code}")

    def finish(self) -> Analysis:
        """Finish the builder and judge it as ``analyze`` would; show the final states."""
        self.builder.finish()
        analysis = judge_state(self.builder, self.config, self.sources)
        self.t0 = analysis.t0
        self._update(states_of(analysis), final=True)
        self.view.show(self.states, self.t0, self.status_line())
        self._reap(wait=HOOK_WAIT)
        return analysis

    def idle(self, deadline: float | None) -> bool:
        """For a source with nothing new: tick if due, then True to stop, else a short sleep."""
        self.tick_if_due()
        if deadline is not None and time.monotonic() >= deadline:
            self.stop.set()
        if self.stop.is_set():
            return True
        self.stop.wait(IDLE_SLEEP)
        return False


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` (the sources end cleanly); a second Ctrl-C interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def make_view(tty: bool | None = None) -> Any:
    import sys

    return TableView() if (sys.stdout.isatty() if tty is None else tty) else LineView()


# -- sources ----------------------------------------------------------------------------
def watch_live(watch: Watch, ports: Collection[int], output: Path, iface: str = "lo", duration: float | None = None, bpf: bool = True) -> Analysis:
    """Capture ``ports`` on ``iface`` into ``output`` (as ``mcpsniff capture``), analyzing as it comes."""
    from .capture.live import LiveCapture, bpf_filter
    from .wire.pipeline import PipelineStats, records_from_frames

    frames_q: queue.SimpleQueue[tuple[float, int, int, bytes]] = queue.SimpleQueue()
    c = watch.counters

    def on_frame(t: float, n: int, linktype: int, data: bytes) -> None:  # the sniffer's thread
        waiting = frames_q.qsize()
        if waiting >= MAX_BACKLOG:
            c.dropped += 1
            return
        if waiting > c.backlog_peak:
            c.backlog_peak = waiting
        frames_q.put((t, n, linktype, data))

    cap = LiveCapture(ports, output, iface, bpf=bpf, on_frame=on_frame)
    cap.start()
    how = "kernel BPF filter" if cap.kernel_filter else "filtering by port in-process"
    watch.view.note(f"mcpsniff: watching {bpf_filter(cap.ports)} on {iface}, writing {output} ({how}); Ctrl-C to stop")
    watch.status = lambda: f"{cap.stats.line()}; {c.records} records; backlog {frames_q.qsize()}"
    deadline = time.monotonic() + duration if duration is not None else None

    def frames() -> Iterator[tuple[float, int, int, bytes]]:
        get, get_now = frames_q.get, frames_q.get_nowait
        while True:
            try:
                item = get_now()
            except queue.Empty:
                if _idle_live(watch, deadline) or cap.error:
                    break
                try:
                    item = get(timeout=IDLE_SLEEP)
                except queue.Empty:
                    continue
            c.frames += 1
            yield item
        cap.stop()  # what arrived before the stop is written, and queued here
        while True:
            try:
                item = get_now()
            except queue.Empty:
                break
            c.frames += 1
            yield item

    pstats = PipelineStats()
    try:
        watch.feed(Meta(source="pcap", origin=output.name))
        for rec in records_from_frames(frames(), ports=ports, stats=pstats):
            watch.feed(rec)
    finally:
        cap.stop()
        c.kernel_packets, c.kernel_drops = cap.kernel_packets, cap.kernel_drops
        c.extra.update(packets=cap.stats.packets, duplicates=cap.stats.duplicates, kernel_filter=cap.kernel_filter)
    if cap.error:
        raise CaptureError(cap.error)
    return watch.finish()


def _idle_live(watch: Watch, deadline: float | None) -> bool:
    """Like ``Watch.idle`` without the sleep (the queue's blocking get waits instead)."""
    watch.tick_if_due()
    if deadline is not None and time.monotonic() >= deadline:
        watch.stop.set()
    return watch.stop.is_set()


def watch_follow(watch: Watch, path: Path, ports: Collection[int] | None = None, duration: float | None = None, extra_idle: Callable[[], bool] | None = None) -> Analysis:
    """Follow a growing records JSONL, pcap or pcapng file until stopped."""
    from .capture.follow import RECORDS, FrameFollower, detect, follow_lines

    deadline = time.monotonic() + duration if duration is not None else None

    def idle() -> bool:
        if extra_idle is not None and extra_idle():
            watch.stop.set()
        return watch.idle(deadline)

    c = watch.counters
    fmt, tail, head = detect(path, idle)
    name = path.name
    watch.status = lambda: f"{c.records} records" + (f", {c.frames} packets" if c.frames else "") + f" from {name} ({tail.offset // 1024} KiB read)"
    if fmt == RECORDS:
        for rec in guard_times(read_records(follow_lines(tail, head), name=name), name):
            watch.feed(rec)
    else:
        from .wire.pipeline import records_from_frames

        follower = FrameFollower(tail, head, fmt)

        def counted() -> Iterator[tuple[float, int, int, bytes]]:
            for frame in follower:
                c.frames += 1
                yield frame

        watch.feed(Meta(source="pcap", origin=name))
        for rec in records_from_frames(counted(), ports=ports):
            watch.feed(rec)
        if follower.problem:
            watch.feed(CaptureWarning(follower.last_t, follower.problem))
            watch.view.note(f"mcpsniff: {follower.problem}")
    return watch.finish()


def watch_proxy(watch: Watch, listen_port: int, upstream: str, output: Path, config_path: Path | None = None, listen_host: str = "127.0.0.1") -> Analysis:
    """Run ``mcpsniff proxy``'s mitmdump and follow the records it writes."""
    from .capture.proxy import start_proxy

    handle = start_proxy(listen_port, upstream, output, config=config_path, listen_host=listen_host)
    died: list[str] = []
    watch.view.note(f"mcpsniff: proxy on http://{handle.listen} -> {handle.upstream}, recording to {output} (Ctrl-C to stop)")

    def proxy_idle() -> bool:
        if not handle.running:
            if handle.process.returncode not in (0, None) and not died:
                died.append(f"mitmdump exited unexpectedly (code {handle.process.returncode}): {handle.log_tail()}")
            return True
        if watch.stop.is_set():
            handle.stop()  # the addon ends open exchanges and closes the file: then the rest is read
        return False

    try:
        analysis = watch_follow(watch, output, extra_idle=proxy_idle)
    finally:
        handle.stop()
    if died:
        raise CaptureError(died[0])
    return analysis


def run_watch(mode: str, config: Config, sources: list[str], on_stall: str | None = None, exit_on_stall: bool = False, interval: float = 1.0, view: str = "auto", **source_args: Any) -> tuple[Analysis, Watch]:
    """``mode`` "live" (watch_live's arguments), "follow" (watch_follow's) or "proxy" (watch_proxy's),
    with the view (a live table on a terminal, lines otherwise) and Ctrl-C/SIGTERM handled."""
    from .api import fewer_collections

    shown = make_view(None if view == "auto" else view == "table")
    w = Watch(config, sources, shown, on_stall=on_stall, exit_on_stall=exit_on_stall, interval=interval)
    run = {"live": watch_live, "follow": watch_follow, "proxy": watch_proxy}[mode]
    shown.start(f"mcpsniff watch: {' '.join(sources)}")
    try:
        with stop_on_signals(w.stop), fewer_collections():
            analysis = run(w, **source_args)
    finally:
        shown.stop()
    return analysis, w


def summary_line(w: Watch) -> str:
    """What the watch did, for stderr at the end (and the benchmark)."""
    c = w.counters
    mean = c.snapshot_seconds / c.snapshots * 1000 if c.snapshots else 0.0
    parts = [f"{c.records} records", f"{c.snapshots} snapshots (mean {mean:.0f} ms, slowest {c.slowest_snapshot * 1000:.0f} ms)"]
    if c.frames:
        parts.append(f"{c.frames} packets analyzed")
    if "packets" in c.extra:
        parts.append(f"kernel: {c.kernel_packets} packets to the socket (loopback copies included), {c.kernel_drops} dropped; {c.dropped} not analyzed (backlog full, peak {c.backlog_peak})")
    if c.hooks:
        parts.append(f"--on-stall ran {c.hooks} time(s)")
    return "mcpsniff watch: " + ", ".join(parts)
