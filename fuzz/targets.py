"""Fuzz targets: one per reader, each ``run(data: bytes)`` from raw input to every output.

A target feeds its bytes to one reader (records JSONL, HAR, mitmproxy flows, pcap/pcapng,
YAML config, the SSE decoder, the HTTP/1.1 parser) and, for the capture readers, takes the
records on through the analysis to the text and JSON outputs, encoded as UTF-8 and as the
HTML report embeds them (``allow_nan=False``).  An input may be rejected with an
``MCPSniffError`` (that is what the CLI turns into exit 2); any other exception is a crash.

Seeds come from tests/data (``seeds(name)``); formats tests/data has no file of (HAR,
mitmproxy flows, configs) are made from it.  Used by fuzz/run.py (atheris, or the built-in
mutator) and by tests/test_fuzz.py (the regression inputs and the short run in CI).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests" / "data"
REGRESSIONS = DATA / "fuzz"  # every crash ever found: tests/data/fuzz/<target>/<name>
MAX_SEED = 48 * 1024  # bytes of a seed kept (fuzzing speed: a few ms per input)

_TMP = Path(tempfile.gettempdir())


def _scratch(suffix: str) -> Path:
    return _TMP / f"mcpsniff-fuzz-{os.getpid()}{suffix}"


def _outputs(records: Iterator[object]) -> None:
    """The analysis and every text output of it, as the CLI makes them."""
    from mcpsniff.analysis.diagnose import analyze_records
    from mcpsniff.config import Config
    from mcpsniff.report.jsondoc import render_json
    from mcpsniff.report.text import render_text

    analysis = analyze_records(records, Config(), sources=["fuzz"], compact=False)  # type: ignore[arg-type]
    render_text(analysis).encode("utf-8")
    render_json(analysis).encode("utf-8")
    json.dumps(analysis.to_dict(), ensure_ascii=True, allow_nan=False, default=str)  # as the HTML report embeds it


def run_records(data: bytes) -> None:
    from mcpsniff.records import guard_times, read_records

    text = data.decode("utf-8", errors="replace")  # as api.read_file opens a records file
    _outputs(guard_times(read_records(io.StringIO(text), name="fuzz.jsonl"), "fuzz.jsonl"))


def run_har(data: bytes) -> None:
    from mcpsniff.capture.har import read_har
    from mcpsniff.records import guard_times

    path = _scratch(".har")
    path.write_bytes(data)
    _outputs(guard_times(read_har(path), "fuzz.har"))


def run_flows(data: bytes) -> None:
    from mcpsniff.capture.mitm import read_flows
    from mcpsniff.records import guard_times

    path = _scratch(".mitm")
    path.write_bytes(data)
    _outputs(guard_times(read_flows(path), "fuzz.mitm"))


def run_pcap(data: bytes) -> None:
    from mcpsniff.capture.pcap import read_capture

    path = _scratch(".pcap")
    path.write_bytes(data)
    _outputs(read_capture(path))


_PATHS = ("/tasks/mcp", "/api/sprint/mcp", "/mcp", "/a/b/c/mcp/", "/" + "a" * 40 + "!")


def run_config(data: bytes) -> None:
    from mcpsniff.analysis.namespaces import NamespaceResolver
    from mcpsniff.config import load_config

    path = _scratch(".yaml")
    path.write_bytes(data)
    config = load_config(path)
    resolver = NamespaceResolver(config)
    for target in _PATHS:
        name = resolver.resolve(target, "127.0.0.1:5076")
        if name is not None:
            name.encode("utf-8")
    for pattern in config.redact.patterns:
        for target in _PATHS:
            pattern.sub("[redacted]", target)


def _pieces(data: bytes) -> Iterator[bytes]:
    """``data`` split where its first byte says (so the fuzzer also explores packet boundaries)."""
    if not data:
        return
    step = data[0] % 17 + 1
    body = data[1:]
    for i in range(0, len(body), step):
        yield body[i : i + step]


def run_sse(data: bytes) -> None:
    from mcpsniff.wire.sse import SseDecoder

    decoder = SseDecoder()
    for n, piece in enumerate(_pieces(data)):
        for event in decoder.feed(piece, float(n)):
            event.data.encode("utf-8")
            event.event.encode("utf-8")


def run_http1(data: bytes) -> None:
    from mcpsniff.wire.http1 import Http1Parser, RequestHead

    client, server = Http1Parser(True), Http1Parser(False, resync=bool(data[:1]) and data[0] & 1 == 1)
    half = len(data) // 2
    for n, piece in enumerate(_pieces(data[:half])):
        for event in client.feed(piece, float(n), n):
            if type(event) is RequestHead:
                server.expect(event.method)
    for n, piece in enumerate(_pieces(data[half:])):
        server.feed(piece, float(n), n)
    server.eof(0.0)


# ----------------------------------------------------------------------------- seeds


def _head(path: Path, limit: int = MAX_SEED) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit)


def _lines(path: Path, count: int) -> bytes:
    with path.open("rb") as fh:
        return b"".join(line for _, line in zip(range(count), fh))


def _records_seeds() -> list[bytes]:
    out = [_lines(p, 120) for p in sorted(DATA.glob("real/*/run.jsonl"))]
    out += [p.read_bytes() for p in sorted(DATA.glob("bad/*.jsonl"))]
    return out


def _pcap_seeds() -> list[bytes]:
    out = [p.read_bytes() for p in sorted(DATA.glob("bad/*.pcap*")) if p.stat().st_size <= MAX_SEED]
    out += [_head(p) for p in sorted(DATA.glob("real/*/capture.pcap*"))[:6]]
    return out


def _har_seeds() -> list[bytes]:
    """HAR exported (mcpsniff/report/har.py) from the records seeds."""
    from mcpsniff.analysis.diagnose import analyze_records
    from mcpsniff.config import Config
    from mcpsniff.records import read_records
    from mcpsniff.report.har import write_har

    out = []
    for seed in _records_seeds()[:3]:
        analysis = analyze_records(read_records(io.StringIO(seed.decode("utf-8", "replace"))), Config(), sources=["seed"])
        path = _scratch("-seed.har")
        write_har(analysis, path)
        out.append(path.read_bytes()[:MAX_SEED])
        path.unlink()
    return out


def _flow_seeds() -> list[bytes]:
    """mitmproxy flow files written with mitmproxy's own test flows (JSON and SSE responses, an error)."""
    from mitmproxy import io as mio
    from mitmproxy.http import Headers
    from mitmproxy.test import tflow, tutils

    def flow(body: bytes, ctype: bytes, err: bool = False) -> object:
        req = tutils.treq(host="127.0.0.1", port=5076, method=b"POST", path=b"/tasks/mcp", content=b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}')
        resp = tutils.tresp(headers=Headers(((b"content-type", ctype), (b"mcp-session-id", b"s1"))), content=body)
        f = tflow.tflow(req=req, resp=False if err else resp, err=err)
        f.server_conn.address = ("127.0.0.1", 5076)
        return f

    buf = io.BytesIO()
    writer = mio.FlowWriter(buf)
    writer.add(flow(b'{"jsonrpc":"2.0","id":1,"result":{}}', b"application/json"))
    writer.add(flow(b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\nretry: 1000\n\n', b"text/event-stream"))
    writer.add(flow(b"", b"text/plain", err=True))
    return [buf.getvalue()]


def _config_seeds() -> list[bytes]:
    """The README's example config, and one with every key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```yaml\n(namespaces:.*?)```", readme, re.S)
    out = [found.group(1).encode()] if found else []
    out.append(
        b"namespaces:\n  - path: '^/api/(?P<ns>[^/]+)/mcp$'\n    name: 'x-{ns}'\n  - port: 9000\n    name: legacy\n"
        b"thresholds: {give_up_after: 35, storm_min_reopens: 5, rebind_within: 60.5, hung_after: 10, schedule_margin: 0, sibling_margin: 10}\n"
        b"redact:\n  headers: [x-api-key]\n  patterns: ['sk-[A-Za-z0-9]{8,}']\nmax_body: 65536\n"
    )
    return out


def _sse_seeds() -> list[bytes]:
    return [
        b"\x05event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n",
        b"\x03: ping\n\nid: 7\nretry: 1500\ndata: a\ndata: b\n\n\xef\xbb\xbfdata: x\r\r",
    ]


def _http1_seeds() -> list[bytes]:
    req = b"POST /tasks/mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n0\r\n\r\n"
    return [b"\x07" + req + resp, b"\x02" + req * 2 + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!" + resp]


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]


TARGETS = {t.name: t for t in (
    Target("records", run_records, _records_seeds),
    Target("har", run_har, _har_seeds),
    Target("flows", run_flows, _flow_seeds),
    Target("pcap", run_pcap, _pcap_seeds),
    Target("config", run_config, _config_seeds),
    Target("sse", run_sse, _sse_seeds),
    Target("http1", run_http1, _http1_seeds),
)}


def expected(exc: BaseException) -> bool:
    """A rejection the CLI reports as a one-line error (exit 2), not a crash."""
    from mcpsniff.errors import MCPSniffError

    return isinstance(exc, MCPSniffError)


def check(name: str, data: bytes) -> BaseException | None:
    """Run one input; the unexpected exception it raised (None: handled)."""
    try:
        TARGETS[name].run(data)
    except Exception as exc:  # noqa: BLE001 - telling crashes from rejections is the point
        return None if expected(exc) else exc
    except RecursionError as exc:  # pragma: no cover - a subclass of Exception, kept for clarity
        return exc
    return None


def regressions(name: str) -> list[Path]:
    folder = REGRESSIONS / name
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def cleanup() -> None:
    for suffix in (".har", ".mitm", ".pcap", ".yaml"):
        _scratch(suffix).unlink(missing_ok=True)
