"""The TypeScript-SDK client hosts (``ts/host.mjs``, ``ts/host2.mjs``): policies, install, command line.

``host.mjs`` runs one official ``@modelcontextprotocol/sdk`` 1.32 client per namespace in
one Node process; ``host2.mjs`` the same with ``@modelcontextprotocol/client`` 2.4 (the
2026-07-28 revision, version negotiation ``auto``).  Both SDKs are in one
``ts/package.json``: the node modules are installed from ``ts/package-lock.json`` with
``npm ci`` into a cache folder named after the lockfile's hash
(``${XDG_CACHE_HOME:-~/.cache}/mcpsniff/ts-host-<hash>/``) the first time a TS scenario
runs (or by ``scripts/setup.sh``); the host scripts are copied there on every run, so an
edit of them in the checkout takes effect without a new install.
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
MIN_NODE_V2 = 20  # @modelcontextprotocol/client 2.x's engines
HOST_SCRIPTS = ("host.mjs", "host2.mjs")

# How the host.mjs (TS SDK 1.32) reacts (the SDK underneath always does its own GET-stream retries).
POLICIES: dict[str, str] = {
    "cc": "Claude-Code-like: fresh transport + initialize + tools/list after 1,2,4,8,16 s, then gives up",
    "idle": "connects and lists its tools once, then no calls; never reacts to SDK errors (only the SDK's 2 GET retries)",
    "stale": "resumes the old session id without initialize, forever, 1 s apart (404 loop)",
    "reinit-once": "re-initializes once after 1 s; if that fails it gives up for good",
    "hang": "like cc, but once rebound calls the server's hang tool and waits forever",
    "no-relist": "like cc, but never lists its tools again in a new session",
}

# How host2.mjs (TS SDK 2.4, negotiation auto) reacts; the SDK itself never retries nor re-listens.
POLICIES_V2: dict[str, str] = {
    "rebuild": "on a failed call or lost listen stream: a new Client (probe, tools/list, listen) after 1,2,4,8,16 s",
    "keep": "never rebuilds: keeps calling on the same Client; its listen stream is not re-opened",
    "relisten": "like keep, but re-opens its listen stream after 1,2,4,8,16 s",
    "dies": "no host reconnect: the first failure closes the Client for good",
}


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcpsniff"


def lock_digest() -> str:
    return hashlib.sha256((TS_DIR / "package-lock.json").read_bytes()).hexdigest()[:16]


def _check_node(min_node: int = MIN_NODE) -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        raise CaptureError(f"the ts client host needs Node.js {min_node}+ and npm: {missing} not found on PATH (Debian: apt-get install nodejs npm; or scripts/setup.sh)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        major = 0
    if major < min_node:
        raise CaptureError(f"the ts client host needs Node.js {min_node}+, found {version or 'an unknown version'} at {node}")
    return node, npm


def ensure_installed(say: Callable[[str], None] = lambda _m: None, min_node: int = MIN_NODE) -> Path:
    """The cache folder with node_modules (``npm ci`` the first time) and current host scripts."""
    _node, npm = _check_node(min_node)
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
    for script in HOST_SCRIPTS:
        staged = target / f".{script}.{os.getpid()}"
        shutil.copy2(TS_DIR / script, staged)
        os.replace(staged, target / script)  # atomic: a concurrent run never sees half a file
    return target


def command(install: Path, base: str, policies: dict[str, str], log: Path, interval: float, script: str = "host.mjs") -> list[str]:
    """The ``node host.mjs ...`` (or ``host2.mjs``) command line for these per-namespace policies;
    a namespace ``policies`` leaves out is not run (``--ns``)."""
    node, _npm = _check_node(MIN_NODE_V2 if script == "host2.mjs" else MIN_NODE)
    args = [node, str(install / script), "--base", base, "--log", str(log), f"--interval={interval:g}"]
    for ns in NAMESPACES:
        if ns in policies:
            args.append(f"--policy={ns}={policies[ns]}")
    if set(policies) != set(NAMESPACES):
        args += [f"--ns={ns}" for ns in NAMESPACES if ns in policies]
    return args
