"""Thin click commands: parse options, call the library, print, set the exit code.

Exit codes: 0 nothing stalled, 1 a namespace stalled (or a gate failed), 2 bad input
or usage, 3 an internal error (5 for ``ci``; see guard.py). Heavy backends (scapy,
mitmproxy, jinja2, the MCP SDK) are imported inside the commands so that
``mcpsniff --help`` and ``mcpsniff analyze`` start fast.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .demo.run import SCENARIOS as DEMO_SCENARIOS, scenario_help  # stdlib only: the scenario names for --scenario
from .extras import problem as extra_problem, require as require_extra
from .guard import EXIT_BAD_INPUT, EXIT_INTERNAL_CI, EXIT_OK, EXIT_STALLED, PORT, Seconds, friendly_errors  # noqa: F401 - EXIT_BAD_INPUT for callers

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


class NeedsExtra(click.Command):
    """A command that needs an extra (mcpsniff/extras.py), checked before its options are parsed:
    `mcpsniff capture` alone already says what to install; its --help works without the extra."""

    def __init__(self, *args: Any, extra: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not set(args) & set(ctx.help_option_names):
            message = extra_problem(self.extra, f"mcpsniff {self.name}")
            if message is not None:
                click.echo(f"mcpsniff: error: {message}", err=True)
                ctx.exit(EXIT_BAD_INPUT)
        return super().parse_args(ctx, args)


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
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the HTML timeline report here.")
@click.option("--full", is_flag=True, help="Keep headers, bodies and SSE data of every exchange in --format json (memory grows with the capture).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on for large files on a terminal).")
@friendly_errors
def analyze(files: tuple[Path, ...], config_path: Path | None, fmt: str, namespaces: tuple[str, ...], ports: tuple[int, ...], html_path: Path | None, full: bool, progress: bool | None) -> None:
    """Tell, per namespace, whether its MCP session re-bound after a server restart.

    FILES are pcap/pcapng captures (tcpdump, Wireshark, `mcpsniff capture`),
    records files (.jsonl) written by the mitmproxy addon, mitmproxy flow files
    (`mitmdump -w`) or HAR files; the format is detected from the content.

    \b
    Examples:
      mcpsniff analyze capture.pcap
      mcpsniff analyze capture.pcapng --namespace sprint --format json
      mcpsniff analyze run.jsonl --config mcpsniff.yaml --html report.html

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input, 3 internal error.
    """
    from .api import analyze_files, require_found
    from .config import load_config
    from .paths import output_file
    from .report.text import render_text
    from .report.jsondoc import render_json

    output_file(html_path, "--html")  # before the analysis, not after it
    config = load_config(config_path)
    with progress_bar(list(files), progress) as on_progress:
        analysis = analyze_files(list(files), config=config, ports=ports, progress=on_progress, full=full or html_path is not None)
    require_found(analysis, list(files), config, ports, namespaces)  # a --port or --namespace the capture does not hold: say what it holds
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


def _watch_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--on-stall CMD and --exit-on-stall (for watch, capture --watch, proxy --watch)."""
    f = click.option("--exit-on-stall", is_flag=True, help="Stop at the first namespace shown stalled (the capture file is closed as on Ctrl-C) and exit 1.")(f)
    return click.option("--on-stall", metavar="CMD", help="Run CMD (a shell command) once per namespace that becomes stalled, with MCPSNIFF_NAMESPACE, MCPSNIFF_SIGNATURE, MCPSNIFF_STALL_POINT, MCPSNIFF_BASIS, MCPSNIFF_INFERENCE, MCPSNIFF_DETAIL in its environment.")(f)


def _watched(mode: str, config: Any, sources: list[str], on_stall: str | None, exit_on_stall: bool, **args: Any) -> Any:
    """Run a watch (mcpsniff/watch.py), print its summary on stderr; the final analysis and whether it stopped on a stall."""
    from .watch import run_watch, summary_line

    analysis, watched = run_watch(mode, config, sources, on_stall=on_stall, exit_on_stall=exit_on_stall, **args)  # interval, view: run_watch's; the rest the source's
    click.echo(summary_line(watched), err=True)
    return analysis, exit_on_stall and watched.stalled


