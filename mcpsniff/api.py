"""Library entry points: files in, Analysis out.

Detects each input's format from its first bytes, reads it with the matching
capture module, and hands the records to the pure analysis.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .analysis.diagnose import analyze_records
from .analysis.namespaces import holdings, server_port
from .analysis.model import Analysis, StallPoint
from .config import Config, load_config
from .errors import BadInputError
from .records import ConnEvent, End, Record, Request, Response, SseEvent, guard_times, read_records

if TYPE_CHECKING:
    from .capture.annotate import Written

Progress = Callable[[str, int, int], None]  # (file name, bytes done, bytes total)
PARALLEL_MIN_BYTES = 64 << 20  # pcaps from this size are read by two processes (see pcap_workers)

PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4",  # pcap, microseconds
    b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",  # pcap, nanoseconds
    b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34",  # "modified" pcap
    b"\x0a\x0d\x0d\x0a",  # pcapng
    b"\x1f\x8b\x08",  # gzip: the capture reader says to decompress it
)


def sniff_format(path: Path) -> str:
    """"pcap", "records", "har" or "mitm", from the file's first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise BadInputError(f"{path}: {exc.strerror or exc}") from None
    if not head:
        raise BadInputError(f"{path}: file is empty")
    if head[:4] in PCAP_MAGICS or head[:3] in PCAP_MAGICS:
        return "pcap"
    text = head.lstrip()
    if text.startswith(b"{") and b"mcpsniff-records" in head.split(b"\n", 1)[0]:
        return "records"
    if text.startswith(b"{") and b'"log"' in head:
        return "har"
    if head[:1].isdigit() and b":" in head[:12]:
        return "mitm"  # tnetstring: mitmproxy flow file
    raise BadInputError(f"{path}: not a pcap/pcapng capture, mcpsniff records (.jsonl), HAR or mitmproxy flow file")


@contextmanager
def regular_file(path: Path) -> Iterator[Path]:
    """``path`` itself, or for a pipe or device (``analyze <(cat x.pcap)``, ``/dev/stdin``) a
    temporary copy with the same name: format detection reads the first bytes and the
    readers start over (the parallel pcap reader even opens the file once per worker),
    which a pipe cannot do."""
    try:
        mode = path.stat().st_mode
    except OSError:
        yield path  # the reader says what is wrong with it
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="mcpsniff-pipe-"))
    copy = folder / (path.name or "stdin")
    try:
        try:
            with path.open("rb") as src, copy.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError as exc:
            raise BadInputError(f"{path}: {exc.strerror or exc}") from None
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_file(path: Path, ports: Collection[int] | None = None, progress: Progress | None = None, stats: dict[str, int] | None = None) -> Iterator[Record]:
    """Records of one input file, whatever its format (pipes are read from a temporary copy).

    ``ports``: only the traffic of these server ports (a pcap is filtered as it is
    decoded; records, HAR and flow files by the server address of their records).
    """
    with regular_file(path) as real:
        if ports and sniff_format(real) != "pcap":
            yield from only_ports(_read_file(real, ports, progress, stats), ports)
        else:
            yield from _read_file(real, ports, progress, stats)


def only_ports(records: Iterable[Record], ports: Collection[int]) -> Iterator[Record]:
    """The records of connections and exchanges to a server port in ``ports`` (and every meta and warning)."""
    wanted = {int(p) for p in ports}
    conns: dict[str, bool] = {}  # connection -> to a wanted port
    xids: set[str] = set()

    def to_wanted(server: str) -> bool:
        return server_port(server) in wanted

    for rec in records:
        if isinstance(rec, ConnEvent):
            keep = conns.setdefault(rec.conn, to_wanted(rec.server)) if rec.server else conns.get(rec.conn, False)
        elif isinstance(rec, Request):
            keep = to_wanted(rec.server) if rec.server else conns.get(rec.conn, False)
            if keep:
                xids.add(rec.xid)
        elif isinstance(rec, (Response, SseEvent, End)):
            keep = rec.xid in xids
        else:
            keep = True
        if keep:
            yield rec


