"""The fuzz harness (fuzz/): every crash it ever found stays fixed, and a short run finds none.

tests/data/fuzz/<target>/<file> are inputs that once crashed a reader (kept by
fuzz/run.py); each is replayed through the same target.  The short run is the mutate
engine over every target for a few seconds each, as a subprocess (about a minute in all).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))
import targets as T  # noqa: E402

CASES = [(name, path) for name in T.TARGETS for path in T.regressions(name)]
SECONDS_PER_TARGET = 7


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError("a kept fuzz input hangs again")


def test_there_are_regression_inputs() -> None:
    assert {name for name, _ in CASES} >= {"records", "flows", "config", "sse"}


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_kept_crash_input_is_handled(target: str, path: Path) -> None:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        exc = T.check(target, path.read_bytes())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        T.cleanup()
    assert exc is None, f"{target}/{path.name}: {type(exc).__name__}: {exc}"


def test_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    env = {**os.environ, "MCPSNIFF_WORKERS": "1"}
    cmd = [sys.executable, str(ROOT / "fuzz" / "run.py"), "--engine", "mutate", "--seconds", str(SECONDS_PER_TARGET), "--crashes", str(tmp_path), "--timeout", "20"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SECONDS_PER_TARGET * len(T.TARGETS) + 240, check=False)
    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert proc.returncode == 0 and not kept, f"new crashes (copy them to tests/data/fuzz/ once fixed): {kept}\n{proc.stderr[-4000:]}"
    assert "inputs in" in proc.stderr  # every target ran
