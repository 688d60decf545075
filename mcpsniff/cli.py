"""Thin click commands: parse options, call the library, print, set the exit code.

Exit codes: 0 nothing stalled, 1 a namespace stalled (or a gate failed), 2 bad input
or usage. Heavy backends (scapy, mitmproxy, jinja2, the MCP SDK) are imported inside
the commands so that ``mcpsniff --help`` and ``mcpsniff analyze`` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import MCPSniffError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_STALLED, EXIT_BAD_INPUT = 0, 1, 2


def friendly_errors(func: F) -> F:
    """Turn MCPSniffError (and a broken pipe) into a one-line message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MCPSniffError as exc:
            click.echo(f"mcpsniff: error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except BrokenPipeError:
            sys.exit(EXIT_OK)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcpsniff")
def main() -> None:
    """Capture and diagnose MCP streamable-HTTP sessions across server restarts.

    \b
    Examples:
      mcpsniff demo                              # run the built-in restart demo
      mcpsniff analyze capture.pcapng            # which namespace failed to rebind, and why
      mcpsniff analyze run.jsonl --format json   # machine-readable verdicts
    """


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config: namespace rules, thresholds, redaction.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@click.option("--namespace", "namespaces", multiple=True, metavar="NS", help="Only report this namespace (repeatable).")
@click.option("--port", "ports", multiple=True, type=int, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML timeline report here.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on for large files on a terminal).")
@friendly_errors
def analyze(files: tuple[Path, ...], config_path: Path | None, fmt: str, namespaces: tuple[str, ...], ports: tuple[int, ...], html_path: Path | None, progress: bool | None) -> None:
    """Tell, per namespace, whether its MCP session re-bound after a server restart.

    FILES are pcap/pcapng captures (tcpdump, Wireshark, `mcpsniff capture`) or
    records files (.jsonl) written by the mitmproxy addon.

    \b
    Examples:
      mcpsniff analyze capture.pcap
      mcpsniff analyze capture.pcapng --namespace sprint --format json
      mcpsniff analyze run.jsonl --config mcpsniff.yaml --html report.html

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input.
    """
    from .api import analyze_files
    from .report.text import render_text
    from .report.jsondoc import render_json

    analysis = analyze_files(list(files), config_path=config_path, ports=ports, progress=progress)
    if namespaces:
        analysis.namespaces = [ns for ns in analysis.namespaces if ns.name in namespaces]
    if fmt == "json":
        click.echo(render_json(analysis))
    else:
        click.echo(render_text(analysis, color=sys.stdout.isatty()))
    if html_path is not None:
        from .report.html import write_html

        write_html(analysis, html_path, config_path=config_path)
        click.echo(f"HTML report: {html_path}", err=True)
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


# --- further commands are added below this line (one function each) ---
