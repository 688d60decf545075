"""Record one real server restart on loopback: tcpdump, a server, client hosts, truth.json.

Standard library only (run it with any python3, as root for tcpdump):

    python3 mcpsniff/demo/modern/capture.py --out /tmp/modern/captures/sessionless-healthy \\
        --name sessionless-healthy --description "..." \\
        --server 'uv run --no-project --with mcp==2.3.0 --with uvicorn python mcpsniff/demo/modern/server.py --port {port}' \\
        --client 'uv run --no-project --with mcp==2.3.0 python mcpsniff/demo/modern/clients.py --base {base} --log {log}'

What it does, in order: ``tcpdump -i lo -U -w capture.pcap tcp port P``; the server (waits
for its ``ready <port> <boot>`` line, no probe connection); every ``--client`` (each writes
its own JSON-lines log, ``{log}``); ``--warmup`` s of traffic; SIGTERM to the server's process
group (``server_stopped_at``; uvicorn closes its listener at once) and wait for it to exit
(``server_exited_at``); the replacement server, spawned at the start of the warm-up with
``--start-at <SIGTERM + down>`` so it has imported by then, listens exactly ``--down`` s after
the SIGTERM (``server_started_at`` = that time, ``server_ready_at`` = its ready line);
``--settle`` s more; SIGINT to the clients (they write a summary line); SIGTERM to the
server; tcpdump stopped.

``client.log`` is every client log merged by time.  ``truth.json``: per namespace
``expected`` is what the client itself ended in: ``rebound`` when its own log has a success
after ``server_ready_at`` (a ``call_ok`` in a client generation that listed its tools or, for
a listen-only policy, a ``listen_open``); else ``stalled``.  ``listen_reissued`` says whether a
``subscriptions/listen`` stream the restart broke was opened again.  ``{cwd}`` in a command is
replaced by ``--cwd`` (default: the repository root).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
NAMESPACES = ("tasks", "dev-agents", "sprint", "ci-infra")
REPO = Path(__file__).resolve().parents[3]

# policy -> signature label when the namespace rebound / stalled (the client's own policy names)
SIGNATURES: dict[str, tuple[str, str]] = {
    "rebuild": ("rebuilt-client", "client-gave-up"),
    "dies": ("rebuilt-client", "client-died"),
    "listen-only": ("re-listened", "subscription-not-reissued"),
    "listen-dies": ("re-listened", "subscription-not-reissued"),
    "healthy": ("new-session", "gave-up"),
    "cc": ("new-session", "gave-up"),
    # TS 2.x host: the same Client keeps calling; a sessionless client needs nothing else
    "keep": ("calls-resumed-listen-not-reissued", "stalled"),
    "relisten": ("calls-resumed-relistened", "stalled"),
}
LISTEN_ONLY = {"listen-only", "listen-dies"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, args: list[str], log: Path, cwd: Path, stdout_pipe: bool = False) -> None:
        self.err = open(log, "ab")
        self.p = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.err,
            stderr=self.err,
            start_new_session=True,
        )

    def send(self, sig: int) -> None:
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 8.0) -> None:
        if self.p.poll() is None:
            self.send(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.p.wait()
        self.err.close()


def wait_ready(proc: Proc, timeout: float = 40.0) -> tuple[float, str]:
    assert proc.p.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.p.poll() is None:
        if select.select([proc.p.stdout], [], [], 0.1)[0]:
            line = proc.p.stdout.readline().decode(errors="replace").strip()
            if line.startswith("ready"):
                return time.time(), line.split()[2]
    raise SystemExit(f"server did not say ready (exit code {proc.p.poll()})")


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return events


def truth_for(events: list[dict[str, Any]], stopped_at: float, ready_at: float) -> dict[str, dict[str, Any]]:
    policies: dict[str, str] = {}
    clients: dict[str, str] = {}
    for ev in events:
        if ev.get("event") == "start":
            for ns, pol in (ev.get("detail", {}).get("policies") or {}).items():
                policies[ns] = pol
                clients[ns] = ev["detail"].get("client", "?")
    out: dict[str, dict[str, Any]] = {}
    for ns in NAMESPACES:
        if ns not in policies:
            continue
        pol = policies[ns]
        listed: set[int] = set()
        revision = None
        rebound_at = None
        listen_before = listen_after = False
        for ev in events:
            if ev.get("ns") != ns:
                continue
            d, kind = ev.get("detail", {}), ev.get("event")
            gen = d.get("gen", 0) or 0
            if kind == "connected":
                revision = d.get("era") or ("2025-era sessions" if d.get("session_id") else revision)
            if kind == "tools_listed":
                listed.add(gen)
            if kind == "listen_open":
                listen_before |= ev.get("t", 0) < stopped_at
                listen_after |= ev.get("t", 0) > ready_at
            ok = (kind == "listen_open") if pol in LISTEN_ONLY else (kind == "call_ok" and gen in listed)
            if ok and ev.get("t", 0) > ready_at and rebound_at is None:
                rebound_at = ev["t"]
        expected = "rebound" if rebound_at is not None else "stalled"
        good, bad = SIGNATURES.get(pol, ("rebound", "stalled"))
        if revision and revision != "2026-07-28 sessionless" and good == "rebuilt-client":
            good = "new-session"  # a 2025-era (or fallback) client re-initialized in a new session
        if revision and revision != "2026-07-28 sessionless" and pol == "keep":
            bad = "stale-session-404-loop"  # the same 2025-era Client keeps its dead session id
        out[ns] = {
            "expected": expected,
            "signature": good if expected == "rebound" else bad,
            "revision": revision or "2025-era sessions",
            "client": clients[ns],
            "policy": pol,
            "first_ok_after_restart": rebound_at,
            # a subscriptions/listen stream broken by the restart: opened again afterwards? (None: had none)
            "listen_reissued": listen_after if listen_before else None,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--server", required=True, help="server command; {port} is replaced; --start-at EPOCH is appended for the restart")
    ap.add_argument("--client", action="append", required=True, help="client command; {base}, {port}, {log} are replaced (repeatable)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--down", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=20.0)
    ap.add_argument("--cwd", type=Path, default=REPO)
    ap.add_argument("--iface", default="lo")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    for stale in [out / "capture.pcap", out / "client.log", *logs.glob("*")]:
        stale.unlink(missing_ok=True)
    port = args.port or free_port()
    base = f"http://{HOST}:{port}"
    fmt = {"port": str(port), "base": base, "cwd": str(args.cwd)}

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    dump = subprocess.Popen(["tcpdump", "-i", args.iface, "-U", "-w", str(out / "capture.pcap"), "tcp", "port", str(port)], stdout=subprocess.DEVNULL, stderr=open(logs / "tcpdump.log", "wb"))
    time.sleep(1.0)
    server_cmd = shlex.split(args.server.format(**fmt))
    server = Proc(server_cmd, logs / "server-1.log", args.cwd, stdout_pipe=True)
    first_ready, first_boot = wait_ready(server)
    say(f"server up on {base} boot={first_boot}")
    clients: list[Proc] = []
    client_logs: list[Path] = []
    for i, tmpl in enumerate(args.client):
        log = logs / f"client-{i + 1}.log"
        client_logs.append(log)
        cmd = shlex.split(tmpl.format(log=str(log), **fmt))
        clients.append(Proc(cmd, logs / f"client-{i + 1}.stderr", args.cwd))
    # warm-up counts from the first successful call of every client (their start-up takes a while)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        evs = [ev for log in client_logs for ev in read_events(log)]
        started = {ev["ns"] for ev in evs if ev.get("event") in ("call_ok", "listen_open")}
        wanted = {ns for ev in evs if ev.get("event") == "start" for ns in ev["detail"].get("policies", {})}
        if wanted and wanted <= started and len([e for e in evs if e.get("event") == "start"]) == len(clients):
            break
        time.sleep(0.2)
    # The replacement process starts now: it imports (mcp 2.x takes ~4 s) and sleeps until
    # --start-at, so the listener is gone for exactly --down s after the SIGTERM.
    planned_stop = time.time() + args.warmup
    start_at = planned_stop + args.down
    server2 = Proc([*server_cmd, "--start-at", f"{start_at:.3f}"], logs / "server-2.log", args.cwd, stdout_pipe=True)
    say(f"clients running; warm-up {args.warmup} s")
    time.sleep(max(0.0, planned_stop - time.time()))
    stopped_at = time.time()
    say("SIGTERM server")
    server.stop(signal.SIGTERM)
    exited_at = time.time()
    if exited_at > start_at - 0.2:
        say(f"warning: the old server took {exited_at - stopped_at:.1f} s to exit; the new one may not bind")
    server = server2
    ready_at, boot = wait_ready(server)
    if ready_at - start_at > 0.5:
        say(f"warning: the new server listened {ready_at - start_at:.1f} s late (slow start-up)")
    say(f"server back boot={boot} ({ready_at - stopped_at:.1f} s after SIGTERM, {ready_at - exited_at:.1f} s after exit); settle {args.settle} s")
    time.sleep(args.settle)
    for c in clients:
        c.send(signal.SIGINT)
    for c in clients:
        c.stop(signal.SIGINT, timeout=10)
    server.stop(signal.SIGTERM)
    time.sleep(0.5)
    dump.send_signal(signal.SIGINT)
    dump.wait(10)

    events = sorted((ev for log in client_logs for ev in read_events(log)), key=lambda e: e.get("t", 0))
    with open(out / "client.log", "w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")
    per_ns = truth_for(events, stopped_at, ready_at)
    client_names = sorted({v["client"] for v in per_ns.values()})
    truth = {
        "scenario": args.name,
        "description": args.description,
        "port": port,
        "client": " + ".join(client_names),
        "restart": {
            "server_stopped_at": stopped_at,
            "server_exited_at": exited_at,
            # when the new process listened: as planned, or (slow start-up) just before its ready line
            "server_started_at": start_at if ready_at - start_at <= 0.5 else ready_at - 0.02,
            "server_planned_start_at": start_at,
            "server_ready_at": ready_at,
            "boots": [first_boot, boot],
        },
        "commands": {"server": args.server, "clients": args.client},
        "namespaces": per_ns,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    size = (out / "capture.pcap").stat().st_size
    say(f"wrote {out}/capture.pcap ({size} bytes), client.log, truth.json")
    for ns, t in per_ns.items():
        say(f"  {ns:<11} {t['expected']:<8} {t['signature']:<26} {t['revision']} ({t['client']}, {t['policy']})")


if __name__ == "__main__":
    main()