@main.command(cls=NeedsExtra, extra="capture")
@click.option("--port", "ports", multiple=True, type=click.IntRange(1, 65535), metavar="PORT", help="TCP port of the MCP server (repeatable); needed unless -f says what to capture.")
@click.option("-i", "--iface", default="lo", show_default=True, metavar="IFACE", help="Interface to capture on; any: every interface (Linux cooked v2, as tcpdump -i any).")
@click.option("-o", "-w", "--output", type=click.Path(dir_okay=False, path_type=Path), help="pcapng file to write (-w as in tcpdump; its folder must exist)  [default: mcpsniff-<time>.pcapng]")
@click.option("-f", "--filter", "expr", metavar="EXPR", default="", help="BPF filter expression (tcpdump/pcap-filter syntax), ANDed with the --port filter: (tcp port A or tcp port B) and (EXPR).")
@click.option("-r", "read_path", type=click.Path(path_type=Path), metavar="FILE", help="Not here: a saved capture is read by `mcpsniff analyze FILE`.")
@click.option("--duration", type=Seconds(min=0, min_open=True), metavar="SECONDS", help="Stop after this long (default: Ctrl-C or SIGTERM).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config for the analysis.")
@click.option("--watch", "watching", is_flag=True, help="Show every namespace's state live while capturing (as `mcpsniff watch`).")
@_watch_options
@friendly_errors
def capture(ports: tuple[int, ...], iface: str, output: Path | None, expr: str, read_path: Path | None, duration: float | None, config_path: Path | None, watching: bool, on_stall: str | None, exit_on_stall: bool) -> None:
    """Capture MCP traffic live (loopback by default), then tell which namespace failed to rebind.

    Writes a pcapng file as packets arrive (readable even if mcpsniff is killed; its
    interface, filter and application are in the file's options, as tshark and
    capinfos show), shows a status line on stderr, stops on Ctrl-C, SIGTERM or
    --duration, then prints the same analysis as `mcpsniff analyze`. Needs root or
    CAP_NET_RAW. The flags follow tcpdump: -i, -w, -f; a saved file is read by
    `mcpsniff analyze FILE`, not by -r.

    \b
    Examples:
      mcpsniff capture --port 5076
      mcpsniff capture --port 5076 -w run.pcapng --duration 60
      mcpsniff capture -i any --port 5076 -f 'host 10.0.0.7'
      mcpsniff capture -i any -f 'tcp port 5076 or tcp port 5077'
      mcpsniff capture --port 5076 --port 5077 --iface lo

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input or capture error,
    3 internal error.
    """
    import time

    from .api import analyze_files
    from .capture.live import run_capture
    from .config import load_config
    from .errors import BadInputError
    from .paths import output_file
    from .report.text import render_text

    if read_path is not None:
        raise BadInputError(f"capture records live; a saved capture is read by: mcpsniff analyze {read_path}" + "".join(f" --port {p}" for p in ports))
    if not ports and not expr.strip():
        raise BadInputError("nothing to capture: give --port PORT (the MCP server's) or a filter expression -f EXPR")
    config = load_config(config_path)  # a bad config fails now, not after the capture
    output = output_file(output, "-o") or Path(f"mcpsniff-{time.strftime('%Y%m%d-%H%M%S')}.pcapng")
    stopped = False
    if watching or on_stall or exit_on_stall:  # the analysis is made as packets come: no second read
        analysis, stopped = _watched("live", config, [str(output)], on_stall, exit_on_stall, ports=ports, output=output, iface=iface, duration=duration, expr=expr)
        click.echo(f"capture written to {output}", err=True)
    else:
        run_capture(ports, output, iface=iface, duration=duration, expr=expr)
        click.echo(f"capture written to {output}", err=True)
        analysis = analyze_files([output], config=config, ports=ports or None)
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    sys.exit(EXIT_STALLED if analysis.stalled or stopped else EXIT_OK)


