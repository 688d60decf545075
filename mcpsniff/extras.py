"""The optional extras of the install, and the one line that names the missing one.

The core install (analyze, report, check, diff, export, the pytest plugin) needs only
click, jinja2, rich and pyyaml. Capturing or running things needs an extra; a command
checks for its extra before it starts, so a core install answers with what to install
instead of an ImportError traceback. ``find_spec`` only looks for the package: nothing
heavy is imported here.
"""

from __future__ import annotations

from importlib.util import find_spec

from .errors import MCPSniffError

# extra -> the top-level modules it brings (pyproject.toml's [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "proxy": ("mitmproxy",),  # mcpsniff proxy, ci --via proxy, the addon, mitmproxy flow files
    "capture": ("scapy",),  # mcpsniff capture, watch --port, ci --via loopback
    "demo": ("mitmproxy", "scapy", "mcp", "uvicorn"),  # mcpsniff demo: proxy + capture + the MCP SDK
}


class MissingExtra(MCPSniffError):
    """A command needs an extra that is not installed (exit 2, like any other user error)."""


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if find_spec(name) is None]


def problem(extra: str, what: str) -> str | None:
    """The one-line message when ``what`` (e.g. "mcpsniff capture") cannot run for lack of ``extra``; None when it can."""
    if not missing(extra):
        return None
    return f"{what} needs the '{extra}' extra: pip install 'mcpsniff[{extra}]'"


def require(extra: str, what: str) -> None:
    """Raise MissingExtra unless ``extra`` is installed."""
    message = problem(extra, what)
    if message is not None:
        raise MissingExtra(message)
