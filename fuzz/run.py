"""Fuzz mcpsniff's readers for N seconds each; every crash is kept as a file.

    uv run python fuzz/run.py --seconds 60                  # every target, atheris (coverage-guided)
    uv run python fuzz/run.py records har --seconds 300     # some targets
    uv run python fuzz/run.py --engine mutate --seconds 5   # the built-in mutator (no atheris; what CI runs)
    uv run python fuzz/run.py --replay tests/data/fuzz      # run the kept inputs once

A crash is any exception but an MCPSniffError (a clean rejection: exit 2), or an input
that takes longer than --timeout seconds.  Each distinct crash (exception type and the
innermost mcpsniff line) is written once to --crashes DIR/<target>/ (default
fuzz/crashes/); copy it to tests/data/fuzz/<target>/ once fixed, so tests/test_fuzz.py
keeps replaying it.  Exit code 0: no crash, 1: crashes found (listed on stderr).

Engines: ``atheris`` (libFuzzer, coverage-guided; one subprocess per target, seeded
from tests/data; its corpus of new inputs grows in a temporary folder) and ``mutate``
(a seeded random mutator of the same seeds: byte flips, splices, and values the readers
must survive: huge and odd digits, NaN/inf, lone surrogates, deep nesting, wrong types).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import targets as T  # noqa: E402

CRASHES = Path(__file__).resolve().parent / "crashes"


class Hang(Exception):
    """The input ran past --timeout."""


def signature(exc: BaseException) -> str:
    """Exception type and the innermost mcpsniff frame: one name per distinct bug."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "mcpsniff" in frame.filename and "/fuzz/" not in frame.filename:
            where = f"{Path(frame.filename).name}:{frame.lineno}"
    return f"{type(exc).__name__}@{where}"


class Keeper:
    """Writes each distinct crash of a target once."""

    def __init__(self, folder: Path, target: str) -> None:
        self.folder = folder / target
        self.target = target
        self.seen: dict[str, Path] = {}

    def keep(self, data: bytes, exc: BaseException) -> bool:
        sig = signature(exc)
        if sig in self.seen:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.@-]", "_", sig) + "-" + hashlib.sha1(data).hexdigest()[:10]
        path = self.folder / name
        path.write_bytes(data)
        self.seen[sig] = path
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1][:300]
        print(f"fuzz: {self.target}: NEW CRASH {sig}: {tail}\n      input kept in {path}", file=sys.stderr, flush=True)
        return True


def _alarm(signum: int, frame: object) -> None:
    raise Hang("input took longer than the timeout")


def run_one(target: str, data: bytes, timeout: float) -> BaseException | None:
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return T.check(target, data)
    except Hang as exc:
        return exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# ----------------------------------------------------------------------- mutate engine

_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STRING = re.compile(rb'"(?:[^"\\\n]|\\.){0,40}"')
_VALUES = [b"1e999", b"-1e999", b"NaN", b"Infinity", b"-1", b"0", b"1e300", b"-5", b"9" * 5000, b"4294967296",
           b"18446744073709551616", b"true", b"null", b'"x"', b"[]", b"{}", b'"\\ud800"', b"1.5", b"\xc2\xb2"]
_STRINGS = [b'"\\ud800"', b'"\\udfff x"', b"123", b"[1,2]", b"{}", b"null", b'""', b'"' + b"9" * 5000 + b'"', b'"\xff\xfe"',
            b'"{ns.x}"', b'"{ns:>20000000}"', b'"^/(a+)+$"', b'"caf\\u00e9"']