@main.command(cls=NeedsExtra, extra="demo")
@click.option("--scenario", type=click.Choice(list(DEMO_SCENARIOS)), default="stale-session", show_default=True, help="Which client bugs to play.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder  [default: captures/demo-<time>/]")
@click.option("--mode", type=click.Choice(["proxied", "direct"]), help="proxied: clients -> mitmdump -> server, scapy capture of both hops + run.jsonl; direct: clients -> server, tcpdump capture.pcap (like a user's capture)  [default: the scenario's, proxied]")
@click.option("--down-seconds", type=Seconds(min=0), help="How long the server stays down  [default: the scenario's: 5; 40 for ts-backoff-exhausted]")
@click.option("--settle-seconds", type=Seconds(min=1), help="How long to record after the server is back  [default: 25; 40 for retries-exhausted and mixed, whose give-up needs 35 s of silence; 35 for ts-hang]")
@click.option("--warmup-seconds", type=Seconds(min=0), default=4.0, show_default=True, help="Normal traffic before the restart.")
@click.option("--call-interval", type=Seconds(min=0.1), default=0.7, show_default=True, help="Seconds between each client's tool calls.")
@click.option("--iface", default="lo", show_default=True, help="Interface for the live capture.")
@click.option("--html/--no-html", default=True, show_default=True, help="Also write report.html.")
@friendly_errors
def demo(scenario: str, output: Path | None, mode: str | None, down_seconds: float | None, settle_seconds: float | None, warmup_seconds: float, call_interval: float, iface: str, html: bool) -> None:
    """Restart a real MCP server under real SDK clients, capture it, diagnose it.

    Starts on 127.0.0.1 a server with four namespaces (tasks, dev-agents, sprint,
    ci-infra; official MCP SDK, uvicorn), the mitmproxy addon in front of it, a live
    capture of both hops, and one SDK client per namespace. Restarts the server
    (about 5 s down), waits for the clients' reconnect schedules to play out, then
    writes capture.pcapng, run.jsonl, clients.jsonl, truth.json, report.txt,
    report.html and summary.json and prints the verdicts. With --mode direct the
    clients talk straight to the server and tcpdump writes capture.pcap instead.
    Takes about a minute; every process is stopped at the end or on Ctrl-C.

    {scenarios}

    \b
    Examples:
      mcpsniff demo
      mcpsniff demo --scenario retries-exhausted -o /tmp/demo1
      mcpsniff demo --scenario healthy --down-seconds 2 --settle-seconds 15
      mcpsniff demo --scenario ts-idle-get --mode direct -o /tmp/idle
      mcpsniff demo --scenario sessionless-dies --mode direct

    Exit code: 0 the verdicts are what the scenario's clients really did (a stalled
    namespace included), 1 they are not, 2 setup error, 3 internal error.
    """
    from .demo.nextsteps import next_steps
    from .demo.run import INTERRUPTS, DemoOptions, Progress, analyze_run, record, verdict_lines
    from .report.text import render_text

    INTERRUPTS.install()
    say = Progress(sys.stderr)
    try:
        run = record(DemoOptions(
            scenario=scenario, output=output, down_seconds=down_seconds, settle_seconds=settle_seconds,
            warmup_seconds=warmup_seconds, call_interval=call_interval, iface=iface, mode=mode,
        ), say)
        say("analyzing the capture")
        analysis, summary = analyze_run(run, html=html)
    except KeyboardInterrupt:
        click.echo("\nmcpsniff: demo interrupted; every process it started has been stopped", err=True)
        sys.exit(130)
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    click.echo(f"\nDemo '{summary['scenario']}' verdicts ({summary['views'][summary['report_view']]}):")
    click.echo("\n".join(verdict_lines(summary)))
    if not summary["agree"]:
        views = ", ".join(k for k in summary["views"] if k != "client")
        click.echo(f"note: the views ({views}) and the clients' own log do not all agree (see summary.json)")
    click.echo(f"\nFiles in {run.output}/: " + ", ".join(summary["files"].values()) + ", summary.json")
    click.echo("\n".join(next_steps(run.output, summary)))
    if not summary["as_expected"]:
        click.echo("mcpsniff: the verdicts differ from what the scenario's clients did (see summary.json)", err=True)
    sys.exit(EXIT_OK if summary["as_expected"] else EXIT_STALLED)


