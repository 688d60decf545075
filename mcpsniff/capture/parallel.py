"""Offline captures on several cores: the TCP and HTTP layers split by connection.

``read_capture_parallel`` gives the records ``capture.pcap.read_capture`` gives, with
the wire work spread over ``workers`` processes: the calling one (worker 0) and
``workers - 1`` forked ones.  Every worker reads the whole file, but decodes,
reassembles and parses only the connections it owns (``wire.packet.owner``: both
directions land in one worker, the same in every process); the others' frames are
dropped from their raw bytes (``PacketDecoder.decode_pcap``).  Forked workers send
their records in pickled batches (``records.pack_records``); the main process merges
them with its own by time (each stream is already in time order, see ``_merge``) and
yields them.  As the main process also runs the caller's analysis, it owns a smaller
share (``packet._owners``), and its own records never cross a pipe.

Connection ids are numbered so they cannot collide: worker ``k`` of ``W`` hands out
``c{k+1}``, ``c{k+1+W}``, ``c{k+1+2W}``, ... (exchange ids follow: ``c3.2``).  So ids
keep their usual form but differ from the serial reader's; frame numbers are the
true ones.  Warnings about the file itself, and progress, come from worker 0.

The frame reader is passed in (``open_frames(path, progress)``, e.g.
``capture.pcap.FrameReader``) because capture modules do not import each other.
With ``workers`` below 2, or without the "fork" start method (not Linux), everything
runs in the calling process.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import pickle
import signal
import traceback
import warnings
from collections.abc import Callable, Collection, Iterator
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from ..errors import MCPSniffError
from ..records import CaptureWarning, Meta, Record, pack_records, time_key, unpack_records
from ..wire.pipeline import PipelineStats, SegmentSource, records_from_frames

BATCH = 2000  # records per message from a worker (about 150 kB pickled)
PIPE_BYTES = 1 << 20
ProgressFn = Callable[[int, int], None]


class FrameSource(SegmentSource, Protocol):
    """What ``open_frames`` returns: ``capture.pcap.FrameReader``'s shape."""

    problem: str
    def __enter__(self) -> FrameSource: ...
    def __exit__(self, *exc: object) -> None: ...
    def close(self) -> None: ...


OpenFrames = Callable[[Path, ProgressFn | None], FrameSource]  # e.g. capture.pcap.FrameReader


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def read_capture_parallel(
    path: Path,
    open_frames: OpenFrames,
    ports: Collection[int] | None = None,
    progress: ProgressFn | None = None,
    stats: PipelineStats | None = None,
    workers: int = 2,
) -> Iterator[Record]:
    """Yield ``Meta`` then the capture's records in time order, as ``read_capture`` does.

    ``BadInputError`` (file not a capture) is raised on the first ``next()``; an error
    in a worker is raised here.  Stopping early (``close()``) ends the workers.
    """
    with open_frames(path, None) as probe:  # a file that is not a capture fails here, before any worker
        meta = Meta(source="pcap", origin=path.name, t_first=getattr(probe, "first_t", None))
    if workers < 2 or not can_fork():
        yield meta
        for batch in _share(path, open_frames, 0, 1, ports, progress, stats if stats is not None else PipelineStats()):
            yield from batch
        return
    ctx = multiprocessing.get_context("fork")
    pipes = [ctx.Pipe(duplex=False) for _ in range(1, workers)]  # worker k sends on pipes[k - 1]
    for reader, _writer in pipes:
        _widen(reader)
    procs = []
    try:
        for k in range(1, workers):
            others = [end for i, pair in enumerate(pipes, 1) for j, end in enumerate(pair) if i != k or j == 0]
            args = (path, open_frames, k, workers, ports, pipes[k - 1][1], others)
            proc = ctx.Process(target=_worker, args=args, name=f"mcpsniff-worker-{k}", daemon=True)
            with warnings.catch_warnings():  # 3.12 warns about fork with threads (a progress bar's); children only compute
                warnings.simplefilter("ignore", DeprecationWarning)
                proc.start()
            procs.append(proc)
            pipes[k - 1][1].close()
        yield meta
        ends: list[dict[str, Any]] = []
        own = PipelineStats()
        streams = [_share(path, open_frames, 0, workers, ports, progress, own)]
        streams += [_batches(reader, proc, ends) for (reader, _writer), proc in zip(pipes, procs, strict=True)]
        yield from _merge(streams)
        if stats is not None:
            _sum_stats(stats, [_counts(own, True), *ends])
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for reader, writer in pipes:
            reader.close()
            writer.close()


def _widen(conn: Connection) -> None:
    """Let a worker run a few batches ahead of the merge (Linux pipes hold 64 KiB by default)."""
    try:
        import fcntl  # Unix only, like fork

        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (OSError, AttributeError):
        pass  # not Linux, or over /proc/sys/fs/pipe-max-size: the default size works, only slower


