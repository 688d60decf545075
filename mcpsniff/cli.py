"""Thin click commands: parse options, call the library, print, set the exit code.

Exit codes: 0 nothing stalled, 1 a namespace stalled (or a gate failed), 2 bad input
or usage. Heavy backends (scapy, mitmproxy, jinja2, the MCP SDK) are imported inside
the commands so that ``mcpsniff --help`` and ``mcpsniff analyze`` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


LARGE_FILE = 20 * 1024 * 1024


@contextmanager
def progress_bar(files: list[Path], wanted: bool | None) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr for large inputs (or when asked); None otherwise."""
    size = sum(f.stat().st_size for f in files if f.is_file())
    if wanted is False or (wanted is None and (size < LARGE_FILE or not sys.stderr.isatty())):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    totals: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=size)

        def update(name: str, done: int, total: int) -> None:
            totals[name] = done
            bar.update(task, completed=sum(totals.values()), description=f"reading {name}")

        yield update


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
@click.option("--full", is_flag=True, help="Keep headers, bodies and SSE data of every exchange in --format json (memory grows with the capture).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on for large files on a terminal).")
@friendly_errors
def analyze(files: tuple[Path, ...], config_path: Path | None, fmt: str, namespaces: tuple[str, ...], ports: tuple[int, ...], html_path: Path | None, full: bool, progress: bool | None) -> None:
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

    with progress_bar(list(files), progress) as on_progress:
        analysis = analyze_files(list(files), config_path=config_path, ports=ports, progress=on_progress, full=full or html_path is not None)
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


@main.command()
@click.option("--port", "ports", multiple=True, type=click.IntRange(1, 65535), required=True, metavar="PORT", help="TCP port of the MCP server (repeatable).")
@click.option("--iface", default="lo", show_default=True, help="Interface to capture on.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="pcapng file to write  [default: mcpsniff-<time>.pcapng]")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Stop after this long (default: Ctrl-C or SIGTERM).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config for the analysis.")
@friendly_errors
def capture(ports: tuple[int, ...], iface: str, output: Path | None, duration: float | None, config_path: Path | None) -> None:
    """Capture MCP traffic live on loopback, then tell which namespace failed to rebind.

    Writes a pcapng file as packets arrive (readable even if mcpsniff is killed),
    shows a status line on stderr, stops on Ctrl-C, SIGTERM or --duration, then
    prints the same analysis as `mcpsniff analyze`. Needs root or CAP_NET_RAW.

    \b
    Examples:
      mcpsniff capture --port 5076
      mcpsniff capture --port 5076 -o run.pcapng --duration 60
      mcpsniff capture --port 5076 --port 5077 --iface lo

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input or capture error.
    """
    import time

    from .api import analyze_files
    from .capture.live import run_capture
    from .config import load_config
    from .report.text import render_text

    config = load_config(config_path)  # a bad config fails now, not after the capture
    output = output or Path(f"mcpsniff-{time.strftime('%Y%m%d-%H%M%S')}.pcapng")
    run_capture(ports, output, iface=iface, duration=duration)
    click.echo(f"capture written to {output}", err=True)
    analysis = analyze_files([output], config=config, ports=ports)
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


