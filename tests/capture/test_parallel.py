"""Reading a pcap with worker processes: the same records and verdicts as the serial reader."""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files, pcap_workers
from mcpsniff.capture.parallel import can_fork, read_capture_parallel
from mcpsniff.capture.pcap import FrameReader, read_capture
from mcpsniff.errors import BadInputError
from mcpsniff.records import CaptureWarning, Meta, Record
from mcpsniff.wire.packet import PacketDecoder, Segment
from mcpsniff.wire.pipeline import PipelineStats

ROOT = Path(__file__).resolve().parents[2]
REAL = sorted((ROOT / "tests" / "data" / "real").glob("*/capture.pcap"))

pytestmark = pytest.mark.skipif(not can_fork(), reason="the parallel reader needs the fork start method")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 50k-packet MCP capture (40 namespaces, restarts) from the benchmark's writer."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import analyze_speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    path = tmp_path_factory.mktemp("parallel") / "gen50k.pcap"
    analyze_speed.generate(path, 50_000)
    return path


def _conn_of(rec: Record) -> str:
    conn = getattr(rec, "conn", "") or ""
    return conn or (getattr(rec, "xid", "") or "").split(".")[0]


def by_connection(records: list[Record]) -> dict[object, list[Record]]:
    """Records per connection, ids blanked, keyed by the connection's first frame number."""
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(_conn_of(rec), []).append(rec)
    out: dict[object, list[Record]] = {}
    for conn, recs in groups.items():
        first = next((r.frame for r in recs if getattr(r, "frame", None) is not None), None)
        key = (first, conn) if not conn else first
        assert key not in out, f"two connections start at frame {first}"
        out[key] = [dataclasses.replace(r, **{f: "*" for f in ("conn", "xid") if getattr(r, f, "")}) for r in recs]
    return out


def no_children() -> bool:
    return not multiprocessing.active_children()


def inputs() -> list[str]:
    return [str(p) for p in REAL] + ["generated"]


