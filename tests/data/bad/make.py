"""Regenerates the bad-input corpus in this folder: ``uv run python tests/data/bad/make.py``.

Each file is small and broken in one way a user's file can be; tests/test_bad_input.py
says what `mcpsniff analyze` must do with it.  The pcaps start from a real-looking
session built with tests/pcapbuilder.py; the output is deterministic.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from mcptraffic import LAST_CHUNK, Client, Server, chunk, compact, http_head, sse_event
from pcapbuilder import Capture

from mcpsniff import records as R


def session(cap: Capture, server: Server, ns: str = "tasks") -> Client:
    """A namespace that sets up and makes two calls (on one keep-alive connection)."""
    client = Client(cap, server, ns)
    client.setup()
    for _ in range(2):
        cap.advance(0.7)
        client.call()
    return client


def small_capture(seed: int = 1) -> Capture:
    cap = Capture(seed=seed)
    server = Server(cap, tools=3)
    session(cap, server)
    return cap


def pcap_records(data: bytes) -> list[tuple[int, int]]:
    """(offset of the record header, captured length) of every record of a classic pcap."""
    out, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, incl))
        pos += 16 + incl
    return out


def odd_exchange(cap: Capture, server: Server, client: Client, request_body: bytes, response: bytes) -> None:
    """One POST of ``client``'s session whose bytes are written by hand."""
    conn = cap.connect(server.port)
    head = http_head(f"POST {client.target} HTTP/1.1", client.request_headers("POST", request_body))
    conn.send(True, head + request_body)
    cap.advance(0.004)
    conn.send(False, response)
    cap.advance(0.002)
    conn.close(by_client=True)


def sse_head(session_id: str, date: str) -> bytes:
    return http_head("HTTP/1.1 200 OK", [("date", date), ("server", "uvicorn"), ("cache-control", "no-cache, no-transform"), ("connection", "keep-alive"), ("content-type", "text/event-stream"), ("mcp-session-id", session_id), ("x-accel-buffering", "no"), ("Transfer-Encoding", "chunked")])


def with_odd_exchange(name: str, request_body: bytes, response_body: bytes) -> None:
    """A good session, one hand-made exchange, then one more good call."""
    cap = Capture(seed=7)
    server = Server(cap, tools=3)
    client = session(cap, server)
    cap.advance(0.5)
    odd_exchange(cap, server, client, request_body, sse_head(client.session_id or "", server._date()) + response_body)
    cap.advance(0.5)
    client.call()
    cap.write(HERE / name)


def main() -> None:
    (HERE / "empty.pcap").write_bytes(b"")
    (HERE / "text.txt").write_text("These are my notes about the MCP restart, not a capture.\nport 18201, four namespaces\n")

    base = small_capture()
    good = base.write(HERE / "_good.pcap").read_bytes()
    (HERE / "_good.pcap").unlink()
    (HERE / "truncated-header.pcap").write_bytes(good[:14])
    recs = pcap_records(good)
    pos, incl = recs[len(recs) // 2]
    (HERE / "truncated-packet.pcap").write_bytes(good[: pos + 16 + incl // 2])
    corrupt = bytearray(good)
    pos, _ = recs[len(recs) // 2]
    struct.pack_into("<II", corrupt, pos + 8, 0x7FFFFFF0, 0x7FFFFFF0)
    (HERE / "corrupt-length.pcap").write_bytes(bytes(corrupt))

    # pcapng with a block type nobody defines, between two packets
    ng = base.write(HERE / "_good.pcapng", fmt="pcapng").read_bytes()
    (HERE / "_good.pcapng").unlink()
    pos, blocks = 0, []
    while pos < len(ng):
        length = struct.unpack_from("<I", ng, pos + 4)[0]
        blocks.append(ng[pos : pos + length])
        pos += length
    unknown = struct.pack("<II", 0x0BADB10C, 16) + b"junk" + struct.pack("<I", 16)
    middle = len(blocks) // 2
    (HERE / "unknown-block.pcapng").write_bytes(b"".join(blocks[:middle]) + unknown + b"".join(blocks[middle:]))

    # TCP that is not HTTP: a TLS ClientHello-like record and an SSH banner exchange
    cap = Capture(seed=3)
    tls = cap.connect(443)
    tls.send(True, bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + b"\x00\x00\x02\x13\x01\x01\x00")
    tls.send(False, bytes.fromhex("160303007a020000760303") + bytes(range(32, 64)))
    tls.close(by_client=True)
    ssh = cap.connect(22)
    ssh.send(False, b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n")
    ssh.send(True, b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n")
    ssh.send(True, b"\x00\x00\x05\xdc\x06\x14" + bytes(64))
    ssh.reset(by_client=False)
    cap.write(HERE / "non-http.pcap")

    call = compact({"method": "tools/call", "params": {"name": "ping", "arguments": {}}, "jsonrpc": "2.0", "id": 50}).encode()
    result = compact({"jsonrpc": "2.0", "id": 50, "result": {"content": [{"type": "text", "text": "pong"}], "isError": False}})
    # chunk size that is not hex, then nonsense
    with_odd_exchange("broken-chunked.pcap", call, b"zz\r\nevent: message\r\ndata: {}\r\n\r\n\r\n1f\r\nshort\r\n")
    # SSE with garbage lines around a valid response event
    garbage = b"\x00\x01\x02 binary junk\r\nno colon on this line\r\n: a comment\r\nweird-field: 1\r\n\r\n" + sse_event(result)
    with_odd_exchange("sse-garbage.pcap", call, chunk(garbage) + LAST_CHUNK)
    # JSON-RPC that is not JSON, both ways
    with_odd_exchange("invalid-json.pcap", b'{"method":"tools/call","params":{"name":"ping",', chunk(sse_event('{"jsonrpc":"2.0","id":51,"result":')) + LAST_CHUNK)

    # records files (the mitmproxy path)
    lines = [
        R.Meta(source="mitm", origin="127.0.0.1:18201"),
        R.ConnEvent(t=100.0, conn="c1", event="opened", client="127.0.0.1:40000", server="127.0.0.1:18201"),
        R.Request(t=100.01, conn="c1", xid="c1.1", method="POST", target="/tasks/mcp", headers=(("content-type", "application/json"),), body=compact({"method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}, "jsonrpc": "2.0", "id": 0}), server="127.0.0.1:18201"),
        R.Response(t=100.02, xid="c1.1", status=200, reason="OK", headers=(("content-type", "text/event-stream"), ("mcp-session-id", "abc123")), stream=True),
        R.SseEvent(t=100.03, xid="c1.1", event="message", data=compact({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "lab-tasks", "version": "1"}}})),
        R.End(t=100.04, xid="c1.1", outcome="complete"),
    ]
    text = [R.to_json(r) for r in lines]
    broken = text[:3] + ['{"kind": "response", "t": 100.02, "xid": "c1.1", "status": 2'] + text[3:]
    (HERE / "broken-line.jsonl").write_text("\n".join(broken) + "\n")
    header = json.loads(text[0])
    header["version"] = 99
    (HERE / "wrong-version.jsonl").write_text("\n".join([json.dumps(header), *text[1:]]) + "\n")


if __name__ == "__main__":
    main()
