"""``mcpsniff watch`` (and ``capture --watch``, ``proxy --watch``): every namespace's state, live.

One ``LifecycleBuilder`` is fed each record once, as it arrives, from one of three sources:

- live: scapy on ``lo`` (``capture/live.py``), in a process of its own, writes the pcapng as
  ``capture`` does, flushing every packet; this process follows the file as it grows and
  puts the frames through the pipeline ``analyze`` uses (``wire.pipeline.records_from_frames``);
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
import gc
import json
import os
import pickle
import select
import signal
import subprocess
import sys
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
from .errors import CaptureError, MCPSniffError
from .records import CaptureWarning, Meta, Record, guard_times, read_records
from .report.live import STALLED, LineView, NsState, TableView, states_of, steady

SNAPSHOT_SHARE = 5.0  # a snapshot that took x s is followed by the next one at least 5x later (<= 20% of the time)
IDLE_SLEEP = 0.1  # s between looks at a followed file that did not grow
CHILD_STOP = 30.0  # s for the capture process to write what it has and exit after SIGTERM
HOOK_WAIT = 10.0  # s at the end for --on-stall commands still running
COLLECT_EVERY = 0.05  # s between two looks at the pipe of a snapshot child
FORK_ABOVE = 0.25  # s of CPU: snapshots slower than this are taken in a forked child (Watch._fork)
CONFIRM = 1.0  # s of capture time an inferred stall must hold before it is shown (see Watch._confirmed)


@dataclass
class Counters:
    """What a watch did, for the status caption, the summary line and the benchmark."""

    records: int = 0
    frames: int = 0  # frames handed to the analysis (live, follow of a pcap)
    snapshots: int = 0
    snapshot_seconds: float = 0.0  # wall time
    snapshot_cpu: float = 0.0  # CPU time of the thread
    slowest_snapshot: float = 0.0
    backlog_peak: int = 0  # most bytes of the followed file not read yet, at a snapshot
    kernel_packets: int = 0
    kernel_drops: int = 0
    hooks: int = 0
    forked: int = 0  # snapshots taken in a child process
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
        self.fork_above: float | None = FORK_ABOVE  # s of CPU a snapshot took before the next ones are forked (None: never)
        self._last_cpu = 0.0
        self._forked: tuple[int, int, float, bytearray] | None = None  # (pid, pipe, started, bytes so far) of a snapshot child

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
        """Take a snapshot now (or start one in a child process, see ``fork_above``) and show what changed."""
        if self._forked is not None:
            self._collect()
            return
        if not self.builder.namespaces:
            self._done(0.0, 0.0)
            return
        if self.fork_above is not None and self._last_cpu >= self.fork_above and hasattr(os, "fork"):
            self._fork()
            return
        start, cpu = time.monotonic(), time.thread_time()
        analysis = snapshot(self.builder, self.config, self.sources)
        self.t0 = analysis.t0
        self._update(states_of(analysis))
        self._done(time.monotonic() - start, time.thread_time() - cpu)

    def _done(self, cost: float, cpu: float) -> None:
        c = self.counters
        c.snapshots += 1
        c.snapshot_seconds += cost
        c.snapshot_cpu += cpu
        c.slowest_snapshot = max(c.slowest_snapshot, cost)
        self._last_cpu = cpu
        self._due = time.monotonic() + max(self.interval, SNAPSHOT_SHARE * cpu)  # CPU time: on a busy machine the wall time is longer
        self.view.show(self.states, self.t0, self.status_line(cost))
        self._reap()

    # A snapshot of a big state takes seconds: taken in the feeding thread it would hold up the
    # records meanwhile (the followed file piles up). Once one took more than ``fork_above`` s of
    # CPU, they are taken in a forked child (a copy-on-write image of the builder at that
    # moment) while this process goes on reading; the child sends the states back through a pipe.
    def _fork(self) -> None:
        read_end, write_end = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: judge, send, leave without running any clean-up of the parent's
            code = 1
            try:
                os.close(read_end)
                gc.disable()  # a collection would touch (and so copy) every page of the image
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                cpu = time.thread_time()
                analysis = snapshot(self.builder, self.config, self.sources)
                data = pickle.dumps((states_of(analysis), analysis.t0, time.thread_time() - cpu))
                with os.fdopen(write_end, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self._forked = (pid, read_end, started, bytearray())
        self._due = time.monotonic() + COLLECT_EVERY
        self.counters.forked += 1

    def _collect(self, wait: bool = False) -> None:
        """Read what the snapshot child sent so far; at its end, show the states it judged."""
        assert self._forked is not None
        pid, fd, started, data = self._forked
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                if not wait:
                    self._due = time.monotonic() + COLLECT_EVERY  # look again then, not at every record
                    return
                select.select([fd], [], [], 1.0)
                continue
            if not chunk:
                break
            data += chunk
        os.close(fd)
        os.waitpid(pid, 0)
        self._forked = None
        try:
            states, t0, cpu = pickle.loads(bytes(data))
        except Exception:  # noqa: BLE001 - the child died (killed, out of memory): no states this time
            self._done(time.monotonic() - started, 0.0)
            return
        self.t0 = t0
        self._update(states)
        self._done(time.monotonic() - started, cpu)

    def settle(self) -> None:
        """Wait for a snapshot being taken in a child process, and show it."""
        if self._forked is not None:
            self._collect(wait=True)

    def _abandon(self) -> None:
        """Stop a snapshot child still running (the final judgement is taken here)."""
        if self._forked is not None:
            pid, fd, _, _ = self._forked
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.close(fd)
            os.waitpid(pid, 0)
            self._forked = None

    def status_line(self, cost: float | None = None) -> str:
        c = self.counters
        parts = [self.status() or f"{c.records} records"]
        if cost is not None:
            parts.append(f"snapshot {cost * 1000:.0f} ms")
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
        self._abandon()
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
def watch_follow(watch: Watch, path: Path, ports: Collection[int] | None = None, duration: float | None = None,
                 ended: Callable[[], bool] | None = None, on_stop: Callable[[], None] | None = None) -> Analysis:
    """Follow a growing records JSONL, pcap or pcapng file until stopped.

    ``ended()``: the writer is gone (stop, after reading what it wrote); ``on_stop()``: stop the
    writer and wait for it, before what it wrote last is read.
    """
    from .capture.follow import RECORDS, FrameFollower, detect, follow_lines

    deadline = time.monotonic() + duration if duration is not None else None

    def stopping() -> bool:  # no sleep: also asked while the file keeps growing
        if (ended is not None and ended()) or (deadline is not None and time.monotonic() >= deadline):
            watch.stop.set()
        if not watch.stop.is_set():
            return False
        if on_stop is not None:
            on_stop()
        return True

    def idle() -> bool:
        watch.tick_if_due()
        if stopping():
            return True
        watch.stop.wait(IDLE_SLEEP)
        return False

    c = watch.counters
    fmt, tail, head = detect(path, idle, stopping)
    name = path.name

    def status() -> str:
        try:
            behind = max(0, path.stat().st_size - tail.offset)
        except OSError:
            behind = 0
        c.backlog_peak = max(c.backlog_peak, behind)
        return f"{c.records} records" + (f", {c.frames} packets" if c.frames else "") + f" from {name} ({tail.offset >> 10} KiB read, {behind >> 10} KiB behind)"

    watch.status = status
    if fmt == RECORDS:
        for rec in guard_times(read_records(follow_lines(tail, head), name=name), name):
            watch.feed(rec)
    else:
        from .wire.pipeline import records_from_frames

        follower = FrameFollower(tail, head, fmt)
        first_t: list[float] = []  # the file's first packet, of any port: times are relative to it, as in analyze

        def counted() -> Iterator[tuple[float, int, int, bytes]]:
            for frame in follower:
                if not first_t:
                    first_t.append(frame[0])
                c.frames += 1
                yield frame

        meta_fed = False
        for rec in records_from_frames(counted(), ports=ports):
            if not meta_fed:
                watch.feed(Meta(source="pcap", origin=name, t_first=first_t[0] if first_t else None))
                meta_fed = True
            watch.feed(rec)
        if not meta_fed:
            watch.feed(Meta(source="pcap", origin=name, t_first=first_t[0] if first_t else None))
        if follower.problem:
            watch.feed(CaptureWarning(follower.last_t, follower.problem))
            watch.view.note(f"mcpsniff: {follower.problem}")
    analysis = watch.finish()
    if fmt != RECORDS:
        from .api import add_streams

        add_streams(analysis, [path])  # the stall points' tcp.stream, as analyze gives them
    return analysis


def watch_live(watch: Watch, ports: Collection[int], output: Path, iface: str = "lo", duration: float | None = None, bpf: bool = True, expr: str = "") -> Analysis:
    """Capture ``ports`` on ``iface`` into ``output`` (as ``mcpsniff capture``) and analyze it as it grows.

    The capture runs in a process of its own (``python -m mcpsniff.watch capture ...``):
    the analysis and the snapshots hold this process's GIL for long stretches, and a
    sniffer thread beside them gets it back only every switch interval (5 ms), one packet
    at a time, while the kernel drops what its socket buffer cannot hold. The capture
    process writes and flushes every packet; this one follows the file, so it reads each
    packet exactly as ``analyze`` of the file will.
    """
    from .capture.proxy import die_with_parent

    args = [sys.executable, "-m", "mcpsniff.watch", "capture", ",".join(str(p) for p in ports), str(output), iface, "1" if bpf else "0", expr]
    child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent())  # noqa: PLW1509 - prctl only
    assert child.stdout is not None
    said: dict[str, Any] = {}
    try:
        first = child.stdout.readline()  # the capture's first words: started, or why not
        said = json.loads(first) if first.strip() else {"error": f"the capture process exited (code {child.wait()})"}
    except json.JSONDecodeError:
        said = {"error": f"the capture process said {first[:200]!r}"}
    finally:
        if "error" in said:
            _stop_child(child)
    if "error" in said:
        raise CaptureError(said["error"])
    how = "kernel BPF filter" if said.get("kernel_filter") else "filtering by port in-process"
    watch.view.note(f"mcpsniff: watching {said.get('filter', '')} on {iface}, writing {output} ({how}); Ctrl-C to stop")
    final: dict[str, Any] = {}

    def on_stop() -> None:
        if not final:
            final.update(_stop_child(child))

    try:
        analysis = watch_follow(watch, output, ports=ports or None, duration=duration, ended=lambda: child.poll() is not None, on_stop=on_stop)
    finally:
        on_stop()
    c = watch.counters
    c.kernel_packets, c.kernel_drops = final.get("kernel_packets", 0), final.get("kernel_drops", 0)
    c.extra.update({k: v for k, v in final.items() if k in ("packets", "duplicates", "kernel_filter")})
    if final.get("error"):
        raise CaptureError(final["error"])
    return analysis


def _stop_child(child: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM the capture process, wait, and read its last words (its counters, or its error)."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(CHILD_STOP)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    assert child.stdout is not None
    last: dict[str, Any] = {}
    for line in child.stdout.read().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            last = json.loads(line)
    child.stdout.close()
    if child.returncode not in (0, None) and not last.get("error"):
        last["error"] = f"the capture process exited with code {child.returncode}"
    return last


def _capture_process(ports: str, output: str, iface: str, bpf: str, expr: str = "") -> int:
    """``python -m mcpsniff.watch capture PORTS OUTPUT IFACE BPF [EXPR]``: capture until SIGTERM or SIGINT.

    Says one JSON line when the capture has started (or why it could not), one with its
    counters when it has stopped and the file is closed.
    """
    from .capture.live import LiveCapture

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cap = LiveCapture([int(p) for p in ports.split(",") if p], Path(output), iface, bpf=bpf == "1", ignore_outgoing=True, expr=expr)
        cap.start()
    except MCPSniffError as exc:  # no raw sockets, a bad filter expression, an unwritable file
        print(json.dumps({"error": str(exc)}), flush=True)
        return 2
    print(json.dumps({"started": True, "kernel_filter": cap.kernel_filter, "filter": cap.filter}), flush=True)
    while not stop.wait(0.2) and cap.error is None:
        pass
    stats = cap.stop()
    print(json.dumps({"packets": stats.packets, "duplicates": stats.duplicates, "kernel_packets": cap.kernel_packets, "kernel_drops": cap.kernel_drops,
                      "kernel_filter": cap.kernel_filter, "error": cap.error or ""}), flush=True)
    return 0


def watch_proxy(watch: Watch, listen_port: int, upstream: str, output: Path, config_path: Path | None = None, listen_host: str = "127.0.0.1", filter_expr: str | None = None) -> Analysis:
    """Run ``mcpsniff proxy``'s mitmdump and follow the records it writes."""
    from .capture.proxy import start_proxy

    handle = start_proxy(listen_port, upstream, output, config=config_path, listen_host=listen_host, filter_expr=filter_expr)
    watch.view.note(f"mcpsniff: proxy on http://{handle.listen} -> {handle.upstream}, recording to {output} (Ctrl-C to stop)")
    died = ""

    def ended() -> bool:
        nonlocal died
        if handle.running:
            return False
        if handle.process.returncode not in (0, None) and not died:
            died = f"mitmdump exited unexpectedly (code {handle.process.returncode}): {handle.log_tail()}"
        return True

    try:
        analysis = watch_follow(watch, output, ended=ended, on_stop=handle.stop)  # the addon ends open exchanges, closes the file
    finally:
        handle.stop()
    if died:
        raise CaptureError(died)
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
    cpu = c.snapshot_cpu / c.snapshots * 1000 if c.snapshots else 0.0
    parts = [f"{c.records} records", f"{c.snapshots} snapshots (mean {mean:.0f} ms, {cpu:.0f} ms of CPU; slowest {c.slowest_snapshot * 1000:.0f} ms)"]
    if c.forked:
        parts.append(f"{c.forked} of them in a child process")
    if c.frames:
        parts.append(f"{c.frames} packets analyzed")
    if "packets" in c.extra:
        parts.append(f"capture process: {c.extra['packets']} packets written, kernel: {c.kernel_packets} packets to its socket (loopback copies included), {c.kernel_drops} dropped")
    if c.backlog_peak:
        parts.append(f"analysis at most {c.backlog_peak >> 10} KiB behind the file")
    if c.hooks:
        parts.append(f"--on-stall ran {c.hooks} time(s)")
    return "mcpsniff watch: " + ", ".join(parts)


if __name__ == "__main__":  # the capture process of watch_live
    if len(sys.argv) in (6, 7) and sys.argv[1] == "capture":
        sys.exit(_capture_process(*sys.argv[2:]))
    sys.exit("usage: python -m mcpsniff.watch capture PORT[,PORT...] OUTPUT IFACE 0|1 [FILTER]")
