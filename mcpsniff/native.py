"""The compiled build of the hot modules (mypyc), and the pure-Python fallback.

``scripts/compile.py`` (run by ``scripts/setup.sh``) compiles ``COMPILED`` with mypyc
into extension modules beside their sources, which Python then imports instead of the
``.py`` files: the same code, 1.3-1.8x faster per packet.  It also writes ``STAMP``:
the SHA-256 of each compiled source.  ``use_pure()`` (called when ``mcpsniff`` is
imported) makes every compiled module load from its ``.py`` instead when

- ``MCPSNIFF_PURE=1`` is set (to test the fallback, or to debug with pdb), or
- a source changed after it was compiled (the extension would run the old code), or
  the stamp is missing: silently, since the sources are the same code (``status()``
  says which; ``scripts/setup.sh`` compiles them again).

Without a compiler nothing is built and everything runs as plain Python.
All or nothing: the compiled modules share one runtime library, so a stale one
turns them all off.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Sequence

PACKAGE = Path(__file__).resolve().parent
# What scripts/compile.py compiles: the per-packet and per-record path of `analyze`
# (wire layers, records, the lifecycle builder and what it calls per record).
COMPILED = (
    "records",
    "wire/packet",
    "wire/tcpevents",
    "wire/tcp",
    "wire/http1",
    "wire/sse",
    "wire/jsonrpc",
    "wire/exchanges",
    "wire/pipeline",
    "analysis/model",
    "analysis/namespaces",
    "analysis/restarts",
    "analysis/hops",
    "analysis/conformance",
    "analysis/clients",
    "analysis/lifecycle",
    "report/jsonfast",
)
# C extension modules (hand-written, one .c each) built beside them: the innermost loops
C_MODULES = ("wire/_walk", "wire/_rpcscan", "wire/_find")
BUILT = COMPILED + C_MODULES  # every extension module scripts/compile.py builds
STAMP = PACKAGE / "_compiled.json"  # written by scripts/compile.py: {"python": ..., "sources": {module: sha256}}


def source_hashes() -> dict[str, str]:
    sources = [f"{name}.py" for name in COMPILED] + [f"{name}.c" for name in C_MODULES]
    return {name.rsplit(".", 1)[0]: hashlib.sha256((PACKAGE / name).read_bytes()).hexdigest() for name in sources}


def extensions() -> list[Path]:
    """The compiled extension files present beside the sources (any Python version)."""
    return [p for name in BUILT for p in (PACKAGE / name).parent.glob(Path(name).name + ".*.so")]


def compiled_now() -> list[str]:
    """Which of ``BUILT`` are loaded from an extension in this process (imported ones only)."""
    prefix = __package__ or "mcpsniff"
    return [name for name in BUILT if str(getattr(sys.modules.get(f"{prefix}.{name.replace('/', '.')}"), "__file__", "")).endswith(".so")]


def stale_reason() -> str:
    """Why the extensions of this interpreter must not be used ("" when they are current)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not any((PACKAGE / f"{name}{suffix}").exists() for name in COMPILED):
        return ""  # nothing compiled for this interpreter: plain Python anyway
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return "no build stamp"
    if stamp.get("python") != sys.version or stamp.get("suffix") != suffix:
        return f"compiled for Python {str(stamp.get('python', '?')).split()[0]}"
    changed = [name for name, digest in source_hashes().items() if stamp.get("sources", {}).get(name) != digest]
    if changed:
        return f"{changed[0]}.py changed since it was compiled" + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")
    return ""


class _PureFinder:
    """Finds ``mcpsniff`` modules as ``.py`` sources only (never an extension module; a C module is not found)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if not name.startswith("mcpsniff.") or path is None:
            return None
        if name.removeprefix("mcpsniff.").replace(".", "/") in C_MODULES:  # C only: no source to fall back on
            raise ModuleNotFoundError(f"{name}: not loaded (pure Python)", name=name)
        for entry in path:
            finder = importlib.machinery.FileFinder(entry, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES))
            spec = finder.find_spec(name)
            if spec is not None:
                return spec
        return None


def use_pure() -> None:
    """Load every mcpsniff module from source when asked to, or when the build is stale."""
    if any(isinstance(f, _PureFinder) for f in sys.meta_path):
        return
    if os.environ.get("MCPSNIFF_PURE", "") not in ("", "0") or stale_reason():
        sys.meta_path.insert(0, _PureFinder())


def status() -> str:
    """One line: compiled or pure, and why."""
    loaded = compiled_now()
    if loaded:
        return f"compiled (mypyc): {len(loaded)} of the {len(COMPILED)} compiled modules imported so far"
    if os.environ.get("MCPSNIFF_PURE", "") not in ("", "0"):
        return "pure Python (MCPSNIFF_PURE=1)"
    reason = stale_reason()
    return f"pure Python ({reason}; scripts/setup.sh compiles them again)" if reason else "pure Python (not compiled)"
