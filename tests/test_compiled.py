"""The compiled build (mypyc, scripts/compile.py) against the pure-Python sources.

The suite runs against whatever `import mcpsniff` loads: the compiled modules after
scripts/setup.sh.  Here the same inputs go through both builds, each in a process of
its own: every capture in tests/data and each benchmark shape must give the same
`analyze --format json` and full analysis, serial and through the parallel reader.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mcpsniff import native

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
try:
    import same_output
finally:
    sys.path.remove(str(ROOT / "benchmarks"))


def _can_compile() -> bool:
    return shutil.which(os.environ.get("CC", "cc")) is not None and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


def test_the_suite_runs_compiled_where_it_can_be_built() -> None:
    for name in native.BUILT:
        importlib.import_module("mcpsniff." + name.replace("/", "."))
    if os.environ.get("MCPSNIFF_PURE", "") not in ("", "0"):
        pytest.skip("MCPSNIFF_PURE is set")
    reason = native.stale_reason()
    if reason:
        pytest.skip(f"compiled build out of date ({reason}): scripts/setup.sh rebuilds it")
    if not native.compiled_now():
        if _can_compile():
            pytest.fail("a C compiler and the Python headers are here but nothing is compiled: run scripts/setup.sh (scripts/compile.py --check says why)")
        pytest.skip("no C compiler or Python headers: plain Python")
    assert native.compiled_now() == list(native.BUILT), native.status()


def test_pure_fallback_loads_every_module_from_source() -> None:
    code = "import mcpsniff.wire.pipeline, mcpsniff.analysis.lifecycle, mcpsniff.capture.pcap; from mcpsniff import native; print(native.compiled_now()); print(native.status())"
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MCPSNIFF_PURE": "1"}, capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["[]", "pure Python (MCPSNIFF_PURE=1)"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each benchmark shape (benchmarks/analyze_speed.py), 20k packets."""
    return same_output.shape_files(tmp_path_factory.mktemp("shapes"), 20_000)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_compiled_and_pure_python_give_the_same_output(workers: str, shapes: list[Path]) -> None:
    files = same_output.test_inputs() + shapes if workers == "1" else shapes
    assert len(files) > 30 or workers == "2"
    env = {"MCPSNIFF_WORKERS": workers}
    status, compiled = same_output.render(sys.executable, ROOT, files, env)
    pure_status, pure = same_output.render(sys.executable, ROOT, files, {**env, "MCPSNIFF_PURE": "1"})
    assert pure_status.startswith("pure Python"), pure_status
    assert same_output.compare(compiled, pure) == [], status
    assert all(docs[0].startswith("{") for name, docs in compiled.items() if "/real/" in name or name.endswith(".pcap") and "bad" not in name)
