"""What to do after the demo: where the report is, and the analyze command for its capture.

The command is printed to be pasted as it is: the file's path quoted for the shell, the
server port that picks the view the report shows (``--port``: the proxy -> server hop of a
proxied run's two), and the program spelled as the user can run it from the same shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


def program() -> str:
    """How to run mcpsniff from the shell the demo was started in.

    Under ``uv run`` (scripts/demo.sh) the venv's ``bin`` is on the demo's PATH only, so
    the shell needs ``uv run`` too; an installed ``mcpsniff`` on PATH is itself; anything
    else is this interpreter with ``-m``.
    """
    if os.environ.get("UV_RUN_RECURSION_DEPTH"):
        return "uv run mcpsniff"
    found = shutil.which("mcpsniff")
    if found and Path(found).resolve().parent == Path(sys.executable).parent.resolve():
        return "mcpsniff"
    return f"{shlex.quote(sys.executable)} -m mcpsniff"


def analyze_command(output: Path, summary: dict[str, Any]) -> str:
    """``mcpsniff analyze <capture> --port <server port>``: the report's verdicts again."""
    files = summary["files"]
    capture = output / files.get("pcap", files.get("jsonl", "run.jsonl"))
    return f"{program()} analyze {shlex.quote(str(capture))} --port {summary['ports']['server']}"


def next_steps(output: Path, summary: dict[str, Any]) -> list[str]:
    """The demo's last lines."""
    files = summary["files"]
    report = output / files.get("html", files["report"])
    return [
        "",
        "Next:",
        f"  report:  {report}" + ("  (open it in a browser)" if "html" in files else ""),
        f"  analyze: {analyze_command(output, summary)}",
    ]
