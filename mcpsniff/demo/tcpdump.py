"""A real ``tcpdump -i lo -w capture.pcap tcp port <port>`` for the demo's direct mode.

This is how users capture a server (and how the shared real captures were made), so
direct-mode runs record with tcpdump itself rather than the in-process scapy capture.
``start`` returns once tcpdump said it is listening (it has opened the file and the
capture socket by then); ``stop`` sends SIGINT, which makes tcpdump flush the file and
print its packet counts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaptureError

START_TIMEOUT = 15.0  # s for tcpdump to say "listening on"
STOP_TIMEOUT = 10.0  # s for tcpdump to flush and exit after SIGINT


@dataclass
class Tcpdump:
    process: subprocess.Popen[bytes]
    output: Path
    log: Path
    command: list[str]
    counts: dict[str, int] | None = None

    def stop(self) -> dict[str, int]:
        """SIGINT, wait, parse "N packets captured / received by filter / dropped by kernel"."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGINT)
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        counts = {}
        for key, pattern in (("captured", r"(\d+) packets? captured"), ("received", r"(\d+) packets? received by filter"), ("dropped", r"(\d+) packets? dropped by kernel")):
            found = re.findall(pattern, text)
            if found:
                counts[key] = int(found[-1])
        self.counts = counts
        return counts

    def line(self) -> str:
        size = self.output.stat().st_size if self.output.exists() else 0
        return f"tcpdump -> {self.output.name} ({size // 1024} KiB so far, buffered)"


def start(port: int, output: Path, log: Path, iface: str = "lo") -> Tcpdump:
    """Start tcpdump on ``iface`` for ``tcp port <port>`` and wait until it listens."""
    binary = shutil.which("tcpdump")
    if binary is None:
        raise CaptureError("direct mode records with tcpdump, which is not installed (Debian: apt-get install tcpdump)")
    # packet by packet into a 64 MiB ring: libpcap's default block ring hands packets over late and
    # SIGINT drops the unread blocks (the file ends early on a busy machine), and immediate mode's
    # default 2 MiB ring (one 256 KiB slot per packet) overflows in the kernel
    command = [binary, "-U", "--immediate-mode", "-B", "65536", "-i", iface, "-w", str(output)]
    if os.geteuid() == 0:
        command += ["-Z", "root"]  # keep root: Debian's tcpdump would drop to user tcpdump, who may not write here
    command += ["tcp", "port", str(port)]
    output.unlink(missing_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    handle = Tcpdump(proc, output, log, command)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with log.open("rb") as f:
            f.seek(offset)
            said = f.read().decode(errors="replace")
        if "listening on" in said and output.exists():
            return handle
        if proc.poll() is not None:
            raise CaptureError(f"tcpdump exited at start (exit {proc.returncode}): {' | '.join(said.strip().splitlines()[-2:]) or 'no output'}")
        time.sleep(0.05)
    handle.stop()
    raise CaptureError(f"tcpdump did not start listening within {START_TIMEOUT:.0f} s")
