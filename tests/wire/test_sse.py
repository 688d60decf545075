"""Incremental SSE decoding (mcpsniff.wire.sse)."""

from __future__ import annotations

import pytest

from mcpsniff.wire.sse import SseDecoder, SseMessage


def decode(*chunks: bytes | str) -> list[SseMessage]:
    decoder = SseDecoder()
    out: list[SseMessage] = []
    for i, chunk in enumerate(chunks, 1):
        out += decoder.feed(chunk, float(i), i)
    return out


def fields(messages: list[SseMessage]) -> list[tuple]:
    return [(m.event, m.data, m.id, m.retry, m.has_data) for m in messages]


STREAM = "event: message\ndata: {\"a\":1}\n\n: keep-alive comment\n\nid: 7\ndata: line one\ndata: line two\n\ndata\n\n"
STREAM_EVENTS = [("message", '{"a":1}', None, None, True), (":comment", "keep-alive comment", None, None, False), ("", "line one\nline two", "7", None, True), ("", "", "7", None, True)]
ENDINGS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_every_line_ending_at_every_split(ending: str) -> None:
    data = STREAM.replace("\n", ending).encode()
    assert fields(decode(data)) == STREAM_EVENTS
    for cut in range(1, len(data)):
        assert fields(decode(data[:cut], data[cut:])) == STREAM_EVENTS, cut
    assert fields(decode(*(data[i : i + 1] for i in range(len(data))))) == STREAM_EVENTS


def test_mixed_line_endings() -> None:
    assert fields(decode(b"data: a\r\ndata: b\rdata: c\n\r\n")) == [("", "a\nb\nc", None, None, True)]


CASES = [
    ("CR at chunk end, LF at next start: one line end", [b"data: a\r", b"\ndata: b\r\n\r\n"], [("", "a\nb", None, None, True)]),
    ("CR then CR: an empty line", [b"data: a\r", b"\r"], [("", "a", None, None, True)]),
    ("LF after CR is skipped only once", [b"data: a\r", b"\n\n"], [("", "a", None, None, True)]),
    ("comments come out as keep-alive items, in order", [b": hi\n:\ndata: x\n: bye\n\n"], [(":comment", "hi", None, None, False), (":comment", "", None, None, False), (":comment", "bye", None, None, False), ("", "x", None, None, True)]),
    ("the SDK server's ping comment", [b": ping - 2026-11-24 01:48:47.1+00:00\r\n\r\n"], [(":comment", "ping - 2026-11-24 01:48:47.1+00:00", None, None, False)]),
    ("no space after colon", [b"data:x\nevent:e\n\n"], [("e", "x", None, None, True)]),
    ("only the first space is removed", [b"data:  x \n\n"], [("", " x ", None, None, True)]),
    ("unknown fields ignored", [b"foo: bar\ndata: x\n\n"], [("", "x", None, None, True)]),
    ("retry: digits only", [b"retry: 3000\ndata: a\n\nretry: 3s\ndata: b\n\nretry: +5\ndata: c\n\n"], [("", "a", None, 3000, True), ("", "b", None, None, True), ("", "c", None, None, True)]),
    ("id persists, an empty id resets it", [b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"], [("", "a", "1", None, True), ("", "b", "1", None, True), ("", "c", "", None, True)]),
    ("id with NUL ignored", [b"id: 1\n\nid: 2\x003\ndata: x\n\n"], [("", "", "1", None, False), ("", "x", "1", None, True)]),
    ("priming event: id and no data", [b"id: 0\n\nevent: message\ndata: {}\n\n"], [("", "", "0", None, False), ("message", "{}", "0", None, True)]),
    ("priming event with retry and empty data line", [b"id: e1\nretry: 500\ndata:\n\n"], [("", "", "e1", 500, True)]),
    ("blank lines alone dispatch nothing", [b"\n\n\r\n\r\r"], []),
    ("repeated blank lines after an id dispatch nothing", [b"id: 1\ndata: a\n\n\n\n"], [("", "a", "1", None, True)]),
    ("incomplete last event not dispatched", [b"data: a\n\ndata: b\n"], [("", "a", None, None, True)]),
    ("BOM at start ignored", [b"\xef\xbb\xbfdata: a\n\n"], [("", "a", None, None, True)]),
    ("BOM split over chunks", [b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [("", "a", None, None, True)]),
    ("BOM later is data", [b"data: a\n\n\xef\xbb\xbfdata: b\n\n"], [("", "a", None, None, True)]),
    ("UTF-8 split over chunks", ["data: é€".encode()[:8], "data: é€".encode()[8:] + b"\n\n"], [("", "é€", None, None, True)]),
    ("invalid UTF-8 replaced", [b"data: \xff\n\n"], [("", "\ufffd", None, None, True)]),
    ("text chunks", ["event: message\r\n", "data: {}\r\n\r\n"], [("message", "{}", None, None, True)]),
]


@pytest.mark.parametrize("chunks, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(chunks: list[bytes | str], expected: list[tuple]) -> None:
    assert fields(decode(*chunks)) == expected


# chunks that may take the one-event fast path (after a first event, as in a stream)
WHOLE_EVENTS = [
    b"event: message\r\ndata: {\"a\":1}\r\n\r\n",
    b"event: message\r\ndata: \r\n\r\n",
    b"event: message\r\ndata: a\rb\r\n\r\n",  # a CR inside ends the data line
    b"event: message\r\ndata: a\nid: 3\r\n\r\n",
    b"data: x\n\n",
    b"data:x\r\n\n",
    b"event:\ndata:  two spaces\n\r\n",
    b"data: \xff bad utf-8\n\n",
    b"data: a\r\n\r",  # not whole: the last CR may be followed by an LF
    b"data: a\rdata: b\r\r",  # CR line ends
    b"id: 9\ndata: a\n\n",
    b"data: a\ndata: b\n\n",
    b"event: e\nevent: f\ndata: a\n\n",
    b"data: a\n\ndata: b\n\n",
    b": comment\ndata: a\n\n",
    b"retry: 5\ndata: a\n\n",
]


@pytest.mark.parametrize("chunk", WHOLE_EVENTS)
def test_a_whole_event_in_one_chunk_decodes_as_byte_by_byte(chunk: bytes) -> None:
    first = b"id: 1\ndata: first\n\n"
    assert fields(decode(first, chunk, b"\ndata: next\n\n")) == fields(decode(*(bytes([b]) for b in first + chunk + b"\ndata: next\n\n")))


def test_event_carries_the_time_of_the_chunk_that_completed_it() -> None:
    decoder = SseDecoder()
    got = [decoder.feed(chunk, float(i), i) for i, chunk in enumerate([b"event: message\r\n", b"data: {}\r\n", b"\r\ndata: 2\r\n\r", b"\n"], 1)]
    assert [[(m.data, m.t, m.frame) for m in events] for events in got] == [[], [], [("{}", 3.0, 3), ("2", 3.0, 3)], []]


def test_last_id_is_exposed() -> None:
    decoder = SseDecoder()
    decoder.feed(b"id: abc\ndata: x\n\n", 1.0)
    assert decoder.last_id == "abc"
