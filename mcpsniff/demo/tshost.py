"""The TypeScript-SDK client host (``ts/host.mjs``): its policies, its install, its command line.

``host.mjs`` runs one official ``@modelcontextprotocol/sdk`` client per namespace in one
Node process.  Its node modules are installed from ``ts/package-lock.json`` with
``npm ci`` into a cache folder named after the lockfile's hash
(``${XDG_CACHE_HOME:-~/.cache}/mcpsniff/ts-host-<hash>/``) the first time a ``ts``
scenario runs; ``host.mjs`` itself is copied there on every run, so an edit of it in
the checkout takes effect without a new install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import CaptureError
from . import NAMESPACES

TS_DIR = Path(__file__).resolve().with_name("ts")
NPM_TIMEOUT = 600.0  # s for `npm ci` (downloads about 100 packages the first time)
MIN_NODE = 18  # global fetch (undici) and ReadableStream/TextDecoderStream

# How the host reacts (the SDK underneath always does its own GET-stream retries).
POLICIES: dict[str, str] = {
    "cc": "Claude-Code-like: fresh transport + initialize + tools/list after 1,2,4,8,16 s, then gives up",
    "idle": "connects and lists its tools once, then no calls; never reacts to SDK errors (only the SDK's 2 GET retries)",
    "stale": "resumes the old session id without initialize, forever, 1 s apart (404 loop)",
    "reinit-once": "re-initializes once after 1 s; if that fails it gives up for good",
    "hang": "like cc, but once rebound calls the server's hang tool and waits forever",
    "no-relist": "like cc, but never lists its tools again in a new session",
}


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcpsniff"


def lock_digest() -> str:
    return hashlib.sha256((TS_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]


def _check_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        raise CaptureError(f"the ts client host needs Node.js {MIN_NODE}+ and npm: {missing} not found on PATH (Debian: apt-get install nodejs npm; or scripts/setup.sh)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_NODE:
        raise CaptureError(f"the ts client host needs Node.js {MIN_NODE}+, found {version or 'an unknown version'} at {node}")
    return node, npm


def ensure_installed(say: Callable[[str], None] = lambda _m: None) -> Path:
    """The cache folder with node_modules (``npm ci`` the first time) and a current host.mjs."""
    _node, npm = _check_node()
    target = cache_root() / f"ts-host-{lock_digest()}"
    if not (target / ".installed").exists():
        say(f"installing the ts client host's node modules (npm ci) into {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(TS_DIR / name, tmp / name)
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=tmp, capture_output=True, text=True, timeout=NPM_TIMEOUT)
            if proc.returncode != 0:
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                raise CaptureError(f"npm ci for the ts client host failed (exit {proc.returncode}): {tail}")
            (tmp / ".installed").write_text(lock_digest() + "\n")
            if (target / ".installed").exists():  # another run installed it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(target, ignore_errors=True)  # a half-made folder from an interrupted run
                os.replace(tmp, target)
        except subprocess.TimeoutExpired:
            raise CaptureError(f"npm ci for the ts client host took more than {NPM_TIMEOUT:.0f} s") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    staged = target / f".host.mjs.{os.getpid()}"
    shutil.copy2(TS_DIR / "host.mjs", staged)
    os.replace(staged, target / "host.mjs")  # atomic: a concurrent run never sees half a file
    return target


def command(install: Path, base: str, policies: dict[str, str], log: Path, interval: float) -> list[str]:
    """The ``node host.mjs ...`` command line for these per-namespace policies."""
    node, _npm = _check_node()
    args = [node, str(install / "host.mjs"), "--base", base, "--log", str(log), f"--interval={interval:g}"]
    for ns in NAMESPACES:
        args.append(f"--policy={ns}={policies[ns]}")
    return args