# the scenarios grouped by protocol revision, from demo/run.py (indented like the docstring click cleans)
demo.help = (demo.help or "").replace("{scenarios}", textwrap.indent(scenario_help(), "    ").lstrip())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"), show_default=True, help="HTML file to write.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config: namespace rules, thresholds, redaction patterns.")
@click.option("--share", is_flag=True, help="Also replace session ids and host names/addresses by pseudonyms (S1, host1, ...).")
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
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

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input, 3 internal error.
    """
    from .api import analyze_files, require_found
    from .config import load_config
    from .paths import output_file
    from .report.html import write_html

    output_file(output, "-o")
    config = load_config(config_path)
    analysis = analyze_files(list(files), config=config, ports=ports, full=True)
    require_found(analysis, list(files), config, ports)
    write_html(analysis, output, config=config, share=share)
    stalled = ", ".join(ns.name for ns in analysis.stalled) or "none"
    click.echo(f"HTML report: {output} ({len(analysis.namespaces)} namespaces, stalled: {stalled})", err=True)
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="pcapng file to write (its folder must exist).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config: namespace rules, thresholds.")
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP); every packet is copied either way.")
@friendly_errors
def annotate(file: Path, output: Path, config_path: Path | None, ports: tuple[int, ...]) -> None:
    """Copy a capture to pcapng with the diagnosis as packet comments, for Wireshark.

    Every packet is kept unchanged (bytes, lengths, timestamp); comments are added at
    the stall point (namespace, verdict, signature, basis, display filter), at each
    namespace's session starts and rebinds, where the server went down and came
    back, and at failures (error responses, exchanges a restart cut, refused
    connections attributed to a namespace). The file is written as it is read.

    \b
    Examples:
      mcpsniff annotate capture.pcap -o annotated.pcapng
      mcpsniff annotate capture.pcapng -o annotated.pcapng --port 5076
      tshark -r annotated.pcapng -Y frame.comment -T fields -e frame.number -e frame.comment

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input, 3 internal error.
    """
    from .api import annotate_file
    from .config import load_config

    analysis, written = annotate_file(file, output, config=load_config(config_path), ports=ports or None)
    if written.problem:
        click.echo(f"warning: {written.problem}", err=True)
    if written.unplaced:
        click.echo(f"warning: {written.unplaced} comment(s) not written: their packet is a pcapng simple packet block (no options) or past the damage", err=True)
    stalled = ", ".join(ns.name for ns in analysis.stalled) or "none"
    click.echo(f"annotated capture: {output} ({written.packets} packets, {written.comments} comments; stalled: {stalled})", err=True)
    sys.exit(EXIT_STALLED if analysis.stalled else EXIT_OK)


@main.command(cls=NeedsExtra, extra="proxy")
@click.option("--listen", "listen_port", type=click.IntRange(1, 65535), required=True, metavar="PORT", help="Port the proxy listens on (clients connect here).")
@click.option("--upstream", required=True, metavar="URL", help="The MCP server, e.g. http://127.0.0.1:5076")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Records file to write  [default: mcpsniff-<time>.jsonl]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (body size cap, and the analysis).")
@click.option("--listen-host", default="127.0.0.1", show_default=True, help="Address the proxy listens on.")
@click.option("--filter", "filter_expr", metavar="EXPR", help="Record only flows matching this mitmproxy filter expression, e.g. '~u /tasks/' (the others pass through unrecorded).")
@click.option("--watch", "watching", is_flag=True, help="Show every namespace's state live from the records as they are written (as `mcpsniff watch`).")
@_watch_options
@friendly_errors
def proxy(listen_port: int, upstream: str, output: Path | None, config_path: Path | None, listen_host: str, filter_expr: str | None, watching: bool, on_stall: str | None, exit_on_stall: bool) -> None:
    """Record MCP traffic through a reverse proxy (mitmdump + the mcpsniff addon).

    Point your MCP clients at the --listen port instead of the server. Every request,
    response and SSE event is written to the records file as it passes (readable even
    if the proxy is killed); while the server is down clients get 502. Stop with
    Ctrl-C or SIGTERM: the analysis of the run is printed.

    \b
    Examples:
      mcpsniff proxy --listen 5077 --upstream http://127.0.0.1:5076 -o run.jsonl
      mcpsniff proxy --listen 5077 --upstream http://127.0.0.1:5076 --config mcpsniff.yaml
      mcpsniff proxy --listen 5077 --upstream http://127.0.0.1:5076 --filter '~u /tasks/'
      mcpsniff analyze run.jsonl --format json        # later, again

    Exit code: 0 nothing stalled, 1 a namespace stalled, 2 bad input or proxy error,
    3 internal error.
    """
    import signal
    import time

    from .api import analyze_files
    from .capture.proxy import check_filter, start_proxy
    from .config import load_config
    from .errors import CaptureError
    from .report.text import render_text

    config = load_config(config_path)  # a bad config fails now, not after the run
    if filter_expr:
        check_filter(filter_expr)
    from .paths import output_file

    output = output_file(output, "-o") or Path(f"mcpsniff-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")

    if watching or on_stall or exit_on_stall:  # the records are analyzed as the addon writes them: no second read
        analysis, stopped = _watched("proxy", config, [str(output)], on_stall, exit_on_stall, listen_port=listen_port, upstream=upstream, output=output, config_path=config_path, listen_host=listen_host, filter_expr=filter_expr)
        click.echo(f"\nrecords written to {output}", err=True)
        click.echo(render_text(analysis, color=sys.stdout.isatty()))
        sys.exit(EXIT_STALLED if analysis.stalled or stopped else EXIT_OK)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    handle = start_proxy(listen_port, upstream, output, config=config_path, listen_host=listen_host, filter_expr=filter_expr)
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


@main.command("addon-path", cls=NeedsExtra, extra="proxy")
@friendly_errors
def addon_path() -> None:
    """Print the path of the mcpsniff addon script, for mitmdump/mitmweb -s.

    The addon records MCP traffic through your own mitmproxy setup, as
    `mcpsniff proxy` does (which runs mitmdump with it for you). Its options:
    mcpsniff_output (the records file), mcpsniff_config, mcpsniff_max_body.

    \b
    Examples:
      mitmdump -s "$(mcpsniff addon-path)" --mode reverse:http://127.0.0.1:5076 -p 5077 --set mcpsniff_output=run.jsonl
      mitmweb -s "$(mcpsniff addon-path)" --set mcpsniff_output=run.jsonl
      mcpsniff analyze run.jsonl

    Exit code: 0 printed, 2 the 'proxy' extra (mitmproxy) is not installed, 3 internal error.
    """
    from .capture.proxy import addon_script

    click.echo(str(addon_script()))


# --- CI gate and exports (check, ci, export) ---


def _gate_rule(require: str | None, within: float | None, config_path: Path | None, same_tools: bool = False) -> tuple[Any, Any]:
    """The config and the gate rule; --within defaults to the config's thresholds.rebind_within."""
    from .analysis.gate import GateRule, parse_require
    from .config import load_config

    config = load_config(config_path)
    return config, GateRule(parse_require(require), within if within is not None else config.thresholds.rebind_within, same_tools)