@pytest.fixture(params=inputs(), ids=lambda p: Path(p).parent.name if p != "generated" else p)
def capture(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue("generated") if request.param == "generated" else Path(request.param)


@pytest.mark.parametrize("workers", [1, 2, 3])  # 1: all in the calling process
def test_same_records_stats_and_order_as_serial(capture: Path, workers: int) -> None:
    serial_stats, parallel_stats = PipelineStats(), PipelineStats()
    serial = list(read_capture(capture, stats=serial_stats))
    parallel = list(read_capture_parallel(capture, FrameReader, stats=parallel_stats, workers=workers))
    assert isinstance(parallel[0], Meta) and parallel[0] == serial[0]
    assert len(parallel) == len(serial)
    assert by_connection(parallel[1:]) == by_connection(serial[1:])
    times = [r.t for r in parallel[1:] if r.t is not None]
    assert times == sorted(times)
    assert parallel_stats == serial_stats
    # ids do not collide across workers: as many connection ids as the serial reader has
    assert len({_conn_of(r) for r in parallel if _conn_of(r)}) == len({_conn_of(r) for r in serial if _conn_of(r)})
    assert no_children()


def _summary(paths: list[Path]) -> dict[str, object]:
    analysis = analyze_files(paths, full=False)
    namespaces = {}
    for ns in analysis.namespaces:
        d, sp = ns.diagnosis, ns.diagnosis.stall_point
        namespaces[ns.name] = (d.verdict, d.signature, len(ns.exchanges), sp and (sp.frame, sp.t, sp.method, sp.target, sp.result))
    return {"namespaces": namespaces, "restarts": len(analysis.restarts), "warnings": analysis.warnings, "stats": analysis.stats}


def test_same_verdicts_through_analyze_files(capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPSNIFF_WORKERS", "1")
    serial = _summary([capture])
    monkeypatch.setenv("MCPSNIFF_WORKERS", "2")
    assert pcap_workers(capture) == 2
    assert _summary([capture]) == serial
    assert serial["namespaces"]


def test_workers_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPSNIFF_WORKERS", raising=False)
    assert pcap_workers(REAL[0]) == 1  # small files are read serially
    monkeypatch.setenv("MCPSNIFF_WORKERS", "many")
    with pytest.raises(BadInputError, match="MCPSNIFF_WORKERS"):
        pcap_workers(REAL[0])


def test_stopping_early_ends_the_workers(generated: Path) -> None:
    records = read_capture_parallel(generated, FrameReader, workers=3)
    head = [next(records) for _ in range(10)]
    children = multiprocessing.active_children()
    assert len(head) == 10 and len(children) == 2  # the main process reads a share itself
    records.close()
    assert no_children()
    for child in children:
        assert child.exitcode is not None

    dropped = read_capture_parallel(generated, FrameReader, workers=2)
    next(dropped)
    next(dropped)
    del dropped  # never closed by the consumer: garbage collection ends it
    gc.collect()
    assert no_children()


def test_progress_is_reported_from_the_parent(generated: Path) -> None:
    seen: list[tuple[int, int]] = []
    for _ in read_capture_parallel(generated, FrameReader, progress=lambda done, total: seen.append((done, total)), workers=2):
        pass
    size = generated.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"hello, this is text\n", "not a pcap"),
        (b"\xd4\xc3\xb2\xa1\x07\x00\x04\x00" + b"\x00" * 16, "corrupt pcap file header"),
    ],
)
def test_a_file_that_is_not_a_capture_raises_in_the_parent(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        list(read_capture_parallel(bad, FrameReader, workers=2))
    assert no_children()


def test_a_truncated_capture_warns_once_like_the_serial_reader(generated: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(generated.read_bytes()[: generated.stat().st_size * 2 // 3 + 7])
    serial = [r for r in read_capture(cut) if isinstance(r, CaptureWarning)]
    parallel = [r for r in read_capture_parallel(cut, FrameReader, workers=2) if isinstance(r, CaptureWarning)]
    assert any("kept the packets before it" in w.message for w in serial)
    assert sorted(w.message for w in parallel) == sorted(w.message for w in serial)


def in_a_forked_worker() -> bool:
    return multiprocessing.parent_process() is not None


class FailingFrames(FrameReader):
    """A frame source that breaks after some frames, in a forked worker only.

    Fake on purpose: no real file makes the reader raise mid-way (broken files end
    with a warning), but a worker's failure must still reach the parent.
    """

    error: Exception = BadInputError("frame 500: simulated failure")

    def batches(self, decoder: PacketDecoder) -> Iterator[list[tuple[float, int, Segment]]]:
        for batch in super().batches(decoder):
            if batch[-1][1] >= 500 and in_a_forked_worker():
                raise self.error
            yield batch


class CrashingFrames(FailingFrames):
    error = ZeroDivisionError("simulated bug")


@pytest.mark.parametrize("source, error, message", [(FailingFrames, BadInputError, "simulated failure"), (CrashingFrames, RuntimeError, "ZeroDivisionError: simulated bug")])
def test_a_worker_error_is_raised_in_the_parent(generated: Path, source: type[FrameReader], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        list(read_capture_parallel(generated, source, workers=2))
    assert no_children()


class DyingFrames(FrameReader):
    """A frame source whose forked worker is killed at frame 500 (as by the OOM killer): no last word."""

    def batches(self, decoder: PacketDecoder) -> Iterator[list[tuple[float, int, Segment]]]:
        for batch in super().batches(decoder):
            if batch[-1][1] >= 500 and in_a_forked_worker():
                os.kill(os.getpid(), signal.SIGKILL)
            yield batch


def test_a_killed_worker_is_an_error_not_a_hang(generated: Path) -> None:
    with pytest.raises(RuntimeError, match="ended without finishing"):
        list(read_capture_parallel(generated, DyingFrames, workers=2))
    assert no_children()


@pytest.mark.parametrize("seed", range(5))
def test_batch_merge_keeps_time_order_and_each_workers_order(seed: int) -> None:
    """The parent merges whole batches; ties, empty batches and uneven streams included."""
    import random

    from mcpsniff.capture.parallel import _merge

    rng = random.Random(seed)
    streams, expected = [], []
    for k in range(3):
        times = sorted(rng.choice([0.5, 1.0, 1.0, 2.0, 3.5]) + rng.randrange(4) for _ in range(rng.randrange(0, 60)))
        records = [CaptureWarning(t, f"w{k}-{i}") for i, t in enumerate(times)]
        expected += records
        cuts = sorted(rng.sample(range(len(records) + 1), min(4, len(records) + 1)))
        streams.append(iter([records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]))
    merged = list(_merge(streams))
    assert sorted(r.message for r in merged) == sorted(r.message for r in expected)
    assert [r.t for r in merged] == sorted(r.t for r in expected)
    for k in range(3):
        mine = [r.message for r in merged if r.message.startswith(f"w{k}-")]
        assert mine == sorted(mine, key=lambda m: int(m.split("-")[1]))
