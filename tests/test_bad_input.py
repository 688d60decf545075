"""`mcpsniff analyze` on broken files (tests/data/bad, made by tests/data/bad/make.py).

A file is either unreadable (exit 2, one line on stderr, nothing on stdout) or partly
readable (exit 0/1, a warning, and everything before or around the damage reported).
Never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff.cli import main

BAD = Path(__file__).resolve().parent / "data" / "bad"
REPO = BAD.parents[2]


@dataclass(frozen=True)
class Unreadable:
    error: str  # regex the one-line error must match


@dataclass(frozen=True)
class Partial:
    exchanges: int  # exchanges of "tasks" still reported (--full)
    warning: str | None  # regex one of the warnings must match (None: no warning needed)
    namespaces: tuple[str, ...] = ("tasks",)


CASES: dict[str, Unreadable | Partial] = {
    "empty.pcap": Unreadable(r"empty"),
    "text.txt": Unreadable(r"not a pcap"),
    "truncated-header.pcap": Unreadable(r"truncated .*header"),
    "wrong-version.jsonl": Unreadable(r"version 99"),
    # cut in the middle of packet 24: the 4 exchanges before it are kept
    "truncated-packet.pcap": Partial(4, r"ends inside a packet|truncated"),
    "corrupt-length.pcap": Partial(4, r"corrupt|length"),
    # readers must skip block types they do not know (pcapng spec): nothing lost
    "unknown-block.pcapng": Partial(6, None),
    "non-http.pcap": Partial(0, r"not HTTP", namespaces=()),
    # the broken exchange ends in a warning; the call after it is read
    "broken-chunked.pcap": Partial(8, r"chunk"),
    # SSE lines without a colon, binary junk and unknown fields are ignored (SSE spec)
    "sse-garbage.pcap": Partial(8, None),
    "invalid-json.pcap": Partial(8, r"JSON"),
    "broken-line.jsonl": Partial(1, r"line 4"),
}


def test_every_file_has_a_case() -> None:
    assert sorted(p.name for p in BAD.iterdir() if p.name not in ("make.py", "__pycache__")) == sorted(CASES)


def one_line_error(stderr: str, pattern: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mcpsniff: error:"), stderr
    assert re.search(pattern, lines[0]), stderr


@pytest.mark.parametrize("name", list(CASES))
def test_analyze_bad_file(name: str) -> None:
    case = CASES[name]
    path = BAD / name
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json", "--full"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output + result.stderr
    if isinstance(case, Unreadable):
        assert result.exit_code == 2
        assert result.stdout == ""
        one_line_error(result.stderr, case.error)
        return
    assert result.exit_code in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert tuple(ns["name"] for ns in doc["namespaces"]) == case.namespaces
    if case.namespaces:
        assert len(doc["namespaces"][0]["exchanges"]) == case.exchanges
    if case.warning is not None:
        assert any(re.search(case.warning, w) for w in doc["warnings"]), doc["warnings"]


def test_partial_file_warns_in_the_text_report() -> None:
    result = CliRunner().invoke(main, ["analyze", str(BAD / "corrupt-length.pcap")])
    assert result.exit_code == 0
    assert "tasks" in result.stdout
    assert re.search(r"warning.*corrupt", result.stdout + result.stderr)


def test_sse_garbage_keeps_the_response_event() -> None:
    result = CliRunner().invoke(main, ["analyze", str(BAD / "sse-garbage.pcap"), "--format", "json", "--full"])
    exchanges = json.loads(result.stdout)["namespaces"][0]["exchanges"]
    odd = next(ex for ex in exchanges if ex["frame"] == 50)  # the hand-written exchange
    assert [(tick["event"], tick["rpc"]) for tick in odd["events"]] == [(":comment", ""), ("message", "response")]  # the comment line is kept as keep-alive evidence
    assert odd["status"] == 200 and not odd["error"]


@pytest.mark.parametrize("name", ["empty.pcap", "truncated-packet.pcap"])
def test_real_subprocess(name: str) -> None:
    """The installed command, as a user runs it: no traceback, the same exit codes."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    proc = subprocess.run([uv, "run", "--frozen", "mcpsniff", "analyze", str(BAD / name)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr + proc.stdout
    case = CASES[name]
    if isinstance(case, Unreadable):
        assert proc.returncode == 2 and proc.stdout == ""
        one_line_error(proc.stderr, case.error)
    else:
        assert proc.returncode == 0
        assert "tasks" in proc.stdout
        assert re.search(case.warning or "", proc.stdout + proc.stderr)
