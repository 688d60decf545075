"""Following a growing file (capture/follow.py): the frames and lines read as it grows are
those the offline readers give for the whole file, whatever the sizes the writer wrote in."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mcpsniff.api import read_file
from mcpsniff.capture.follow import PCAP, PCAPNG, RECORDS, FrameFollower, detect, follow_lines
from mcpsniff.capture.pcap import FrameReader
from mcpsniff.errors import BadInputError, CaptureError
from mcpsniff.records import guard_times, read_records
from mcpsniff.wire.pipeline import records_from_frames

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


class Writer:
    """Appends ``data`` to ``path`` a piece at a time, one piece per idle() call; then says stop."""

    def __init__(self, path: Path, data: bytes, sizes: tuple[int, ...]) -> None:
        self.path, self.data, self.sizes = path, data, sizes
        self.pos = self.calls = 0
        path.write_bytes(b"")

    def idle(self) -> bool:
        self.calls += 1
        if self.pos >= len(self.data):
            return True
        size = self.sizes[self.calls % len(self.sizes)]
        with self.path.open("ab") as fh:
            fh.write(self.data[self.pos : self.pos + size])
        self.pos += size
        return False


@pytest.mark.parametrize(("case", "name", "fmt"), [("ts-idle-get", "capture.pcap", PCAP), ("ts-idle-get", "capture.pcapng", PCAPNG), ("sessionless-one-dies", "capture.pcap", PCAP)])
def test_frames_of_a_growing_capture_are_those_of_the_whole_file(tmp_path: Path, case: str, name: str, fmt: str) -> None:
    src = REAL / case / name
    with FrameReader(src) as reader:
        whole = list(reader)
    grown = tmp_path / name
    writer = Writer(grown, src.read_bytes(), (1, 7, 4096, 100_000, 13, 3))  # cut inside headers, blocks and packets
    got_fmt, tail, head = detect(grown, writer.idle)
    assert got_fmt == fmt
    follower = FrameFollower(tail, head, got_fmt)
    frames = list(follower)
    assert frames == whole  # same numbers, timestamps (bit for bit), link types and bytes
    assert follower.problem == "" and writer.calls > 10
    # and so the records (what the analysis reads) are the offline reader's
    offline = [r for r in read_file(src) if r.kind != "meta"]
    assert list(records_from_frames(iter(frames))) == offline


def test_lines_of_a_growing_records_file_are_those_of_the_whole_file(tmp_path: Path) -> None:
    src = REAL / "ts-idle-get" / "run.jsonl"
    grown = tmp_path / "run.jsonl"
    writer = Writer(grown, src.read_bytes(), (5, 301, 2, 9000))
    fmt, tail, head = detect(grown, writer.idle)
    assert fmt == RECORDS
    followed = list(guard_times(read_records(follow_lines(tail, head), name="run.jsonl"), "run.jsonl"))
    assert followed == list(read_file(src))


def test_a_line_the_writer_stopped_in_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    src = (REAL / "ts-idle-get" / "run.jsonl").read_bytes()
    cut = src[: src.index(b"\n", 5000) + 40]  # a killed writer: half a line at the end
    grown = tmp_path / "run.jsonl"
    writer = Writer(grown, cut, (4096,))
    fmt, tail, head = detect(grown, writer.idle)
    records = list(read_records(follow_lines(tail, head), name="run.jsonl"))
    assert records[-1].kind == "warning" and "unreadable record" in records[-1].message


def test_a_file_that_appears_later_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    data = (REAL / "ts-idle-get" / "run.jsonl").read_bytes()[:3000]
    calls = []

    def idle() -> bool:
        calls.append(1)
        if len(calls) == 3:
            path.write_bytes(data)
        return len(calls) > 6

    fmt, tail, head = detect(path, idle)
    assert fmt == RECORDS and len(list(follow_lines(tail, head))) == data.count(b"\n") + 1


def test_what_cannot_be_followed_is_a_clear_error(tmp_path: Path) -> None:
    har = tmp_path / "x.har"
    har.write_text('{"log": {}}')
    assert detect(har, lambda: True)[0] == RECORDS  # looks like JSON: read_records then says what it is
    with pytest.raises(BadInputError, match="not an mcpsniff records file"):
        fmt, tail, head = detect(har, lambda: True)
        list(read_records(follow_lines(tail, head), name="x.har"))
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress((REAL / "ts-idle-get" / "capture.pcap").read_bytes()[:1000]))
    with pytest.raises(BadInputError, match="gzip"):
        detect(gz, lambda: True)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError, match="nothing was written"):
        detect(empty, lambda: True)


def test_a_followed_file_truncated_under_it_stops_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcap"
    data = (REAL / "ts-idle-get" / "capture.pcap").read_bytes()
    path.write_bytes(data[:20000])
    state = {"n": 0}

    def idle() -> bool:
        state["n"] += 1
        if state["n"] == 1:
            path.write_bytes(data[:100])  # rotated/truncated by its writer
        return state["n"] > 3

    fmt, tail, head = detect(path, idle)
    with pytest.raises(CaptureError, match="truncated"):
        list(FrameFollower(tail, head, fmt))
