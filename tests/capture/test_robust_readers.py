"""Issue 13: odd digits in HTTP/SSE, pcapng timestamps out of range, and broken mitmproxy
flow files (huge length prefixes, deep nesting, missing keys): warnings, never a crash.
Every capture and flow file is written here."""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mitmproxy import io as mio
from mitmproxy.http import Headers
from mitmproxy.io import tnetstring
from mitmproxy.test import tflow, tutils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pcapbuilder import Capture  # noqa: E402

from mcpsniff.cli import main  # noqa: E402

INIT = b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}'


def request(extra: bytes = b"", body: bytes = INIT) -> bytes:
    return b"POST /tasks/mcp HTTP/1.1\r\nHost: 127.0.0.1:5076\r\nContent-Type: application/json\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def sse_response(events: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nmcp-session-id: s1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(events), events))


def capture(tmp_path: Path, exchanges: list[tuple[bytes, bytes]], fmt: str = "pcap", keep_alive: bool = False) -> Path:
    """One connection per exchange (or all on one keep-alive connection)."""
    cap = Capture()
    tcp = None
    for req, resp in exchanges:
        if tcp is None or not keep_alive:
            tcp = cap.connect(5076)
            tcp.handshake()
        cap.advance(0.01)
        tcp.send(True, req)
        cap.advance(0.01)
        tcp.send(False, resp)
        cap.advance(0.01)
        if not keep_alive:
            tcp.close(by_client=True)
        cap.advance(0.5)
    return cap.write(tmp_path / f"c.{fmt}", fmt=fmt)


def analyze(path: Path) -> dict:
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json", "--full"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


GOOD = (request(), sse_response(b'event: message\r\ndata: {"jsonrpc":"2.0","id":0,"result":{}}\r\n\r\n'))


def test_content_length_of_4400_digits_is_a_bad_header_not_a_crash(tmp_path: Path) -> None:
    bad = b"POST /tasks/mcp HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 4400 + b"\r\n\r\n" + INIT
    doc = analyze(capture(tmp_path, [GOOD, (bad, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), GOOD], keep_alive=True))
    assert any("bad Content-Length" in w for w in doc["warnings"]), doc["warnings"]
    assert [ns["name"] for ns in doc["namespaces"]] == ["tasks"]


def test_sse_retry_of_5000_digits_is_ignored_with_a_warning(tmp_path: Path) -> None:
    events = b"retry: " + b"9" * 5000 + b'\r\nevent: message\r\ndata: {"jsonrpc":"2.0","id":0,"result":{}}\r\n\r\n'
    doc = analyze(capture(tmp_path, [(request(), sse_response(events))]))
    assert any("SSE retry field(s) of more than 18 digits ignored" in w for w in doc["warnings"]), doc["warnings"]
    ticks = doc["namespaces"][0]["exchanges"][0]["events"]
    assert ticks and all(t.get("retry") is None for t in ticks)


