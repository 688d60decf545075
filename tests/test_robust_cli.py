"""Issue 13: how commands end when the output cannot be written, the input is a pipe, an
option value is absurd, or mcpsniff itself has a bug.  CLI-level checks run the real
command in a subprocess (/dev/full, process substitution, the exit code the shell sees)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcpsniff import ci as ci_module
from mcpsniff import guard
from mcpsniff.cli import main

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "tests" / "data" / "real" / "one-stale" / "capture.pcap"  # sprint stalled: exit 1


def mcpsniff(*args: str, stdout: int | None = subprocess.PIPE, shell: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mcpsniff", *args]
    if shell is not None:
        cmd = ["bash", "-c", shell.replace("MCPSNIFF", f"{sys.executable} -m mcpsniff")]
    return subprocess.run(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300, check=False, env={**os.environ, **(env or {})})


def one_line(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mcpsniff: error:"), stderr
    for needle in needles:
        assert needle in lines[0], stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_analyze_to_dev_full_is_one_line_exit_2(fmt: str) -> None:
    with open("/dev/full", "w") as full:
        proc = mcpsniff("analyze", str(CAPTURE), "--format", fmt, stdout=full.fileno())
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, "No space left on device")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_report_to_dev_full_is_one_line_exit_2() -> None:
    proc = mcpsniff("report", str(CAPTURE), "-o", "/dev/full")
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, "/dev/full", "No space left on device")


def test_broken_pipe_is_quiet() -> None:
    proc = mcpsniff(shell=f"MCPSNIFF analyze {CAPTURE} --format json --full | true; exit ${{PIPESTATUS[0]}}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("source", [CAPTURE, ROOT / "tests" / "data" / "real" / "ts-hang" / "run.jsonl"])
def test_a_pipe_is_read_like_the_file(source: Path) -> None:
    direct = mcpsniff("analyze", str(source), "--format", "json")
    piped = mcpsniff(shell=f"MCPSNIFF analyze <(cat {source}) --format json")
    assert piped.returncode == direct.returncode, piped.stderr
    assert "not a pcap" not in piped.stderr
    import json

    strip = lambda doc: [(ns["name"], ns["diagnosis"]["verdict"]) for ns in json.loads(doc)["namespaces"]]  # noqa: E731
    assert strip(piped.stdout) == strip(direct.stdout)


def test_stdin_is_read_too() -> None:
    with CAPTURE.open("rb") as fh:
        proc = subprocess.run([sys.executable, "-m", "mcpsniff", "analyze", "/dev/stdin"], cwd=ROOT, stdin=fh, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1 and "sprint" in proc.stdout, proc.stderr


def test_ci_artifacts_that_is_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = mcpsniff("ci", "--port", "5999", "--via", "proxy", "--artifacts", "/dev/null", "--", sys.executable, "-c", "pass")
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, "--artifacts /dev/null")


@pytest.mark.parametrize(("args", "option"), [
    (["check", str(CAPTURE), "--within", "nan"], "--within"),
    (["check", str(CAPTURE), "--within", "inf"], "--within"),
    (["check", str(CAPTURE), "--within", "-5"], "--within"),
    (["analyze", str(CAPTURE), "--port", "-1"], "--port"),
    (["analyze", str(CAPTURE), "--port", "70000"], "--port"),
    (["report", str(CAPTURE), "--port", "0"], "--port"),
    (["export", str(CAPTURE), "--har", "x.har", "--port", "-1"], "--port"),
    (["capture", "--port", "5076", "--duration", "nan"], "--duration"),
    (["ci", "--port", "5076", "--timeout", "nan", "--", "true"], "--timeout"),
    (["demo", "--down-seconds", "nan"], "--down-seconds"),
])
def test_absurd_option_values_are_refused(args: list[str], option: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert option in result.stderr


# ----------------------------------------------------------------------- internal errors


def _boom(*args: object, **kwargs: object) -> None:
    raise ZeroDivisionError("division by zero in a test")


@pytest.mark.parametrize("command", [["analyze", str(CAPTURE)], ["check", str(CAPTURE)], ["report", str(CAPTURE), "-o", "r.html"], ["export", str(CAPTURE), "--har", "x.har"]])
def test_internal_error_exits_3_with_two_lines_and_no_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(guard.DEBUG_ENV, raising=False)
    monkeypatch.setattr("mcpsniff.api.analyze_files", _boom)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == guard.EXIT_INTERNAL == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("mcpsniff: internal error: ZeroDivisionError: division by zero in a test (at tests/test_robust_cli.py:") or "(at " in lines[0], lines[0]
    assert "please report it" in lines[1] and "--debug" in lines[1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_internal_error_traceback_with_debug(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr("mcpsniff.api.analyze_files", _boom)
    args = ["analyze", str(CAPTURE)] + (["--debug"] if how == "flag" else [])
    if how == "env":
        monkeypatch.setenv(guard.DEBUG_ENV, "1")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr and "ZeroDivisionError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("mcpsniff: this is a bug")


def test_internal_error_in_a_real_process_exits_3() -> None:
    code = ("import sys, mcpsniff.api as api; from mcpsniff.cli import main\n"
            "def boom(*a, **k): raise KeyError('internal')\n"
            "api.analyze_files = boom\n"
            f"sys.argv = ['mcpsniff', 'analyze', {str(CAPTURE)!r}]\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False, env={k: v for k, v in os.environ.items() if k != guard.DEBUG_ENV})
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 2 and "internal error: KeyError" in proc.stderr and "Traceback" not in proc.stderr


def test_ci_internal_error_exits_5_and_still_writes_the_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert ci_module.EXIT_INTERNAL == guard.EXIT_INTERNAL_CI == 5
    artifacts = tmp_path / "out"

    class FakeCapture:
        def __init__(self, opts, output, say):
            self.output = output

        def __enter__(self):
            self.output.write_bytes(CAPTURE.read_bytes())
            return {}

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(ci_module, "capture", FakeCapture)
    monkeypatch.setattr("mcpsniff.api.analyze_files", _boom)
    result = CliRunner().invoke(main, ["ci", "--port", "5076", "--artifacts", str(artifacts), "--", sys.executable, "-c", "pass"])
    assert result.exit_code == 5, result.stderr
    assert "internal error: ZeroDivisionError" in result.stderr
    assert (artifacts / "junit.xml").exists() and (artifacts / "summary.json").exists()


def test_every_command_has_debug_and_documents_exit_3() -> None:
    for name, command in main.commands.items():
        assert any(p.name == "debug" for p in command.params), name
        text = command.help or ""
        assert ("3 internal error" in text) or ("5  internal error" in text), name


# -- an output into a folder that does not exist: one line, exit 2, no folder made (mkdir -p never) --------------

MISSING = "{tmp}/no/such"  # neither "no" nor "no/such" exists
WRITERS = {  # command line writing into MISSING -> the option named in the error
    "analyze --html": (["analyze", str(CAPTURE), "--html", f"{MISSING}/r.html"], "--html"),
    "report -o": (["report", str(CAPTURE), "-o", f"{MISSING}/r.html"], "-o"),
    "check --junit": (["check", str(CAPTURE), "--junit", f"{MISSING}/j.xml"], "--junit"),
    "check --json": (["check", str(CAPTURE), "--json", f"{MISSING}/g.json"], "--json"),
    "check --sarif": (["check", str(CAPTURE), "--sarif", f"{MISSING}/s.sarif"], "--sarif"),
    "export --har": (["export", str(CAPTURE), "--har", f"{MISSING}/x.har"], "--har"),
    "export --otlp": (["export", str(CAPTURE), "--otlp", f"{MISSING}/t.json"], "--otlp"),
    "diff --html": (["diff", str(CAPTURE), str(CAPTURE), "--html", f"{MISSING}/d.html"], "--html"),
    "capture -w": (["capture", "--port", "5076", "-w", f"{MISSING}/c.pcapng", "--duration", "1"], "-o"),
    "watch -o": (["watch", "--port", "5076", "-o", f"{MISSING}/c.pcapng", "--duration", "1"], "-o"),
    "proxy -o": (["proxy", "--listen", "5999", "--upstream", "http://127.0.0.1:5998", "-o", f"{MISSING}/r.jsonl"], "-o"),
    "ci --artifacts": (["ci", "--port", "5076", "--via", "proxy", "--artifacts", f"{MISSING}/bundle", "--", "true"], "--artifacts"),
    "demo -o": (["demo", "-o", f"{MISSING}/demo"], "-o"),
}


@pytest.mark.parametrize("case", list(WRITERS))
def test_an_output_into_a_missing_folder_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    args, option = WRITERS[case]
    proc = mcpsniff(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert proc.returncode == 2, proc.stderr
    folder = MISSING.replace("{tmp}", str(tmp_path))
    one_line(proc.stderr, f"mcpsniff: error: {option} {folder}/", f"directory {folder} does not exist")
    assert not (tmp_path / "no").exists()  # nothing made on the way


def test_the_last_folder_of_a_demo_or_bundle_is_made(tmp_path: Path) -> None:
    """-o DIR of the demo and --artifacts DIR of ci are folders mcpsniff makes: the last part only."""
    from mcpsniff.paths import output_dir

    assert output_dir(tmp_path / "new", "-o").is_dir()
    assert output_dir(tmp_path / "new", "-o").is_dir()  # already there: fine
    (tmp_path / "file").write_text("")
    with pytest.raises(Exception, match="exists and is not a directory"):
        output_dir(tmp_path / "file", "-o")
