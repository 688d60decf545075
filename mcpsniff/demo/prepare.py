"""``python -m mcpsniff.demo.prepare``: install what the demo's SDK client hosts need, once.

Run by ``scripts/setup.sh`` (so ``scripts/demo.sh`` and ``scripts/test.sh`` need nothing
else on a fresh machine): the TS hosts' node modules (``tshost.ensure_installed``: npm ci
of ``ts/package-lock.json``, both SDKs) when node and npm are there, and the mcp 2.3.0
environment (``sdk2.ensure_env``).  Each is skipped when already installed.  A failure
(e.g. offline on a fresh machine) is one line and not fatal: the first demo scenario that
needs the piece tries again and, failing, stops with that line (exit 2).
"""

from __future__ import annotations

import shutil
import sys

from ..errors import CaptureError


def say(message: str) -> None:
    print(f"setup: {message}", file=sys.stderr, flush=True)


def main() -> int:
    from . import sdk2, tshost

    steps = [("the mcp 2.x environment of the 2026-07-28 scenarios", sdk2.ensure_env)]
    if shutil.which("node") and shutil.which("npm"):
        steps.insert(0, ("the TS client hosts' node modules", tshost.ensure_installed))
    for what, step in steps:
        try:
            step(say)
        except CaptureError as exc:
            say(f"{what} could not be installed now ({exc}); the demo scenarios that need it will try again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