_BINARY = [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff" * 8, b"\x00\x00\x00\x01"]
_TEXT = [b"\n", b"\r\n", b"\r", b"\x00", b"[" * 2000, b"{\"a\":" * 500, b"&a [*a, *a, *a]", b"*a", b"Content-Length: " + b"9" * 4400 + b"\r\n",
         b"retry: " + b"9" * 5000 + b"\n", b": \xe9\xff\n"]


def mutate(rng: random.Random, data: bytes, seeds: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        op = rng.randrange(10)
        n = len(buf)
        pos = rng.randrange(n + 1)
        if op == 0 and n:
            for _ in range(rng.randrange(1, 9)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            del buf[pos : pos + rng.randrange(1, 64)]
        elif op == 2 and n:
            start = rng.randrange(n)
            buf[pos:pos] = buf[start : start + rng.randrange(1, 256)]
        elif op == 3:
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            buf[pos:] = other[start:]
        elif op == 4:
            found = list(_NUMBER.finditer(buf))
            if found:
                m = rng.choice(found)
                buf[m.start() : m.end()] = rng.choice(_VALUES)
        elif op == 5:
            found = list(_STRING.finditer(buf))
            if found:
                m = rng.choice(found)
                buf[m.start() : m.end()] = rng.choice(_STRINGS)
        elif op == 6 and n >= 4:
            p = rng.randrange(n - 3)
            buf[p : p + 4] = rng.choice(_BINARY)
        elif op == 7:
            buf[pos:pos] = rng.choice(_TEXT)
        elif op == 8 and n:
            buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 9 and n:
            buf = buf[: rng.randrange(n + 1)]
    return bytes(buf)


def mutate_engine(target: str, seconds: float, keeper: Keeper, timeout: float, seed: int) -> int:
    seeds = T.TARGETS[target].seeds() or [b""]
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    runs = 0
    signal.signal(signal.SIGALRM, _alarm)
    for data in seeds:  # the seeds themselves first
        exc = run_one(target, data, timeout)
        runs += 1
        if exc is not None:
            keeper.keep(data, exc)
    while time.monotonic() < deadline:
        data = mutate(rng, rng.choice(seeds), seeds)
        exc = run_one(target, data, timeout)
        runs += 1
        if exc is not None:
            keeper.keep(data, exc)
    return runs


# ----------------------------------------------------------------------- atheris engine


def atheris_child(target: str, seconds: float, folder: Path, timeout: float) -> None:
    """Body of the subprocess: atheris.Fuzz() never returns (libFuzzer exits)."""
    import atheris

    with atheris.instrument_imports(include=["mcpsniff"]):
        import mcpsniff.analysis.diagnose  # noqa: F401
        import mcpsniff.capture.har  # noqa: F401
        import mcpsniff.capture.mitm  # noqa: F401
        import mcpsniff.capture.pcap  # noqa: F401
        import mcpsniff.config  # noqa: F401
        import mcpsniff.records  # noqa: F401
        import mcpsniff.report.jsondoc  # noqa: F401
        import mcpsniff.report.text  # noqa: F401
        import mcpsniff.wire.http1  # noqa: F401
        import mcpsniff.wire.sse  # noqa: F401
    keeper = Keeper(folder, target)
    corpus = Path(tempfile.mkdtemp(prefix=f"mcpsniff-fuzz-{target}-"))
    for i, data in enumerate(T.TARGETS[target].seeds()):
        (corpus / f"seed-{i}").write_bytes(data)
    signal.signal(signal.SIGALRM, _alarm)

    def one(data: bytes) -> None:
        exc = run_one(target, data, timeout)
        if exc is not None:
            keeper.keep(data, exc)

    (folder / target).mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], f"-max_total_time={max(1, int(seconds))}", "-rss_limit_mb=4096",
            f"-max_len={T.MAX_SEED * 2}", f"-artifact_prefix={folder / target}/libfuzzer-", "-print_final_stats=1", str(corpus)]
    atheris.Setup(args, one)
    atheris.Fuzz()


def atheris_engine(target: str, seconds: float, folder: Path, timeout: float) -> list[Path]:
    before = set((folder / target).glob("*")) if (folder / target).is_dir() else set()
    cmd = [sys.executable, __file__, "--child", target, "--seconds", str(seconds), "--crashes", str(folder), "--timeout", str(timeout)]
    subprocess.run(cmd, check=False, timeout=seconds + 600)
    after = set((folder / target).glob("*")) if (folder / target).is_dir() else set()
    return sorted(after - before)


def replay(folder: Path, timeout: float) -> int:
    """Run every kept input once (folder/<target>/<file>); the number that still crash."""
    signal.signal(signal.SIGALRM, _alarm)
    bad = 0
    for target in T.TARGETS:
        sub = folder / target
        for path in sorted(sub.iterdir()) if sub.is_dir() else []:
            exc = run_one(target, path.read_bytes(), timeout)
            status = "ok" if exc is None else f"CRASH {signature(exc)}: {exc!r}"[:300]
            print(f"{target}/{path.name}: {status}")
            bad += exc is not None
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f"targets (default: all): {', '.join(T.TARGETS)}")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per target (default 60)")
    parser.add_argument("--engine", choices=("atheris", "mutate"), default=None, help="default: atheris if installed, else mutate")
    parser.add_argument("--crashes", type=Path, default=CRASHES, help="where crashes are kept (default fuzz/crashes)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take before it counts as a hang")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the mutate engine")
    parser.add_argument("--replay", type=Path, metavar="DIR", help="run the inputs kept in DIR/<target>/ once and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        atheris_child(args.child, args.seconds, args.crashes, args.timeout)
        return 0
    if args.replay:
        return 1 if replay(args.replay, args.timeout) else 0
    names = args.targets or list(T.TARGETS)
    unknown = [n for n in names if n not in T.TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; valid: {', '.join(T.TARGETS)}")
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    found: list[str] = []
    try:
        for name in names:
            started = time.monotonic()
            if engine == "atheris":
                new = atheris_engine(name, args.seconds, args.crashes, args.timeout)
                found += [str(p) for p in new]
                print(f"fuzz: {name}: {time.monotonic() - started:.0f}s, {len(new)} new crash file(s)", file=sys.stderr)
            else:
                keeper = Keeper(args.crashes, name)
                runs = mutate_engine(name, args.seconds, keeper, args.timeout, args.seed)
                found += [str(p) for p in keeper.seen.values()]
                print(f"fuzz: {name}: {runs} inputs in {time.monotonic() - started:.0f}s, {len(keeper.seen)} crash(es)", file=sys.stderr)
    finally:
        T.cleanup()
    if found:
        print("fuzz: crashes kept:\n  " + "\n  ".join(found), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    os.environ.setdefault("MCPSNIFF_WORKERS", "1")
    sys.exit(main())