def _read_file(path: Path, ports: Collection[int] | None, progress: Progress | None, stats: dict[str, int] | None) -> Iterator[Record]:
    fmt = sniff_format(path)
    if fmt == "pcap":
        from .capture.pcap import FrameReader, read_capture
        from .wire.pipeline import PipelineStats

        pstats = PipelineStats()
        cb = (lambda done, total: progress(path.name, done, total)) if progress else None
        workers = pcap_workers(path)
        if workers > 1:
            from .capture.parallel import read_capture_parallel

            yield from read_capture_parallel(path, FrameReader, ports=ports, progress=cb, stats=pstats, workers=workers)
        else:
            yield from read_capture(path, ports=ports, progress=cb, stats=pstats)
        if stats is not None:
            for key, value in dataclasses.asdict(pstats).items():
                if isinstance(value, int):
                    stats[key] = stats.get(key, 0) + value
    elif fmt == "records":
        try:
            with path.open(encoding="utf-8", errors="replace") as fh:
                yield from guard_times(read_records(fh, name=path.name), path.name)
        except OSError as exc:
            raise BadInputError(f"{path}: {exc.strerror or exc}") from None
    elif fmt == "har":
        from .capture.har import read_har

        yield from guard_times(read_har(path), path.name)
    else:
        from .extras import require

        require("proxy", f"{path}: reading a mitmproxy flow file")  # mitmproxy's own reader
        from .capture.mitm import read_flows

        yield from guard_times(read_flows(path), path.name)


