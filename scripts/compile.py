"""Compile mcpsniff's hot modules with mypyc, in place (run by scripts/setup.sh).

  uv run --frozen --no-sync --with mypy==2.4.1 --with setuptools==84.2.1 python scripts/compile.py

Builds ``mcpsniff.native.COMPILED`` into extension modules beside their sources (and
their shared runtime ``mcpsniff__mypyc`` at the top of the checkout), then writes the
stamp ``mcpsniff/_compiled.json`` that tells ``mcpsniff`` they match the sources.
Skipped when the stamp already matches.  A failure (no compiler, no Python headers, a
mypy error in a compiled module) removes any extension left over, prints why and
exits 0: mcpsniff then runs as plain Python.  ``--check`` exits 1 instead (for a
developer who wants the build), ``--clean`` only removes the build.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["MCPSNIFF_PURE"] = "1"  # import mcpsniff.native without loading what is about to be rebuilt
from mcpsniff import native  # noqa: E402

TEMP = ROOT / "build" / "mypyc"


def clean() -> None:
    for path in native.extensions() + list(ROOT.glob("mcpsniff__mypyc.*.so")):
        path.unlink()
    native.STAMP.unlink(missing_ok=True)


def current() -> bool:
    """Stamp and extensions match the sources and this interpreter."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not all((native.PACKAGE / f"{name}{suffix}").exists() for name in native.BUILT):
        return False
    return not native.stale_reason()


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import Extension, setup

    sources = [f"mcpsniff/{name}.py" for name in native.COMPILED]
    os.chdir(ROOT)
    # errors count in the compiled modules only: the others are type-checked as imports, silently
    ext = mypycify(["--follow-imports=silent", "--ignore-missing-imports", *sources], group_name="mcpsniff", opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"), target_dir=str(TEMP / "c"))
    ext += [Extension(f"mcpsniff.{name.replace('/', '.')}", [f"mcpsniff/{name}.c"], extra_compile_args=["-O2"]) for name in native.C_MODULES]
    setup(name="mcpsniff-compiled", ext_modules=ext, packages=[], py_modules=[], script_args=["--quiet", "build_ext", "--inplace", "--build-temp", str(TEMP / "o"), "--parallel", str(os.cpu_count() or 1)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when the build fails")
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules and stop")
    ap.add_argument("--force", action="store_true", help="build even when the stamp matches")
    args = ap.parse_args()
    if args.clean:
        clean()
        shutil.rmtree(TEMP, ignore_errors=True)
        return 0
    if current() and not args.force:
        return 0
    clean()
    start = time.perf_counter()
    hashes = native.source_hashes()  # before: a source edited during the build makes the stamp stale, not wrong
    try:
        build()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure leaves the pure-Python package
        clean()
        print(f"compile: mypyc build failed ({str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}); mcpsniff runs as plain Python", file=sys.stderr)
        return 1 if args.check else 0
    native.STAMP.write_text(json.dumps({"python": sys.version, "suffix": importlib.machinery.EXTENSION_SUFFIXES[0], "sources": hashes}, indent=1) + "\n")
    print(f"compile: {len(native.COMPILED)} modules compiled with mypyc and {len(native.C_MODULES)} C module(s) in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