@main.command()
@click.option("--scenario", type=click.Choice(["healthy", "stale-session", "retries-exhausted", "no-relist", "mixed"]), default="stale-session", show_default=True, help="Which client bugs to play.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder  [default: captures/demo-<time>/]")
@click.option("--down-seconds", type=click.FloatRange(min=0), default=5.0, show_default=True, help="How long the server stays down.")
@click.option("--settle-seconds", type=click.FloatRange(min=1), default=30.0, show_default=True, help="How long to record after the server is back.")
@click.option("--warmup-seconds", type=click.FloatRange(min=0), default=4.0, show_default=True, help="Normal traffic before the restart.")
@click.option("--iface", default="lo", show_default=True, help="Interface for the live capture.")
@click.option("--html/--no-html", default=True, show_default=True, help="Also write report.html.")
@friendly_errors
def demo(scenario: str, output: Path | None, down_seconds: float, settle_seconds: float, warmup_seconds: float, iface: str, html: bool) -> None:
    """Restart a real MCP server under real SDK clients, capture it two ways, diagnose it.

    Starts on 127.0.0.1 a server with four namespaces (tasks, dev-agents, sprint,
    ci-infra; official MCP SDK, uvicorn), the mitmproxy addon in front of it, a live
    capture of both hops, and one SDK client per namespace. Restarts the server
    (about 5 s down), waits for the clients' reconnect schedules to play out, then
    writes capture.pcapng, run.jsonl, report.txt, report.html and summary.json and
    prints the verdicts. Takes about a minute; every process is stopped at the end
    or on Ctrl-C.

    \b
    Scenarios:
      stale-session      sprint resumes its old session id forever (404 loop)
      retries-exhausted  sprint retries twice while the server is down, gives up
      no-relist          sprint re-initializes but never lists its tools again
      mixed              three of the bugs at once
      healthy            every namespace rebinds

    \b
    Examples:
      mcpsniff demo
      mcpsniff demo --scenario retries-exhausted -o /tmp/demo1
      mcpsniff demo --scenario healthy --down-seconds 2 --settle-seconds 15

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 setup error.
    """
    from .demo.run import DemoOptions, Progress, analyze_run, install_sigterm, record, verdict_lines
    from .report.text import render_text

    install_sigterm()
    say = Progress(sys.stderr)
    try:
        run = record(DemoOptions(scenario, output, down_seconds, settle_seconds, warmup_seconds, iface), say)
        say("analyzing the capture")
        analysis, summary = analyze_run(run, html=html)
    except KeyboardInterrupt:
        click.echo("\nmcpsniff: demo interrupted; every process it started has been stopped", err=True)
        sys.exit(130)
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    click.echo(f"\nDemo '{summary['scenario']}' verdicts ({summary['analyzed']}):")
    click.echo("\n".join(verdict_lines(summary)))
    if not summary["agree"]:
        click.echo("note: the pcap, run.jsonl and the clients' own log do not all agree (see summary.json)")
    click.echo(f"\nFiles in {run.output}/: " + ", ".join(summary["files"].values()) + ", summary.json")
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"), show_default=True, help="HTML file to write.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config: namespace rules, thresholds, redaction patterns.")
@click.option("--share", is_flag=True, help="Also replace session ids and host names/addresses by pseudonyms (S1, host1, ...).")
@click.option("--port", "ports", multiple=True, type=int, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
@friendly_errors
def report(files: tuple[Path, ...], output: Path, config_path: Path | None, share: bool, ports: tuple[int, ...]) -> None:
    """Write the HTML timeline report: one self-contained file that pinpoints the stall.

    Secrets (Authorization, cookies, tokens in URLs, configured patterns) are always
    redacted; --share also pseudonymises session ids and hosts so the file can be
    attached to a bug report. The file makes no network requests.

    \b
    Examples:
      mcpsniff report capture.pcap -o report.html
      mcpsniff report run.jsonl --share -o bug-1234.html
      mcpsniff report a.pcapng b.pcapng --port 5076 --config mcpsniff.yaml

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input.
    """
    from .api import analyze_files
    from .config import load_config
    from .report.html import write_html

    config = load_config(config_path)
    analysis = analyze_files(list(files), config=config, ports=ports, full=True)
    write_html(analysis, output, config=config, share=share)
    stalled = ", ".join(ns.name for ns in analysis.stalled) or "none"
    click.echo(f"HTML report: {output} ({len(analysis.namespaces)} namespaces, stalled: {stalled})", err=True)
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


@main.command()
@click.option("--listen", "listen_port", type=click.IntRange(1, 65535), required=True, metavar="PORT", help="Port the proxy listens on (clients connect here).")
@click.option("--upstream", required=True, metavar="URL", help="The MCP server, e.g. http://127.0.0.1:5076")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Records file to write  [default: mcpsniff-<time>.jsonl]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (body size cap, and the analysis).")
@click.option("--listen-host", default="127.0.0.1", show_default=True, help="Address the proxy listens on.")
@friendly_errors
def proxy(listen_port: int, upstream: str, output: Path | None, config_path: Path | None, listen_host: str) -> None:
    """Record MCP traffic through a reverse proxy (mitmdump + the mcpsniff addon).

    Point your MCP clients at the --listen port instead of the server. Every request,
    response and SSE event is written to the records file as it passes (readable even
    if the proxy is killed); while the server is down clients get 502. Stop with
    Ctrl-C or SIGTERM: the analysis of the run is printed.

    \b
    Examples:
      mcpsniff proxy --listen 5077 --upstream http://127.0.0.1:5076 -o run.jsonl
      mcpsniff proxy --listen 5077 --upstream http://127.0.0.1:5076 --config mcpsniff.yaml
      mcpsniff analyze run.jsonl --format json        # later, again

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input or proxy error.
    """
    import signal
    import time

    from .api import analyze_files
    from .capture.proxy import start_proxy
    from .config import load_config
    from .errors import CaptureError
    from .report.text import render_text

    config = load_config(config_path)  # a bad config fails now, not after the run
    output = output or Path(f"mcpsniff-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    handle = start_proxy(listen_port, upstream, output, config=config_path, listen_host=listen_host)
    click.echo(f"mcpsniff: proxy on http://{handle.listen} -> {handle.upstream}, recording to {output} (Ctrl-C to stop)", err=True)
    try:
        while handle.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        died = not handle.running and handle.process.returncode not in (0, None)
        tail = handle.log_tail()
        handle.stop()
    if died:
        raise CaptureError(f"mitmdump exited unexpectedly (code {handle.process.returncode}): {tail}")
    click.echo(f"\nrecords written to {output}", err=True)
    analysis = analyze_files([output], config=config)
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)
