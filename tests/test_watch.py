"""``mcpsniff watch`` (and capture --watch, proxy --watch): states shown as records arrive.

- the engine on real captures, fed record by record (no processes): the state lines each
  namespace goes through, the --on-stall hook once, final verdicts = analyze;
- a records file written as the test goes (`watch --follow`), with --on-stall and --exit-on-stall;
- a live demo run (real TS SDK clients, real server restart, tcpdump): `watch --port` capturing
  live and `watch --follow` of tcpdump's file at the same time;
- `proxy --watch` in front of a real SDK server with `capture --watch` on its upstream port.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcpsniff.api import analyze_files, read_file
from mcpsniff.config import Config
from mcpsniff.report.live import LineView
from mcpsniff.watch import Watch

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} +\+[\d.]+s (\S+) +(connected|disrupted|retrying|rebound|stalled) +(.*)$")
HOOK = "import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({k: v for k, v in os.environ.items() if k.startswith('MCPSNIFF_')}) + chr(10))"


def raw_sockets() -> bool:
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW):
            return True
    except PermissionError:
        return False


needs_raw = pytest.mark.skipif(not raw_sockets(), reason="live capture needs raw sockets (root or CAP_NET_RAW)")


def sequences(text: str) -> dict[str, list[tuple[str, str]]]:
    """namespace -> [(state, detail), ...] from the state lines of a watch's output."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return out


def states(seq: list[tuple[str, str]]) -> list[str]:
    """The states in order, repeats (a new attempt, a new session) folded."""
    out: list[str] = []
    for state, _ in seq:
        if not out or out[-1] != state:
            out.append(state)
    return out


def verdicts(analysis: object) -> dict[str, tuple[str, str, str]]:
    return {ns.name: (ns.diagnosis.verdict, ns.diagnosis.basis, ns.diagnosis.signature) for ns in analysis.namespaces}  # type: ignore[attr-defined]


def hook_command(out: Path) -> str:
    script = out.with_suffix(".py")
    script.write_text(HOOK + "\n")
    return f"{sys.executable} {script} {out}"


