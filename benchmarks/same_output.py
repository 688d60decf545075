"""Same output from the compiled build and from plain Python (or from another checkout).

  uv run python benchmarks/same_output.py                      # every capture in tests/data + each benchmark shape (50k packets)
  uv run python benchmarks/same_output.py big.pcap --workers 2  # given files, also through the parallel reader
  uv run python benchmarks/same_output.py --baseline /tmp/wt-old   # this checkout against an older one (its .venv)

For each file, ``mcpsniff analyze --format json`` (verdicts, stall points, exchanges,
attempts, everything) and the full analysis (``--html``'s) are rendered in one process
per build: this checkout compiled (as set up), this checkout with ``MCPSNIFF_PURE=1``,
or the baseline's own interpreter and sources.  Prints each file that differs and the
first differing line; exits 1 if any does.  tests/test_compiled.py runs the first form.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
INPUTS = (".pcap", ".pcapng", ".jsonl", ".har", ".flow", ".mitm")

# Runs inside the build under test: {file: [compact JSON, full JSON, native status]}
RENDER = """
import json, sys
from pathlib import Path
from mcpsniff import native
from mcpsniff.api import analyze_files
from mcpsniff.errors import MCPSniffError
from mcpsniff.report.jsondoc import render_json
out = {}
for name in json.loads(sys.argv[1]):
    docs = []
    for full in (False, True):
        try:
            docs.append(render_json(analyze_files([Path(name)], full=full)))
        except MCPSniffError as exc:
            docs.append(f"error: {exc}")
    out[name] = docs
status = getattr(native, "status", lambda: "?")() if hasattr(native, "COMPILED") else "?"
print(json.dumps({"status": status, "outputs": out}))
"""


def test_inputs() -> list[Path]:
    """Every capture and records file of tests/data (the real captures, bad inputs, fuzz seeds)."""
    return sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in INPUTS)


def shape_files(work: Path, packets: int) -> list[Path]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import analyze_speed

    files = []
    for shape in analyze_speed.SHAPES:
        path = work / f"{shape}-{packets}.pcap"
        if not path.exists():
            analyze_speed.generate(path, packets, shape=shape)
        files.append(path)
    return files


def render(python: str, cwd: Path, files: list[Path], env: dict[str, str]) -> tuple[str, dict[str, list[str]]]:
    """(build status, outputs) of ``files`` rendered by ``python`` in ``cwd``."""
    proc = subprocess.run([python, "-c", RENDER, json.dumps([str(f) for f in files])], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{python} failed:\n{proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    return doc["status"], doc["outputs"]


def compare(a: dict[str, list[str]], b: dict[str, list[str]]) -> list[str]:
    """One message per file whose outputs differ."""
    problems = []
    for name, docs in a.items():
        for what, x, y in zip(("json", "full"), docs, b.get(name, ["missing", "missing"]), strict=True):
            if x != y:
                diff = next((line for line in difflib.unified_diff(x.splitlines(), y.splitlines(), lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")), "")
                problems.append(f"{name} ({what}): differs, first: {diff[:200]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--packets", type=int, default=50_000, help="packets of each generated benchmark shape (default 50,000)")
    ap.add_argument("--workers", default="1", help="MCPSNIFF_WORKERS for both sides (default 1: the serial reader)")
    ap.add_argument("--baseline", type=Path, help="another checkout to compare this one with (run by its .venv/bin/python)")
    args = ap.parse_args()
    env = {"MCPSNIFF_WORKERS": args.workers}
    with tempfile.TemporaryDirectory(prefix="mcpsniff-same-") as tmp:
        files = [f.resolve() for f in args.files] or test_inputs() + shape_files(Path(tmp), args.packets)
        status_a, a = render(sys.executable, ROOT, files, env)
        if args.baseline is not None:
            status_b, b = render(str(args.baseline / ".venv" / "bin" / "python"), args.baseline, files, {**env, "PYTHONPATH": str(args.baseline)})
        else:
            status_b, b = render(sys.executable, ROOT, files, {**env, "MCPSNIFF_PURE": "1"})
    print(f"{len(files)} files; A: {status_a}; B: {status_b if args.baseline is None else f'{args.baseline} ({status_b})'}")
    problems = compare(a, b)
    for line in problems:
        print(line)
    print("same output" if not problems else f"{len(problems)} output(s) differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