GC_YOUNG = 100_000  # allocations between young collections while a capture is read (Python's default: 700)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the cyclic GC's young-generation threshold while a capture is read.

    Reading makes millions of short-lived objects (frames, segments, events, records)
    beside the long-lived state of every open connection. With the default threshold
    some of the short-lived ones live long enough to be promoted, and every full
    collection walks all connections' state: on a capture with tens of thousands of
    open connections that was half the CPU time. Records and wire state form no
    reference cycles, so collecting less often costs no memory. Restored afterwards.
    """
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG), middle, old)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


def pcap_workers(path: Path) -> int:
    """Processes for reading a pcap: 2 for big files on a machine with 2+ cores, else 1.

    ``MCPSNIFF_WORKERS=N`` overrides it (1: always serial; N > 1: parallel whatever the size).
    """
    env = os.environ.get("MCPSNIFF_WORKERS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise BadInputError(f"MCPSNIFF_WORKERS={env!r}: expected a whole number >= 1")
        return int(env)
    try:
        big = path.stat().st_size >= PARALLEL_MIN_BYTES
    except OSError:
        return 1
    return 2 if big and (os.cpu_count() or 1) >= 2 else 1


def _prefixed(records: Iterable[Record], prefix: str) -> Iterator[Record]:
    """Keep connection and exchange ids of several files apart ("f2:c1")."""
    for rec in records:
        changes = {}
        for name in ("conn", "xid"):
            value = getattr(rec, name, None)
            if value:
                changes[name] = f"{prefix}:{value}"
        yield dataclasses.replace(rec, **changes) if changes else rec


def analyze_files(
    paths: list[Path],
    config_path: Path | None = None,
    config: Config | None = None,
    ports: Collection[int] | None = None,
    progress: Progress | None = None,
    full: bool = True,
) -> Analysis:
    """Read every file and analyze their records together.

    ``full=False`` keeps only what verdicts and the text report need (no bodies,
    headers or SSE data; routine calls merged), so memory stays flat on huge captures.
    """
    cfg = config if config is not None else load_config(config_path)
    stats: dict[str, int] = {}

    def all_records() -> Iterator[Record]:
        for i, path in enumerate(paths, start=1):
            recs = read_file(path, ports=ports, progress=progress, stats=stats)
            yield from (_prefixed(recs, f"f{i}") if len(paths) > 1 else recs)

    sources = [os.fsencode(p).decode("utf-8", "backslashreplace") for p in paths]  # a file name that is not UTF-8 stays printable
    with fewer_collections():
        analysis = analyze_records(all_records(), cfg, sources=sources, compact=not full)
    analysis.stats.update(stats)
    add_streams(analysis, paths)
    return analysis


def add_streams(analysis: Analysis, paths: list[Path]) -> None:
    """Give every stall point of a pcap input Wireshark's ``tcp.stream`` number and display filter.

    A second pass over the file, from its start up to the last stall point only, and
    only when something stalled (``capture.pcap.frame_streams``); an input that cannot
    be read twice (a pipe) keeps none.
    """
    by_file: dict[int, list[StallPoint]] = {}
    for ns in analysis.namespaces:
        sp = ns.diagnosis.stall_point
        if sp is None or sp.frame is None:
            continue
        prefix = sp.conn.partition(":")[0] if len(paths) > 1 else "f1"  # "f2:c7": the connection of the second file
        if prefix[:1] == "f" and prefix[1:].isdigit() and 1 <= int(prefix[1:]) <= len(paths):
            by_file.setdefault(int(prefix[1:]) - 1, []).append(sp)
    for i, points in by_file.items():
        path = paths[i]
        if not path.is_file() or sniff_format(path) != "pcap":
            continue
        from .capture.pcap import frame_streams

        streams = frame_streams(path, {sp.frame for sp in points if sp.frame is not None})
        for sp in points:
            if sp.frame in streams:
                sp.set_stream(streams[sp.frame])


def require_found(analysis: Analysis, paths: list[Path], config: Config, ports: Collection[int] = (), namespaces: Collection[str] = ()) -> None:
    """Bad input when a ``--port`` or ``--namespace`` the user named is not in the capture.

    Said in one line with what the capture does hold (each server port and its
    namespaces), so a typo or the other hop's port is one look away.  The capture is read
    once more, without the port filter, only in that case.
    """
    seen_ports = {p for ns in analysis.namespaces for ex in ns.exchanges if (p := server_port(ex.server)) is not None}
    seen_names = {ns.name for ns in analysis.namespaces}
    no_ports = [p for p in dict.fromkeys(ports) if p not in seen_ports] if ports else []
    no_names = [n for n in dict.fromkeys(namespaces) if n not in seen_names]
    if not no_ports and not no_names:
        return
    held: dict[int | None, dict[str, None]] = {}
    for path in paths:
        for port, names in holdings(read_file(path), config).items():
            held.setdefault(port, {}).update(names)
    where = ", ".join(str(p) for p in paths)
    missing = []
    if no_ports:
        missing.append(f"no MCP traffic on port {', '.join(map(str, no_ports))}")
    if no_names:
        on = f" on port {', '.join(map(str, ports))}" if ports else ""
        missing.append(f"no namespace {', '.join(no_names)}{on}")
    listing = "; ".join(f"port {port}: {', '.join(names)}" if port is not None else ', '.join(names) for port, names in sorted(held.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))
    raise BadInputError(f"{' and '.join(missing)} in {where}; " + (f"it holds {listing}" if listing else "it holds no MCP traffic at all"))


def annotate_file(src: Path, dst: Path, config: Config | None = None, ports: Collection[int] | None = None) -> tuple[Analysis, Written]:
    """Analyze a pcap/pcapng capture and copy it to ``dst`` (pcapng) with the diagnosis as
    packet comments (``report.annotations`` chooses them, ``capture.annotate`` writes them).

    Bad input (not a capture, ``dst`` the input itself or in a folder that does not exist,
    a ``--port`` the capture does not hold) is raised before ``dst`` is touched; the copy is then written as the input is read.
    """
    from .capture.annotate import write_annotated
    from .paths import output_file
    from .report.annotations import annotations

    output_file(dst, "-o")
    with regular_file(src) as real:
        if sniff_format(real) != "pcap":
            raise BadInputError(f"{src}: annotate reads pcap and pcapng captures (packet comments need packets), not records, HAR or flow files")
        if dst.exists() and dst.resolve() == real.resolve():
            raise BadInputError(f"-o {dst}: is the input itself; write the annotated copy to another file")
        cfg = config if config is not None else load_config(None)
        analysis = analyze_files([real], config=cfg, ports=ports, full=False)
        analysis.sources = [os.fsencode(src).decode("utf-8", "backslashreplace")]
        require_found(analysis, [real], cfg, ports or ())
        by_frame: dict[int, list[str]] = {}
        by_time: list[tuple[float, str]] = []
        for note in annotations(analysis):
            if note.frame is not None:
                by_frame.setdefault(note.frame, []).append(note.text)
            else:
                by_time.append((note.t, note.text))
        try:
            with dst.open("wb", buffering=1 << 20) as out:
                written = write_annotated(real, out, by_frame, by_time)
        except OSError as exc:
            raise BadInputError(f"-o {dst}: cannot write ({exc.strerror or exc})") from None
    return analysis, written
