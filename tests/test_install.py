"""The package as a pip user gets it: the wheel of `uv build`, installed into fresh venvs.

Core install (no extras): the offline commands work on real captures, the commands that
need an extra say which in one line (exit 2), nothing of mitmproxy, scapy, the MCP SDK,
h11 or anyio is installed, and the only pytest plugin it brings is its own. In the dev
venv, where every extra is installed, the same commands import none of them. With the
`proxy` extra, a real mitmdump runs the addon at `mcpsniff addon-path` (and the module
mcpsniff/capture/mitm.py itself) in front of a real MCP server.

The venvs get the locked versions (uv.lock) from uv's cache, which `uv sync` filled:
every uv call here is --offline, so the test touches no network.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcp_lab import LabServer, call_text, free_port, lab_session, wait_port  # noqa: E402

from mcpsniff.cli import main as cli_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"
STALLED = REAL / "ts-idle-get" / "capture.pcap"  # sprint stalls
HEALTHY = REAL / "ts-healthy" / "capture.pcap"
FLOWS = next((ROOT / "tests" / "data" / "fuzz" / "flows").iterdir())  # a mitmproxy flow file
EXTRAS_ONLY = ("mitmproxy", "scapy", "mcp", "uvicorn", "h11", "anyio", "starlette", "httpx")
WAIT = 60.0  # s: bound of every wait (never an assertion on time)

# (command line, exit code): what the core install must run; {tmp} is a folder for outputs
CORE_COMMANDS: list[tuple[list[str], int]] = [
    (["analyze", str(STALLED)], 1),
    (["analyze", str(REAL / "ts-idle-get" / "run.jsonl"), "--format", "json"], 1),
    (["report", str(STALLED), "-o", "{tmp}/report.html"], 1),
    (["check", str(HEALTHY), "--require-rebind", "all"], 0),
    (["diff", str(HEALTHY), str(STALLED)], 1),
    (["export", str(STALLED), "--har", "{tmp}/x.har", "--otlp", "{tmp}/x.json"], 0),
]
if "annotate" in cli_main.commands:
    CORE_COMMANDS.append((["annotate", str(STALLED), "-o", "{tmp}/annotated.pcapng"], 1))

# (command line, the extra it names)
NEEDS_EXTRA: list[tuple[list[str], str, str]] = [
    (["capture"], "capture", "mcpsniff capture"),
    (["capture", "--port", "5076", "--duration", "1"], "capture", "mcpsniff capture"),
    (["proxy", "--listen", "5077", "--upstream", "http://127.0.0.1:5076"], "proxy", "mcpsniff proxy"),
    (["proxy"], "proxy", "mcpsniff proxy"),
    (["demo"], "demo", "mcpsniff demo"),
    (["addon-path"], "proxy", "mcpsniff addon-path"),
    (["ci", "--port", "5076", "--", "true"], "capture", "mcpsniff ci --via loopback"),
    (["ci", "--port", "5076", "--via", "proxy", "--", "true"], "proxy", "mcpsniff ci --via proxy"),
    (["watch", "--port", "5076", "--duration", "1"], "capture", "mcpsniff watch --port"),
    (["analyze", str(FLOWS)], "proxy", f"{FLOWS}: reading a mitmproxy flow file"),
]


def uv(*args: str, env: dict[str, str] | None = None) -> None:
    """Run uv in the checkout (where pyenv's shim finds it), offline."""
    exe = shutil.which("uv")
    assert exe, "uv not found (scripts/setup.sh installs it)"
    proc = subprocess.run([exe, *args, "--offline", "--quiet"], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"uv {' '.join(args)}: {proc.stderr}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv("build", "-o", str(out))  # sdist, then the wheel from it (as PyPI users get it)
    return next(out.glob("mcpsniff-*.whl"))


def venv(folder: Path, wheel: Path, *extras: str) -> Path:
    """A fresh venv with the wheel and the locked versions of its core dependencies (and ``extras``)."""
    env = {"UV_PROJECT_ENVIRONMENT": str(folder)}
    uv("sync", "--frozen", "--no-dev", "--no-install-project", *(f"--extra={e}" for e in extras), "--python", sys.executable, env=env)
    uv("pip", "install", "--no-deps", "--python", str(folder / "bin" / "python"), str(wheel))
    return folder


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv(tmp_path_factory.mktemp("core") / "venv", wheel)


@pytest.fixture(scope="module")
def with_proxy(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv(tmp_path_factory.mktemp("proxy") / "venv", wheel, "proxy")


def run(exe: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def installed(venv_dir: Path) -> set[str]:
    code = "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))"
    return set(run(venv_dir / "bin" / "python", "-c", code, cwd=venv_dir).stdout.split())


def test_core_install_has_no_extra_and_only_its_own_pytest_plugin(core):
    names = installed(core)
    assert "mcpsniff" in names and {"click", "jinja2", "rich", "pyyaml"} <= names
    assert not names & set(EXTRAS_ONLY), sorted(names)
    code = "from importlib.metadata import entry_points; print([(e.name, e.value) for e in entry_points(group='pytest11')])"
    assert run(core / "bin" / "python", "-c", code, cwd=core).stdout.strip() == "[('mcpsniff', 'mcpsniff.pytest_plugin')]"


@pytest.mark.parametrize("args,code", CORE_COMMANDS, ids=[" ".join(a[:1] + a[2:3]) for a, _ in CORE_COMMANDS])
def test_core_install_runs_the_offline_commands(core, tmp_path, args, code):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = run(core / "bin" / "mcpsniff", *args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert "error" not in proc.stderr, proc.stderr
    assert all(Path(a).stat().st_size > 0 for a in args if a.startswith(str(tmp_path)))


@pytest.mark.parametrize("args,extra,what", NEEDS_EXTRA, ids=[" ".join(a[:3]) for a, _, _ in NEEDS_EXTRA])
def test_core_install_names_the_extra_a_command_needs(core, tmp_path, args, extra, what):
    proc = run(core / "bin" / "mcpsniff", *args, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"mcpsniff: error: {what} needs the '{extra}' extra: pip install 'mcpsniff[{extra}]'\n"
    assert not list(tmp_path.iterdir()), "nothing written"


def test_core_install_still_shows_help_of_a_command_that_needs_an_extra(core, tmp_path):
    proc = run(core / "bin" / "mcpsniff", "capture", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "Examples:" in proc.stdout


PROBE = """\
import sys
sys.argv[0] = "mcpsniff"
code = 0
try:
    if sys.argv[1:] == ["pytest-plugin"]:
        import mcpsniff.pytest_plugin as plugin
        from pathlib import Path
        from mcpsniff.api import analyze_files
        plugin.assert_all_rebound(analyze_files([Path({healthy!r})]))
    else:
        from mcpsniff.cli import main
        main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("imported:", sorted({{m.split(".")[0] for m in sys.modules}} & set({extras!r})), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("args,code", [*CORE_COMMANDS, (["pytest-plugin"], 0)], ids=[" ".join(a[:1] + a[2:3]) for a, _ in CORE_COMMANDS] + ["pytest plugin"])
def test_offline_commands_import_no_extra_where_every_extra_is_installed(tmp_path, args, code):
    """The dev venv has every extra: a core command must still not import them (lazy imports)."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    probe = PROBE.format(healthy=str(HEALTHY), extras=EXTRAS_ONLY)
    proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.splitlines()[-1] == "imported: []", proc.stderr


# --- the addon in the wheel, in a real mitmdump -------------------------------------------


def site_packages(venv_dir: Path) -> Path:
    return next((venv_dir / "lib").glob("python3.*/site-packages"))


class mitmdump:
    """The venv's mitmdump with ``-s script`` in front of ``upstream``; log in tmp/mitmdump.log, stopped with SIGTERM."""

    def __init__(self, venv_dir: Path, script: Path, upstream: str, tmp: Path, *args: str) -> None:
        self.port = free_port()
        self.cmd = [str(venv_dir / "bin" / "mitmdump"), "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1", "-p", str(self.port), "-s", str(script), "--set", "flow_detail=0", *args]
        self.tmp = tmp

    def __enter__(self) -> int:
        with (self.tmp / "mitmdump.log").open("wb") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, timeout=WAIT)  # mitmdump starts slowly on a loaded machine
        except BaseException:
            self.__exit__()
            raise
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=WAIT)


@pytest.mark.parametrize("script", ["addon-path", "mcpsniff/capture/mitm.py"])
def test_mitmdump_runs_the_installed_addon(with_proxy, tmp_path, script):
    """`mitmdump -s "$(mcpsniff addon-path)"` (or -s the module) of the installed wheel records a real MCP exchange."""
    printed = run(with_proxy / "bin" / "mcpsniff", "addon-path", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    addon = Path(printed.stdout.strip())
    assert addon == site_packages(with_proxy) / "mcpsniff" / "addons" / "mcpsniff_addon.py"
    path = addon if script == "addon-path" else site_packages(with_proxy) / script
    out = tmp_path / "run.jsonl"
    with LabServer(("tasks",)) as lab, mitmdump(with_proxy, path, lab.base_url, tmp_path, "--set", f"mcpsniff_output={out}") as port:

        async def session() -> str:
            async with lab_session(lab.url("tasks", f"http://127.0.0.1:{port}")) as s:
                return await call_text(s, "echo", timeout=WAIT, text="through the addon")

        assert asyncio.run(session()) == "tasks:through the addon"
    log = (tmp_path / "mitmdump.log").read_text(errors="replace")
    assert "Traceback" not in log and "error" not in log.lower(), log
    proc = run(with_proxy / "bin" / "mcpsniff", "analyze", str(out), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tasks,) = json.loads(proc.stdout)["namespaces"]
    assert (tasks["name"], tasks["diagnosis"]["verdict"]) == ("tasks", "not-affected")
    calls = [x for x in tasks["exchanges"] if "tools/call" in x["rpc_methods"]]
    assert [x["status"] for x in calls] == [200] and "tasks:through the addon" in out.read_text()
