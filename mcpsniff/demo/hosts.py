"""The demo's client hosts and servers: what each is, its policies, its set-up, its command line.

Client hosts (one process each; a scenario may give each namespace its own):

- ``py``: ``clients.py``, the Python SDK 1.x (the project's venv), 2025-era sessions;
- ``ts``: ``ts/host.mjs``, the TypeScript SDK 1.32 (``@modelcontextprotocol/sdk``), 2025-era sessions;
- ``py2``: ``modern/clients.py``, the Python SDK 2.3.0 (its own venv, ``sdk2.py``), mode auto:
  2026-07-28 with a 2.x server, a negotiated fallback to a 2025 session with a 1.x server;
- ``ts2``: ``ts/host2.mjs``, the TypeScript SDK 2.4 (``@modelcontextprotocol/client``), negotiation auto.

Servers: ``py`` (``server.py``, mcp 1.x, 2025-era sessions only) and ``py2``
(``modern/server.py``, mcp 2.3.0, both revisions on the same paths).

Standard library only at import time (``mcpsniff demo --help`` lists the scenarios).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import NAMESPACES


@dataclass(frozen=True)
class Host:
    name: str
    label: str  # for the progress lines
    default_policy: str
    rebinding: frozenset[str]  # policies whose clients are expected to rebind (unless the scenario says otherwise)


HOSTS: dict[str, Host] = {
    h.name: h
    for h in (
        Host("py", "Python SDK 1.x clients", "healthy", frozenset({"healthy"})),
        Host("ts", "TypeScript SDK 1.32 host (one Node process)", "cc", frozenset({"cc"})),
        Host("py2", "Python SDK 2.3.0 clients (own venv)", "rebuild", frozenset({"rebuild", "listen-only"})),
        Host("ts2", "TypeScript SDK 2.4 host (one Node process, negotiation auto)", "rebuild", frozenset({"rebuild", "keep", "relisten"})),
    )
}

# modern/clients.py's policies (it imports mcp 2.x, so it cannot be imported here)
PY2_POLICIES: dict[str, str] = {
    "rebuild": "on error: a new Client (probe, tools/list, listen) after 1,2,4,8,16 s",
    "dies": "no host reconnect: the first error ends the namespace's Client for good",
    "listen-only": "no calls, only a subscriptions/listen stream; a new Client when it is lost",
    "listen-dies": "no calls, only a subscriptions/listen stream, never re-opened once lost",
}

SERVERS = {"py": "mcp 1.x server: 2025-era sessions", "py2": "mcp 2.3.0 server: 2025-era sessions and 2026-07-28 on the same paths"}


def policy_description(host: str, policy: str) -> str:
    if host == "ts":
        from .tshost import POLICIES

        return POLICIES[policy]
    if host == "ts2":
        from .tshost import POLICIES_V2

        return POLICIES_V2[policy]
    if host == "py2":
        return PY2_POLICIES[policy]
    from .clients import POLICIES as PY_POLICIES

    return PY_POLICIES[policy].description


def prepare(hosts: set[str], server: str, say: Any) -> dict[str, Any]:
    """Install what these hosts and this server need (before any process starts: a missing
    piece is a one-line CaptureError); returns what ``command`` needs per host."""
    ready: dict[str, Any] = {}
    if "py2" in hosts or server == "py2":
        from . import sdk2

        ready["py2"] = sdk2.ensure_env(say)
    if hosts & {"ts", "ts2"}:
        from . import tshost

        ready["ts"] = tshost.ensure_installed(say, tshost.MIN_NODE_V2 if "ts2" in hosts else tshost.MIN_NODE)
    return ready


def command(host: str, ready: dict[str, Any], base: str, policies: dict[str, str], log: Path, interval: float) -> list[str]:
    """The command line of one host process for ``policies`` (namespace -> policy; only those run)."""
    subset = [] if set(policies) == set(NAMESPACES) else [f"--ns={ns}" for ns in NAMESPACES if ns in policies]
    if host in ("ts", "ts2"):
        from . import tshost

        return tshost.command(ready["ts"], base, policies, log, interval, "host2.mjs" if host == "ts2" else "host.mjs")
    if host == "py2":
        from .sdk2 import CLIENTS

        prefix = [str(ready["py2"]), str(CLIENTS)]
    else:
        prefix = [sys.executable, "-m", "mcpsniff.demo.clients"]
    return [*prefix, "--base", base, "--log", str(log), f"--interval={interval:g}", *(f"--policy={ns}={p}" for ns, p in policies.items()), *subset]


def server_command(server: str, port: int, start_at: float | None = None, stateless: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    """The demo server's command line (listening at ``start_at`` if given)."""
    if server == "py2":
        from . import sdk2

        args = [str(sdk2.require()), str(sdk2.SERVER), "--port", str(port)]
    else:
        args = [sys.executable, "-m", "mcpsniff.demo.server", "--port", str(port)]
    if start_at is not None:
        args += ["--start-at", f"{start_at:.3f}"]
    if stateless:
        args.append("--stateless")
    return [*args, *extra]