def _gate_lines(gate: Any) -> list[str]:
    lines = []
    for r in gate.results:
        if not r.checked:
            lines.append(f"skip  {r.name:<11} {r.verdict} (not named by --require-rebind)")
        elif r.passed:
            how = f"rebound {r.rebind_seconds:.2f} s after the server came back" if r.rebind_seconds is not None else r.verdict
            lines.append(f"pass  {r.name:<11} {how}")
        else:
            lines.append(f"FAIL  {r.name:<11} {r.message}")
    lines += [f"FAIL  {problem}" for problem in gate.problems]
    lines.append(("gate passed: " if gate.passed else "gate FAILED: ") + gate.rule.describe())
    return lines


_REQUIRE_HELP = "Namespaces that must be proven to rebind: 'all' or a comma list (then 'unknown' fails too; default: only 'stalled' fails)."
_WITHIN_HELP = "A namespace must rebind within this many seconds after the server came back  [default: thresholds.rebind_within of the config, 60]"


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--require-rebind", "require", metavar="all|NS,...", help=_REQUIRE_HELP)
@click.option("--within", type=Seconds(min=0), metavar="SECONDS", help=_WITHIN_HELP)
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here (one testcase per namespace).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the gate's verdicts as JSON here.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (namespace rules, thresholds, redaction).")
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
@click.option("--require-same-tools", "same_tools", is_flag=True, help="Also fail a namespace whose tool catalog after the rebind differs from before (tools missing, added or changed), or that calls a tool its new session did not list.")
@click.option("--sarif", "sarif_path", type=click.Path(dir_okay=False, path_type=Path), help="Write SARIF 2.1.0 here (a result per failing namespace, for code-scanning dashboards).")
@friendly_errors
def check(files: tuple[Path, ...], require: str | None, within: float | None, junit_path: Path | None, json_path: Path | None, config_path: Path | None, ports: tuple[int, ...], same_tools: bool, sarif_path: Path | None) -> None:
    """Gate a capture in CI: fail when a namespace did not rebind (in time).

    A namespace breaks the rule when it stalled, when it rebound later than
    --within seconds after the server came back, or (with --require-rebind)
    when the capture cannot prove it rebound. A capture with no MCP traffic fails.
    Failure messages name the stall point and the signature; JUnit and JSON
    outputs are redacted. Under GitHub Actions (GITHUB_ACTIONS=true) it also
    appends the verdict table to $GITHUB_STEP_SUMMARY and prints an ::error
    annotation per failing namespace.

    \b
    Examples:
      mcpsniff check capture.pcapng
      mcpsniff check capture.pcapng --require-rebind all --within 30 --junit junit.xml
      mcpsniff check run.jsonl --require-rebind tasks,sprint --json gate.json
      mcpsniff check capture.pcap --require-same-tools
      mcpsniff check capture.pcap --sarif mcpsniff.sarif

    Exit code: 0 the gate passed, 1 it failed, 2 bad input, 3 internal error.
    """
    from .analysis.gate import evaluate
    from .api import analyze_files, require_found
    from .paths import output_file

    for path, option in ((junit_path, "--junit"), (json_path, "--json"), (sarif_path, "--sarif")):
        output_file(path, option)
    config, rule = _gate_rule(require, within, config_path, same_tools)
    analysis = analyze_files(list(files), config=config, ports=ports, full=False)
    require_found(analysis, list(files), config, ports)
    gate = evaluate(analysis, rule)
    if junit_path is not None:
        from .report.junit import write_junit

        write_junit(analysis, gate, junit_path, config)
    if json_path is not None:
        from .report.summary import gate_summary, write_json

        write_json(gate_summary(analysis, gate, config), json_path)
    from .report.github import github_actions, write_sarif

    if sarif_path is not None:
        write_sarif(analysis, gate, sarif_path, config)
    click.echo("\n".join(_gate_lines(gate)))
    github_actions(analysis, gate, config)
    sys.exit(EXIT_OK if gate.passed else EXIT_STALLED)


