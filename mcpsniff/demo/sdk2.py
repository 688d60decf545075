"""The Python environment of the demo's mcp 2.x pieces (``modern/server.py``, ``modern/clients.py``).

The project's venv keeps mcp 1.x (the demo's 1.x server and clients, the tests' lab), so
the 2.x server and client host run in an environment of their own: a venv made with uv
from the pinned ``modern/requirements.txt`` (mcp 2.3.0, uvicorn) into a cache folder named
after that file's hash and the Python version
(``${XDG_CACHE_HOME:-~/.cache}/mcpsniff/py-sdk2-<hash>/``), the first time a scenario needs
it (or by ``scripts/setup.sh``).  Later runs use its ``bin/python`` directly: no uv, no
network.  When the registry cannot be reached the install is retried from uv's own cache
(``--offline``); if that fails too it is a one-line ``CaptureError``.  The scripts are run
from the checkout (they import nothing of mcpsniff), so an edit takes effect at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import CaptureError
from .tshost import cache_root

MODERN_DIR = Path(__file__).resolve().with_name("modern")
REQUIREMENTS = MODERN_DIR / "requirements.txt"
SERVER = MODERN_DIR / "server.py"
CLIENTS = MODERN_DIR / "clients.py"
INSTALL_TIMEOUT = 600.0  # s for uv to create the venv and install (downloads ~30 wheels the first time)
SDK_VERSION = "2.3.0"


def digest() -> str:
    key = REQUIREMENTS.read_bytes() + f"\npython {sys.version_info.major}.{sys.version_info.minor}\n".encode()
    return hashlib.sha256(key).hexdigest()[:16]


def env_dir() -> Path:
    return cache_root() / f"py-sdk2-{digest()}"


def _uv() -> str:
    """The uv binary: the one running us (``uv run`` sets $UV), else uv on PATH."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).exists():
            try:
                if subprocess.run([candidate, "--version"], capture_output=True, timeout=30).returncode == 0:
                    return candidate
            except (OSError, subprocess.TimeoutExpired):
                continue
    raise CaptureError("the demo's mcp 2.x environment is made with uv, which was not found (pip install uv; or scripts/setup.sh)")


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise CaptureError(f"{what} took more than {INSTALL_TIMEOUT:.0f} s") from None


def _tail(proc: subprocess.CompletedProcess[str]) -> str:
    """uv's first error line and its last cause, on one line."""
    lines = [line.strip() for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
    errors = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    causes = [line.removeprefix("cause:").strip() for line in lines if line.startswith("cause:")]
    said = errors[0] if errors else (lines[-1] if lines else f"exit {proc.returncode}")
    return f"{said} ({causes[-1]})" if causes else said


def installed() -> Path | None:
    """The environment's python if it is installed, else None."""
    python = env_dir() / "bin" / "python"
    return python if (env_dir() / ".installed").exists() and python.exists() else None


def ensure_env(say: Callable[[str], None] = lambda _m: None) -> Path:
    """The environment's ``bin/python`` (made the first time)."""
    python = installed()
    if python is not None:
        return python
    uv = _uv()
    target = env_dir()
    say(f"installing the mcp {SDK_VERSION} environment (uv, {REQUIREMENTS.name}) into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        made = _run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(tmp)], "uv venv")
        if made.returncode != 0:
            raise CaptureError(f"could not make the demo's mcp 2.x environment (uv venv): {_tail(made)}")
        install = [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", str(tmp / "bin" / "python"), "-r", str(REQUIREMENTS)]
        done = _run(install, "uv pip install")
        if done.returncode != 0:  # no registry: what uv's cache has may be enough
            offline = _run([*install, "--offline"], "uv pip install --offline")
            if offline.returncode != 0:
                raise CaptureError(f"could not install mcp {SDK_VERSION} for the demo's 2026-07-28 scenarios (uv pip install; not in uv's cache either): {_tail(done)}")
        (tmp / ".installed").write_text(digest() + "\n")
        if (target / ".installed").exists():  # another run installed it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(target, ignore_errors=True)  # a half-made folder from an interrupted run
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    python = installed()
    if python is None:
        raise CaptureError(f"the demo's mcp 2.x environment is incomplete: {target}")
    return python


def require() -> Path:
    """The installed environment's python (``ensure_env`` must have run)."""
    python = installed()
    if python is None:
        raise CaptureError("the demo's mcp 2.x environment is not installed (scripts/setup.sh installs it)")
    return python