def _pcapng_blocks(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos + 8 <= len(data):
        code, length = struct.unpack_from("<II", data, pos)
        out.append((code, data[pos : pos + length]))
        pos += length
    return out


def _block(code: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", code, length) + body + struct.pack("<I", length)


@pytest.mark.parametrize("how", ["offset", "ticks"])
def test_pcapng_times_out_of_range_get_the_previous_time(tmp_path: Path, how: str) -> None:
    path = capture(tmp_path, [GOOD, GOOD], fmt="pcapng")
    blocks = _pcapng_blocks(path.read_bytes())
    out = []
    epbs = 0
    for code, raw in blocks:
        if code == 1 and how == "offset":  # interface: if_tsoffset of 2^62 s
            linktype, snaplen = struct.unpack_from("<HxxI", raw, 8)
            options = struct.pack("<HHq", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0)
            raw = _block(1, struct.pack("<HxxI", linktype, snaplen) + options)
        elif code == 6 and how == "ticks":
            epbs += 1
            if epbs in (3, 7):  # two packets with a tick count of 2^64 - 1 microseconds
                raw = raw[:12] + b"\xff" * 8 + raw[20:]
        out.append(raw)
    path.write_bytes(b"".join(out))
    doc = analyze(path)
    assert any("timestamp outside 1970..2106" in w for w in doc["warnings"]), doc["warnings"]
    assert [ns["name"] for ns in doc["namespaces"]] == ["tasks"]
    result = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code in (0, 1), result.stderr
    result = CliRunner().invoke(main, ["export", str(path), "--har", str(tmp_path / "x.har")])
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------------------------ mitmproxy flow files


def flow_bytes() -> bytes:
    req = tutils.treq(host="127.0.0.1", port=5076, method=b"POST", path=b"/tasks/mcp", content=INIT)
    resp = tutils.tresp(headers=Headers(((b"content-type", b"application/json"), (b"mcp-session-id", b"s1"))), content=b'{"jsonrpc":"2.0","id":0,"result":{}}')
    f = tflow.tflow(req=req, resp=resp)
    f.server_conn.address = ("127.0.0.1", 5076)
    buf = io.BytesIO()
    mio.FlowWriter(buf).add(f)
    return buf.getvalue()


def run_flows(tmp_path: Path, data: bytes) -> tuple[int, str, str]:
    path = tmp_path / "flows.mitm"
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_tnetstring_length_of_99999999999_is_not_allocated(tmp_path: Path) -> None:
    code, out, err = run_flows(tmp_path, flow_bytes() + b"99999999999:" + b"x" * 100)
    assert code in (0, 1), err
    assert any("damaged flow after 1 flow" in w for w in json.loads(out)["warnings"])
    code, out, err = run_flows(tmp_path, b"99999999999:" + b"x" * 100)
    assert code == 2 and "not a readable mitmproxy flow file" in err


def test_flow_nested_100k_deep(tmp_path: Path) -> None:
    deep = b"0:]" * 1
    for _ in range(100_000):
        deep = b"%d:%s]" % (len(deep), deep)
    code, out, err = run_flows(tmp_path, flow_bytes() + deep)
    assert code in (0, 1), err
    assert any("nested too deeply" in w for w in json.loads(out)["warnings"])


@pytest.mark.parametrize("drop", ["tls_version", "timestamp_start", "status_code"])
def test_flow_with_a_missing_key(tmp_path: Path, drop: str) -> None:
    state = tnetstring.loads(flow_bytes())

    def without(value: object) -> object:
        if isinstance(value, dict):
            return {k: without(v) for k, v in value.items() if k not in (drop, drop.encode())}
        if isinstance(value, list):
            return [without(v) for v in value]
        return value

    broken = tnetstring.dumps(without(state))
    code, out, err = run_flows(tmp_path, flow_bytes() + broken)
    assert code in (0, 1), err
    doc = json.loads(out)
    assert doc["namespaces"] and any("flow" in w for w in doc["warnings"]), doc["warnings"]


def test_flow_with_wrong_types_is_skipped(tmp_path: Path) -> None:
    state = tnetstring.loads(flow_bytes())
    state["response"]["status_code"] = 10**30  # tnetstring ints are unbounded
    state["request"]["timestamp_start"] = float("inf")
    code, out, err = run_flows(tmp_path, tnetstring.dumps(state) + flow_bytes())
    assert code in (0, 1), err
    assert any("flow 1 skipped" in w for w in json.loads(out)["warnings"]), out[-2000:]


def test_flow_with_non_utf8_header_bytes_keeps_them_escaped(tmp_path: Path) -> None:
    req = tutils.treq(host="127.0.0.1", port=5076, method=b"POST", path=b"/tasks/mcp", content=INIT, headers=Headers(((b"x-bin", b"caf\xe9"), (b"content-type", b"application/json"))))
    f = tflow.tflow(req=req, resp=tutils.tresp())
    f.server_conn.address = ("127.0.0.1", 5076)
    buf = io.BytesIO()
    mio.FlowWriter(buf).add(f)
    path = tmp_path / "bin.mitm"
    path.write_bytes(buf.getvalue())
    result = CliRunner().invoke(main, ["analyze", str(path), "--format", "json", "--full"])
    assert result.exit_code in (0, 1), result.stderr
    headers = json.loads(result.stdout)["namespaces"][0]["exchanges"][0]["request_headers"]
    assert ["x-bin", "caf\\xe9"] in [list(h) for h in headers]