@main.command(context_settings={"allow_interspersed_args": False})
@click.option("--port", type=click.IntRange(1, 65535), required=True, metavar="PORT", help="TCP port of the MCP server the command restarts.")
@click.option("--via", type=click.Choice(["loopback", "proxy"]), default="loopback", show_default=True, help="loopback: scapy capture on --iface (root/CAP_NET_RAW); proxy: mitmdump in front of PORT, clients use $MCPSNIFF_URL.")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=Path("mcpsniff-artifacts"), show_default=True, help="Folder for the bundle.")
@click.option("--require-rebind", "require", metavar="all|NS,...", help=_REQUIRE_HELP)
@click.option("--within", type=Seconds(min=0), metavar="SECONDS", help=_WITHIN_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (namespace rules, thresholds, redaction).")
@click.option("--proxy-port", type=click.IntRange(1, 65535), metavar="PORT", help="Port of the proxy with --via proxy  [default: a free port]")
@click.option("--iface", default="lo", show_default=True, help="Interface for --via loopback.")
@click.option("--timeout", type=Seconds(min=0, min_open=True), metavar="SECONDS", help="Stop the command after this long (counts as a command failure).")
@click.option("--share", is_flag=True, help="Also pseudonymise session ids and hosts in report.html.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@friendly_errors(internal=EXIT_INTERNAL_CI)
def ci(port: int, via: str, artifacts: Path, require: str | None, within: float | None, config_path: Path | None, proxy_port: int | None, iface: str, timeout: float | None, share: bool, command: tuple[str, ...]) -> None:
    """Capture MCP traffic around COMMAND (e.g. a restart test), gate on it, write a bundle.

    Starts the capture, runs COMMAND (its output passes through; it gets
    MCPSNIFF_URL, MCPSNIFF_PORT, MCPSNIFF_PROXY_PORT with --via proxy, and
    MCPSNIFF_ARTIFACTS), stops the capture when it exits, analyzes, and writes to
    --artifacts: capture.pcapng (loopback) or capture.jsonl (proxy), report.html
    (secrets redacted), summary.json and junit.xml - also when COMMAND fails.
    Processes COMMAND leaves behind in its process group are stopped. The capture
    file itself is not redacted.

    \b
    Examples:
      mcpsniff ci --port 5076 -- pytest tests/restart
      mcpsniff ci --port 5076 --require-rebind all --within 30 -- ./restart-scenario.sh
      mcpsniff ci --port 5076 --via proxy --artifacts out -- python e2e.py   # clients use $MCPSNIFF_URL

    \b
    Exit code:
      0  command succeeded, gate passed
      1  command succeeded, gate failed (a namespace stalled or rebound too late)
      2  mcpsniff could not capture or analyze (bad option, no raw sockets, ...)
      3  command failed (non-zero exit, not found, --timeout), gate passed
      4  command failed and gate failed
      5  internal error in mcpsniff (a bug: please report it)
    """
    require_extra("capture" if via == "loopback" else "proxy", f"mcpsniff ci --via {via}")
    from .ci import MEANING, CiOptions, run_ci
    from .report.text import render_text

    config, rule = _gate_rule(require, within, config_path)
    result = run_ci(CiOptions(port, list(command), rule, config, config_path, via, artifacts, iface, proxy_port, timeout, share))
    if result.analysis is not None and result.gate is not None:
        click.echo(render_text(result.analysis, color=sys.stdout.isatty()))
        click.echo("")
        click.echo("\n".join(_gate_lines(result.gate)))
    else:
        click.echo(f"mcpsniff: error: {result.error}", err=True)
    click.echo(f"command {result.command.describe()}; bundle in {artifacts}/: {', '.join(result.files.values())}")
    click.echo(f"exit {result.exit_code}: {MEANING[result.exit_code]}", err=True)
    sys.exit(result.exit_code)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--har", "har_path", type=click.Path(dir_okay=False, path_type=Path), help="Write HAR 1.2 here (SSE events in each entry's _sseEvents).")
@click.option("--otlp", "otlp_path", type=click.Path(dir_okay=False, path_type=Path), help="Write OpenTelemetry OTLP/JSON traces here.")
@click.option("--share", is_flag=True, help="Also replace session ids and hosts by pseudonyms (secrets are always redacted).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (namespace rules, redaction patterns).")
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze (default: every port that carries HTTP).")
@friendly_errors
def export(files: tuple[Path, ...], har_path: Path | None, otlp_path: Path | None, share: bool, config_path: Path | None, ports: tuple[int, ...]) -> None:
    """Export a capture as HAR (for HAR viewers) and/or OTLP/JSON (for trace backends).

    HAR: one entry per HTTP exchange; streamed responses carry their SSE events in
    `_sseEvents`, MCP facts (namespace, session, methods, verdict) in `_mcp`.
    OTLP: a trace per namespace session with a span per exchange (attributes
    mcp.session.id, mcp.method.name, mcpsniff.namespace, mcpsniff.verdict); send it
    to an OpenTelemetry collector (otlpjsonfile receiver, or POST to /v1/traces).
    Both are redacted.

    \b
    Examples:
      mcpsniff export capture.pcapng --har capture.har
      mcpsniff export run.jsonl --otlp traces.json
      curl -H 'Content-Type: application/json' --data-binary @traces.json http://collector:4318/v1/traces

    Exit code: 0 written, 2 bad input, 3 internal error.
    """
    from .api import analyze_files, require_found
    from .config import load_config
    from .errors import BadInputError
    from .paths import output_file

    if har_path is None and otlp_path is None:
        raise BadInputError("nothing to export: give --har FILE and/or --otlp FILE")
    output_file(har_path, "--har")
    output_file(otlp_path, "--otlp")
    config = load_config(config_path)
    analysis = analyze_files(list(files), config=config, ports=ports, full=True)
    require_found(analysis, list(files), config, ports)
    if har_path is not None:
        from .report.har import write_har

        click.echo(f"HAR: {har_path} ({write_har(analysis, har_path, config, share)} entries)", err=True)
    if otlp_path is not None:
        from .report.otlp import write_otlp

        click.echo(f"OTLP: {otlp_path} ({write_otlp(analysis, otlp_path, config, share)} spans)", err=True)


@main.command()
@click.argument("before", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("after", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@click.option("--slower-than", type=Seconds(min=0), default=5.0, show_default=True, metavar="SECONDS", help="AFTER is worse when a namespace rebinds more than this much later after the server came back.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config (namespace rules, thresholds).")
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="Server port(s) to analyze in both captures (default: every port that carries HTTP).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML page: the table and both timelines aligned at their restarts (self-contained, secrets redacted).")
@click.option("--share", is_flag=True, help="With --html: also replace session ids and host names/addresses by pseudonyms (S1, host1, ...).")
@friendly_errors
def diff(before: Path, after: Path, fmt: str, slower_than: float, config_path: Path | None, ports: tuple[int, ...], html_path: Path | None, share: bool) -> None:
    """Compare two captures of the same setup, namespace by namespace.

    BEFORE and AFTER are captures in any format `analyze` reads, e.g. before and
    after a client or server upgrade, or two restarts. Side by side per namespace:
    verdict, signature, basis, protocol revision, client, time to rebind after the
    server came back, the retry schedule its attempts followed, the tools listed.

    \b
    Examples:
      mcpsniff diff before.pcap after.pcap
      mcpsniff diff before.pcap after.pcap --slower-than 2 --format json
      mcpsniff diff before.pcap after.pcap --html diff.html --share

    Exit code: 0 AFTER is not worse, 1 AFTER is worse for a namespace (rebound or
    not-affected before, stalled, unknown or missing after; or a rebind slower by
    more than --slower-than), 2 bad input, 3 internal error.
    """
    from .analysis.compare import compare
    from .api import analyze_files, require_found
    from .config import load_config
    from .errors import BadInputError
    from .report.diff import render_diff_json, render_diff_text

    if share and html_path is None:
        raise BadInputError("--share pseudonymises the HTML page: give --html FILE too")
    from .paths import output_file

    output_file(html_path, "--html")
    config = load_config(config_path)
    full = html_path is not None  # the HTML timelines show bodies and headers, as the report does
    old, new = analyze_files([before], config=config, ports=ports, full=full), analyze_files([after], config=config, ports=ports, full=full)
    require_found(old, [before], config, ports)  # a --port either capture does not hold: say what it holds
    require_found(new, [after], config, ports)
    comparison = compare(old, new, slower_than)
    click.echo(render_diff_json(comparison) if fmt == "json" else render_diff_text(comparison, color=sys.stdout.isatty()))
    if html_path is not None:
        from .report.diff_html import write_diff_html

        write_diff_html(old, new, comparison, html_path, config=config, share=share)
        click.echo(f"HTML diff: {html_path}", err=True)
    sys.exit(EXIT_STALLED if comparison.worse else EXIT_OK)


@main.command()
@click.option("--port", "ports", multiple=True, type=PORT, metavar="PORT", help="TCP port of the MCP server to capture live (repeatable); with --follow, only these ports of a followed pcap are analyzed.")
@click.option("--follow", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Instead of capturing, follow FILE as another process writes it, like tail -f: records (.jsonl) from the mitmproxy addon or `mcpsniff proxy`, pcap/pcapng from `tcpdump -w` or `mcpsniff capture`.")
@click.option("--iface", default="lo", show_default=True, help="Interface to capture on.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="pcapng file the live capture writes  [default: mcpsniff-<time>.pcapng]")
@click.option("--duration", type=Seconds(min=0, min_open=True), metavar="SECONDS", help="Stop after this long (default: Ctrl-C or SIGTERM).")
@click.option("--interval", type=Seconds(min=0.1), default=1.0, show_default=True, metavar="SECONDS", help="Seconds between two judgements of the verdicts so far.")
@_watch_options
@click.option("--view", type=click.Choice(["auto", "table", "lines"]), default="auto", show_default=True, help="table: a live table (rich); lines: one line per state change (for logs); auto: table on a terminal.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="YAML config for the analysis.")
@friendly_errors
def watch(ports: tuple[int, ...], follow: Path | None, iface: str, output: Path | None, duration: float | None, interval: float, on_stall: str | None, exit_on_stall: bool, view: str, config_path: Path | None) -> None:
    """Show every namespace's state live: connected, disrupted, retrying, rebound, stalled.

    Captures --port on loopback (writing a pcapng as `mcpsniff capture` does), or
    follows a growing capture or records file, and judges the verdicts so far about
    once a second: connected (session id, revision), disrupted by a restart, retrying
    (attempt n of the schedule recognised), rebound (how long it took), stalled
    (signature, stall point) as soon as the rules can tell. Each record is read once;
    at the end the report printed is that of `mcpsniff analyze` of the file. Without a
    terminal it prints one line per state change. Stops on Ctrl-C, SIGTERM, --duration
    or (--exit-on-stall) the first stall.

    \b
    Examples:
      mcpsniff watch --port 5076
      mcpsniff watch --port 5076 -o run.pcapng --on-stall 'notify-send "$MCPSNIFF_NAMESPACE stalled: $MCPSNIFF_SIGNATURE"'
      mcpsniff watch --follow run.jsonl --exit-on-stall
      tcpdump -i lo -U -w cap.pcap tcp port 5076 & mcpsniff watch --follow cap.pcap --view lines

    Exit code: 0 nothing stalled, 1 a namespace stalled (at the end, or --exit-on-stall),
    2 bad input or capture error, 3 internal error.
    """
    import time

    from .config import load_config
    from .errors import BadInputError
    from .report.text import render_text

    config = load_config(config_path)
    common = {"on_stall": on_stall, "exit_on_stall": exit_on_stall, "interval": interval, "view": view}
    if follow is not None:
        if output is not None:
            raise BadInputError("-o is for the live capture; --follow reads a file another process writes")
        analysis, stopped = _watched("follow", config, [str(follow)], path=follow, ports=ports or None, duration=duration, **common)
    elif ports:
        require_extra("capture", "mcpsniff watch --port")
        from .paths import output_file

        output = output_file(output, "-o") or Path(f"mcpsniff-{time.strftime('%Y%m%d-%H%M%S')}.pcapng")
        analysis, stopped = _watched("live", config, [str(output)], ports=ports, output=output, iface=iface, duration=duration, **common)
        click.echo(f"capture written to {output}", err=True)
    else:
        raise BadInputError("nothing to watch: give --port PORT (live capture) or --follow FILE")
    click.echo("")
    click.echo(render_text(analysis, color=sys.stdout.isatty()))
    sys.exit(EXIT_STALLED if analysis.stalled or stopped else EXIT_OK)