def _batches(conn: Connection, proc: Any, ends: list[dict[str, Any]]) -> Iterator[list[Record]]:
    """One worker's records, a batch at a time; its final message (stats) goes to ``ends``."""
    while True:
        try:
            kind, payload = pickle.loads(conn.recv_bytes())
        except EOFError:
            proc.join(1)
            raise RuntimeError(f"capture worker {proc.name} ended without finishing (exit code {proc.exitcode})") from None
        if kind == "records":
            yield unpack_records(payload)
        elif kind == "end":
            ends.append(payload)
            return
        elif isinstance(payload, MCPSniffError):
            raise payload
        else:
            raise RuntimeError(f"capture worker {proc.name} failed:\n{payload}")


def _merge(streams: list[Iterator[list[Record]]]) -> Iterator[Record]:
    """Merge the workers' streams of time-ordered batches into one time-ordered stream.

    A batch at a time rather than a record at a time (``heapq.merge``): everything
    older than the newest record every live stream has delivered is cut out with
    ``bisect`` and sorted (C code, and a merge of sorted runs for the sort): no Python
    call per record in the parent, which also runs the analysis.  Equal times keep
    worker order.
    """
    waiting: list[list[Record]] = [[] for _ in streams]
    live = set(range(len(streams)))

    def refill(i: int) -> None:
        for batch in streams[i]:
            if batch:
                waiting[i].extend(batch)
                return
        live.discard(i)

    for i in range(len(streams)):
        refill(i)
    while live:
        limit = min(time_key(waiting[i][-1]) for i in live)
        ready: list[Record] = []
        for records in waiting:
            cut = bisect.bisect_left(records, limit, key=time_key)
            ready += records[:cut]
            del records[:cut]
        ready.sort(key=time_key)
        yield from ready
        for i in list(live):
            if not waiting[i] or time_key(waiting[i][-1]) == limit:  # only records at ``limit`` left: more may follow
                refill(i)
    rest = [record for records in waiting for record in records]
    rest.sort(key=time_key)
    yield from rest


def _worker(path: Path, open_frames: OpenFrames, k: int, workers: int, ports: Collection[int] | None, out: Connection, others: list[Connection]) -> None:
    """Body of worker ``k``: the records of its connections, in batches, then its stats."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    for end in others:  # the parent's ends and other workers' pipes: so a dead reader breaks our pipe
        end.close()
    send = out.send_bytes
    try:
        stats = PipelineStats()
        for batch in _share(path, open_frames, k, workers, ports, None, stats):
            send(pickle.dumps(("records", pack_records(batch)), pickle.HIGHEST_PROTOCOL))
        send(pickle.dumps(("end", _counts(stats, False)), pickle.HIGHEST_PROTOCOL))
    except BrokenPipeError:
        pass  # the parent stopped reading
    except BaseException as exc:  # everything else is the parent's to report
        payload: object = exc if isinstance(exc, MCPSniffError) else traceback.format_exc()
        try:
            send(pickle.dumps(("error", payload), pickle.HIGHEST_PROTOCOL))
        except Exception:  # noqa: BLE001 - unpicklable error or parent gone: the parent sees EOF
            pass
    finally:
        out.close()
        os._exit(0)  # no atexit handlers or finalizers of the parent's objects in the child


def _share(path: Path, open_frames: OpenFrames, k: int, workers: int, ports: Collection[int] | None, progress: ProgressFn | None, stats: PipelineStats) -> Iterator[list[Record]]:
    """``wire.pipeline.records_from_frames`` on worker ``k``'s share of the connections, in batches.

    Worker 0 (the main process, or the only one) also gives the warnings about the file itself.
    """
    with open_frames(path, progress) as frames:
        records = records_from_frames(frames, ports, stats, share=(k, workers))
        while batch := list(islice(records, BATCH)):  # (list() pulls from the compiled generator in C)
            yield batch
    if k == 0:  # the reader knows of damage only once it has read that far
        tail = [CaptureWarning(frames.last_t, note) for note in getattr(frames, "notes", ())]
        if frames.problem:
            tail.append(CaptureWarning(frames.last_t, frames.problem))
        if tail:
            yield tail


def _counts(stats: PipelineStats, first: bool) -> dict[str, Any]:
    """The stats a worker adds to the total; the first one's file-level counts too (every worker saw every frame)."""
    counts: dict[str, Any] = {key: getattr(stats, key) for key in _SUMMED}
    if first:
        counts.update(packets=stats.packets, fragments=stats.fragments, malformed=stats.malformed, unsupported_links=stats.unsupported_links, last_t=stats.last_t)
    return counts


def _sum_stats(stats: PipelineStats, ends: list[dict[str, Any]]) -> None:
    for counts in ends:
        for key, value in counts.items():
            setattr(stats, key, getattr(stats, key) + value if key in _SUMMED else value)
    stats.skipped = stats.packets - stats.tcp_packets


_SUMMED = frozenset({"tcp_packets", "duplicates", "retransmitted", "gaps", "lost_bytes", "connections", "unanswered_syns"})