def hook_calls(out: Path, wait: float = 10.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + wait
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


# -- the engine on real captures ------------------------------------------------------------------
@pytest.mark.parametrize(("case", "stalled"), [("ts-idle-get", "sprint"), ("ts-one-stale", "sprint"), ("sessionless-one-dies", "sprint")])
def test_state_lines_of_a_real_capture_fed_record_by_record(tmp_path: Path, case: str, stalled: str) -> None:
    shown = io.StringIO()
    hooks = tmp_path / "hooks.jsonl"
    watch = Watch(Config(), [case], LineView(shown), on_stall=hook_command(hooks), interval=1e9)
    nxt = None
    for rec in read_file(REAL / case / "capture.pcap"):
        watch.feed(rec)
        t = getattr(rec, "t", None)
        if t is not None and (nxt is None or t >= nxt):
            nxt = t + 0.5  # a snapshot every half second of capture time
            watch.tick()
    final = watch.finish()
    assert verdicts(final) == verdicts(analyze_files([REAL / case / "capture.pcap"], full=False))
    truth = {name: ns["expected"] for name, ns in json.loads((REAL / case / "truth.json").read_text())["namespaces"].items()}
    seqs = sequences(shown.getvalue())
    for name, expected in truth.items():
        got = states(seqs[name])
        assert got[0] == "connected", (name, seqs[name])
        assert got[-1] == expected, (name, seqs[name])
        assert "disrupted" in got or "retrying" in got, (name, seqs[name])
        if expected == "rebound":
            assert "stalled" not in got, (name, seqs[name])  # never a false alarm on the way
            assert re.search(r"\d\.\d\ds after the server came back", seqs[name][-1][1])
    stall_lines = [detail for state, detail in seqs[stalled] if state == "stalled"]
    assert len(stall_lines) == 1
    calls = hook_calls(hooks)
    assert [c["MCPSNIFF_NAMESPACE"] for c in calls] == [stalled]
    diag = next(ns.diagnosis for ns in final.namespaces if ns.name == stalled)
    assert calls[0]["MCPSNIFF_SIGNATURE"] == diag.signature and calls[0]["MCPSNIFF_BASIS"] == diag.basis
    assert calls[0]["MCPSNIFF_STALL_POINT"] == diag.stall_point.describe(final.t0)
    assert watch.counters.snapshots > 20


def _lines(case: str, fork: bool) -> str:
    shown = io.StringIO()
    watch = Watch(Config(), [case], LineView(shown), interval=1e9)
    watch.fork_above = 0.0 if fork else None
    nxt = None
    for rec in read_file(REAL / case / "capture.pcap"):
        watch.feed(rec)
        t = getattr(rec, "t", None)
        if t is not None and (nxt is None or t >= nxt):
            nxt = t + 0.5
            watch.tick()
            watch.settle()
    watch.finish()
    assert (watch.counters.forked > 20) if fork else watch.counters.forked == 0
    return shown.getvalue()


def test_snapshots_taken_in_a_child_process_show_the_same() -> None:
    """Big states are judged in a forked child while records go on being read: same lines."""
    assert _lines("ts-one-stale", fork=True) == _lines("ts-one-stale", fork=False)


def test_retrying_names_the_attempt_and_the_schedule() -> None:
    shown = io.StringIO()
    watch = Watch(Config(), ["ts-idle-get"], LineView(shown), interval=1e9)
    nxt = None
    for rec in read_file(REAL / "ts-idle-get" / "capture.pcap"):
        watch.feed(rec)
        t = getattr(rec, "t", None)
        if t is not None and (nxt is None or t >= nxt):
            nxt = t + 0.5
            watch.tick()
    watch.finish()
    tasks = [detail for state, detail in sequences(shown.getvalue())["tasks"] if state == "retrying"]
    assert tasks and all(re.match(r"attempt \d of 5 \(Claude Code reconnect", d) for d in tasks)
    assert [int(d.split()[1]) for d in tasks] == sorted(int(d.split()[1]) for d in tasks)  # attempts only go up
    connected = sequences(shown.getvalue())["tasks"][0][1]
    assert re.match(r"session [0-9a-f]{12}…, 2025-11-25, 2025 sessions, ts-sdk", connected)


# -- a growing records file ---------------------------------------------------------------------
def _watch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcpsniff", "watch", "--view", "lines", *args]


def test_watch_follows_a_records_file_as_it_is_written(tmp_path: Path) -> None:
    """run.jsonl of a real proxied demo run (mitmdump + addon), written here at 4x its speed."""
    src = (REAL / "ts-idle-get" / "run.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "run.jsonl"
    path.write_text(src[0])
    hooks = tmp_path / "hooks.jsonl"
    plain = subprocess.Popen(_watch_cmd("--follow", str(path), "--interval", "0.2", "--on-stall", hook_command(hooks)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    quick = subprocess.Popen(_watch_cmd("--follow", str(path), "--interval", "0.2", "--exit-on-stall"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        times = [json.loads(line).get("t") for line in src]
        start, first = time.monotonic(), next(t for t in times if t is not None)
        with path.open("a") as fh:
            for line, t in zip(src[1:], times[1:]):
                if t is not None:
                    time.sleep(max(0.0, (t - first) / 4 - (time.monotonic() - start)))
                fh.write(line[: len(line) // 2])  # a line is written in two goes
                fh.flush()
                fh.write(line[len(line) // 2 :])
                fh.flush()
        stopped_early = quick.poll() is not None  # before the file was written to its end
        quick_out, quick_err = quick.communicate(timeout=60)
        time.sleep(1.0)
        plain.send_signal(signal.SIGTERM)
        out, err = plain.communicate(timeout=60)
    finally:
        for proc in (plain, quick):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert plain.returncode == 1, err  # sprint stalled
    seqs = sequences(out)
    assert states(seqs["sprint"])[-1] == "stalled" and sum(s == "stalled" for s, _ in seqs["sprint"]) == 1
    for ns in ("tasks", "dev-agents", "ci-infra"):
        assert states(seqs[ns])[-1] == "rebound" and "stalled" not in states(seqs[ns]), seqs[ns]
    assert [c["MCPSNIFF_NAMESPACE"] for c in hook_calls(hooks)] == ["sprint"]
    final = analyze_files([path], full=False)
    report = out.split("\n\n", 1)[1] if "\n\n" in out else out
    for ns in final.namespaces:  # the report it ends with is analyze's
        assert re.search(rf"^{re.escape(ns.name)} +{ns.diagnosis.verdict} ", report, re.M), report
    # --exit-on-stall: stopped at sprint's stall (what the file held by then read), exit 1
    assert quick.returncode == 1 and stopped_early, quick_err
    assert states(sequences(quick_out)["sprint"])[-1] == "stalled"


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in (
        ([], "give --port PORT (live capture) or --follow FILE"),
        (["--follow", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "o.pcapng"), "--duration", "1"], "-o is for the live capture"),
        (["--follow", str(ROOT / "README.md"), "--duration", "5"], "--follow reads"),
    ):
        proc = subprocess.run(_watch_cmd(*args), capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# -- a live demo run -------------------------------------------------------------------------
def _read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> re.Match[str]:
    """Read the process's stderr (bounded) until ``pattern`` matches a line."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            m = re.search(pattern, seen.decode(errors="replace"))
            if m:
                return m
    raise AssertionError(f"{pattern!r} not seen in: {seen.decode(errors='replace')[-2000:]}")


@needs_raw
def test_watch_a_live_demo_run(tmp_path: Path) -> None:
    """`mcpsniff demo --scenario ts-idle-get --mode direct`: TS SDK clients, the server restarted;
    sprint's idle GET stream gives up (stalled), the others rebind. Watched live on the server
    port (with --on-stall) and, at the same time, by following tcpdump's capture (--exit-on-stall)."""
    out = tmp_path / "demo"
    demo = subprocess.Popen([sys.executable, "-m", "mcpsniff", "demo", "--scenario", "ts-idle-get", "--mode", "direct", "-o", str(out), "--no-html"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True)
    procs: list[subprocess.Popen[bytes]] = [demo]
    hooks = tmp_path / "hooks.jsonl"
    pcapng = tmp_path / "live.pcapng"
    try:
        port = int(_read_until(demo, r"capture: \S*tcpdump .* tcp port (\d+)", 120).group(1))
        os.killpg(demo.pid, signal.SIGSTOP)  # the server starts only once the watch captures
        live = subprocess.Popen(_watch_cmd("--port", str(port), "-o", str(pcapng), "--on-stall", hook_command(hooks)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        procs.append(live)
        try:
            _read_until(live, r"mcpsniff: watching tcp port", 60)
        finally:
            os.killpg(demo.pid, signal.SIGCONT)
        follow = subprocess.Popen(_watch_cmd("--follow", str(out / "capture.pcap"), "--exit-on-stall"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        procs.append(follow)
        demo_out, demo_err = demo.communicate(timeout=240)
        assert demo.returncode == 0, demo_err.decode()[-3000:]
        live.send_signal(signal.SIGTERM)
        live_out, live_err = (b.decode() for b in live.communicate(timeout=120))
        follow.send_signal(signal.SIGTERM)  # (it has stopped by itself at the stall)
        follow_out, follow_err = (b.decode() for b in follow.communicate(timeout=120))
    finally:
        for proc in procs:
            if proc.poll() is None:
                with_group = proc is demo
                (os.killpg(proc.pid, signal.SIGKILL) if with_group else proc.kill())
                proc.wait()
    summary = json.loads((out / "summary.json").read_text())
    truth = {ns: row["client"] for ns, row in summary["namespaces"].items()}
    assert truth == {"tasks": "rebound", "dev-agents": "rebound", "sprint": "stalled", "ci-infra": "rebound"}
    # live: each namespace connected first, then disrupted/retrying, then what its client really did
    assert live.returncode == 1, live_err[-2000:]
    seqs = sequences(live_out)
    for ns, outcome in truth.items():
        got = states(seqs[ns])
        assert got[0] == "connected" and got[-1] == outcome, (ns, seqs[ns])
        assert set(got[1:-1]) <= {"disrupted", "retrying"} and len(got) >= 3, (ns, seqs[ns])
    final = analyze_files([pcapng], ports=[port], full=False)
    assert verdicts(final) == verdicts(analyze_files([out / "capture.pcap"], ports=[port], full=False))  # scapy's file = tcpdump's
    for ns in final.namespaces:  # the report the watch ended with is analyze's of the file it wrote
        assert re.search(rf"^{re.escape(ns.name)} +{ns.diagnosis.verdict} ", live_out, re.M), live_out[-3000:]
    from mcpsniff.api import add_streams
    from mcpsniff.report.text import render_text

    add_streams(final, [pcapng])
    wireshark = re.findall(r"in Wireshark: .*", render_text(final))  # frame, time from the file's first packet, tcp.stream
    assert wireshark and all(line in live_out for line in wireshark), (wireshark, live_out[-3000:])
    sprint = next(ns.diagnosis for ns in final.namespaces if ns.name == "sprint")
    calls = hook_calls(hooks)
    assert len(calls) == 1 and calls[0]["MCPSNIFF_NAMESPACE"] == "sprint", calls
    assert calls[0]["MCPSNIFF_SIGNATURE"] == sprint.signature and calls[0]["MCPSNIFF_BASIS"] == sprint.basis and calls[0]["MCPSNIFF_STALL_POINT"]
    written = re.search(r"capture process: (\d+) packets written.*?(\d+) packets analyzed|(\d+) packets analyzed.*?capture process: (\d+) packets written", live_err)
    assert written and len(set(g for g in written.groups() if g)) == 1, live_err[-1000:]  # every packet written was analyzed (kernel drops: benchmarks/watch_load.py)
    # follow of tcpdump's file with --exit-on-stall: it stopped at sprint's stall
    assert follow.returncode == 1, follow_err[-2000:]
    fseqs = sequences(follow_out)
    assert states(fseqs["sprint"])[-1] == "stalled"
    assert all("stalled" not in states(fseqs.get(ns, [])) for ns in ("tasks", "dev-agents", "ci-infra"))


# -- proxy --watch and capture --watch ------------------------------------------------------------
@needs_raw
def test_proxy_watch_in_front_of_capture_watch(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from mcp_lab import LabServer, call_text, free_port, lab_session

    import asyncio

    with LabServer(("tasks", "sprint")) as lab:
        listen = free_port()
        records, pcapng = tmp_path / "run.jsonl", tmp_path / "up.pcapng"
        cmd = [sys.executable, "-m", "mcpsniff"]
        cap = subprocess.Popen([*cmd, "capture", "--watch", "--port", str(lab.port), "-o", str(pcapng)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        prx = subprocess.Popen([*cmd, "proxy", "--watch", "--listen", str(listen), "--upstream", lab.base_url, "-o", str(records)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        try:
            _read_until(cap, r"mcpsniff: watching tcp port", 60)
            _read_until(prx, r"mcpsniff: proxy on http://", 120)

            async def go() -> list[str]:
                said = []
                for ns in ("tasks", "sprint"):
                    async with lab_session(f"http://127.0.0.1:{listen}/{ns}/mcp") as session:
                        await session.list_tools()
                        said.append(await call_text(session, "echo", text="watched"))
                return said

            assert asyncio.run(go()) == ["tasks:watched", "sprint:watched"]
            time.sleep(2.5)  # a snapshot or two
            for proc in (prx, cap):
                proc.send_signal(signal.SIGTERM)
            outs = [tuple(b.decode() for b in proc.communicate(timeout=60)) for proc in (prx, cap)]
        finally:
            for proc in (cap, prx):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for proc, (out, err), path in zip((prx, cap), outs, (records, pcapng)):
        assert proc.returncode == 0, err[-2000:]
        seqs = sequences(out)
        assert {ns: states(s) for ns, s in seqs.items()} == {"tasks": ["connected"], "sprint": ["connected"]}, out
        assert re.match(r"session [0-9a-f]{12}…, 2025-", seqs["tasks"][0][1])
        final = analyze_files([path], full=False)
        assert {ns.name: ns.diagnosis.verdict for ns in final.namespaces} == {"tasks": "not-affected", "sprint": "not-affected"}
        assert re.search(r"^tasks +not-affected ", out, re.M)


@needs_raw
def test_the_kernel_can_keep_the_loopback_copies_back(tmp_path: Path) -> None:
    """The watch's capture process asks the kernel not to deliver the outgoing copy of each
    loopback packet (PACKET_IGNORE_OUTGOING: half the reads) instead of dropping it itself:
    the file holds the same packets in the same order (their times can differ by microseconds:
    the kernel then stamps the packet when it is sent, not when loopback hands it back, and on a
    loaded machine that can be milliseconds apart)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import asyncio

    from mcp_lab import LabServer, call_text, lab_session

    from mcpsniff.capture.live import LiveCapture
    from mcpsniff.capture.pcap import FrameReader

    with LabServer(("tasks",)) as lab:
        plain, kept_back = tmp_path / "plain.pcapng", tmp_path / "kept-back.pcapng"
        with LiveCapture([lab.port], plain) as a, LiveCapture([lab.port], kept_back, ignore_outgoing=True) as b:

            async def go() -> str:
                async with lab_session(lab.url("tasks")) as session:
                    await session.list_tools()
                    return await call_text(session, "echo", text="once")

            assert asyncio.run(go()) == "tasks:once"
            time.sleep(0.5)
    frames = []
    for path in (plain, kept_back):
        with FrameReader(path) as reader:
            frames.append([(t, data) for t, _, _, data in reader])
    assert [d for _, d in frames[0]] == [d for _, d in frames[1]] and len(frames[0]) > 10
    # the same instants (not a speed bound: a loaded machine delays loopback delivery by a few ms,
    # a stamping bug would be off by the epoch or a unit)
    assert max(abs(x - y) for (x, _), (y, _) in zip(*frames)) < 0.5
    assert a.stats.duplicates >= a.stats.packets and b.stats.duplicates == 0
    assert b.kernel_packets == b.stats.packets and a.kernel_packets >= 2 * a.stats.packets
