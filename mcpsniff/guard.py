"""How a command ends: exit codes, one-line errors, and what an internal error looks like.

Every command is wrapped by ``friendly_errors``:

- ``MCPSniffError`` (bad input, bad config, a capture or proxy that cannot start) and
  ``OSError`` (a file that cannot be written, a full disk, ``> /dev/full``): one line
  ``mcpsniff: error: ...``, exit 2;
- a broken pipe on stdout (``mcpsniff analyze x | head``): exit 0, quietly;
- Ctrl-C: ``mcpsniff: interrupted``, exit 130;
- anything else is a bug in mcpsniff: one line naming the exception and where it was
  raised, one line asking to report it, and its own exit code (``EXIT_INTERNAL``, 3;
  ``mcpsniff ci`` uses 0-4 for its verdicts, so 5 there) so that in CI a crash never
  passes for a verdict ("stalled" is 1).  The traceback is printed only with
  ``--debug`` or ``MCPSNIFF_DEBUG=1``.

stdout is flushed inside the guard, so a write error that would only surface at
interpreter exit (Python's "Exception ignored" and exit 120) is reported like any other.
"""

from __future__ import annotations

import math
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from .errors import MCPSniffError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_STALLED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERNAL = 3  # an internal error (a bug) in analyze, check, report, export, capture, proxy, demo
EXIT_INTERNAL_CI = 5  # the same in `mcpsniff ci`, whose 3 and 4 mean "command failed"
EXIT_INTERRUPTED = 130

DEBUG_ENV = "MCPSNIFF_DEBUG"
REPORT_HINT = "this is a bug in mcpsniff, not in your input: please report it with the command line (and the input, if you can share it); --debug or MCPSNIFF_DEBUG=1 shows the traceback"

PORT = click.IntRange(1, 65535)


class Seconds(click.FloatRange):
    """A finite number of seconds in a range (click's FloatRange lets NaN through every bound)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        result = super().convert(value, param, ctx)
        if not math.isfinite(result):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return result


def debug_wanted(flag: bool) -> bool:
    return flag or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def where(exc: BaseException) -> str:
    """"file.py:123" of the innermost frame in mcpsniff (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "mcpsniff" in f.filename.replace("\\", "/").split("/site-packages/")[-1]]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    parts = frame.filename.replace("\\", "/").split("/")
    short = "/".join(parts[parts.index("mcpsniff"):]) if "mcpsniff" in parts else parts[-1]
    return f"{short}:{frame.lineno}"


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null so the flush at exit cannot fail again (and print a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _say(message: str) -> None:
    try:
        click.echo(message, err=True)
    except OSError:
        pass


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except (ValueError, AttributeError):  # closed or replaced
        pass


def run_guarded(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], debug: bool, internal: int) -> int:
    """Run a command body; the exit code it asked for, or the one its error means."""
    try:
        try:
            func(*args, **kwargs)
            code = EXIT_OK
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_BAD_INPUT)
            if not isinstance(exc.code, int | None):
                _say(str(exc.code))
        _flush_stdout()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except MCPSniffError as exc:
        _say(f"mcpsniff: error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        _quiet_stdout()
        what = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else f"cannot write the output: {exc.strerror or exc}"
        _say(f"mcpsniff: error: {what}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("mcpsniff: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the point: a bug ends in two lines and its own exit code
        if debug_wanted(debug):
            _say("".join(traceback.format_exception(exc)).rstrip())
        text = " ".join(str(exc).split())
        _say(f"mcpsniff: internal error: {type(exc).__name__}{': ' + text[:300] if text else ''} (at {where(exc)})")
        _say(f"mcpsniff: {REPORT_HINT}")
        return internal


def friendly_errors(func: F | None = None, *, internal: int = EXIT_INTERNAL) -> Any:
    """Decorator of a click command: adds ``--debug`` and ends the command as the module docstring says."""

    def decorate(command: F) -> F:
        @click.option("--debug", is_flag=True, help=f"On an internal error, also print its traceback (or set {DEBUG_ENV}=1).")
        @wraps(command)
        def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> None:
            sys.exit(run_guarded(command, args, kwargs, debug, internal))

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
