#!/usr/bin/env bash
# Installs what mcpsniff and its tests need on a fresh machine, then syncs the venv.
# Safe to run repeatedly: each step is skipped when already done. Sourced by demo.sh and
# test.sh (so the PATH it may set reaches them); can also be run on its own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Node.js + npm for the demo's TypeScript-SDK client host (mcpsniff/demo/ts, `mcpsniff demo --scenario ts-*`)
if ! command -v node >/dev/null 2>&1; then need_apt+=(nodejs npm); elif ! command -v npm >/dev/null 2>&1; then need_apt+=(npm); fi
[ -e /usr/lib/x86_64-linux-gnu/libpcap.so.0.8 ] || [ -e /usr/lib/aarch64-linux-gnu/libpcap.so.0.8 ] || need_apt+=(libpcap0.8)
if [ ${#need_apt[@]} -gt 0 ] && [ "${MCPSNIFF_SKIP_APT:-}" != 1 ]; then
  echo "setup: installing ${need_apt[*]} (Debian packages)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# `uv --version`, not `command -v uv`: a pyenv shim can exist for another Python version only.
if ! uv --version >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  python3 -m pip install -q uv >/dev/null 2>&1 || python3 -m pip install -q --user uv
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  if ! uv --version >/dev/null 2>&1; then
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$(python3 -m site --user-base)/bin:$PATH"
    export PATH
  fi
fi
# The interpreter pyenv picks for .python-version (3.12); uv must not download one. Every extra
# (proxy: mitmproxy, capture: scapy, demo: the MCP SDK and uvicorn): the demo and the tests use them all.
uv sync --frozen --quiet --all-extras --python "$(python3 -c "import sys; print(sys.executable)")"

# Bytecode for mcpsniff and the packages every command imports (click, rich, yaml, jinja2), as `pip
# install` writes it: uv does not, and where PYTHONDONTWRITEBYTECODE is set nothing else would, so each
# command compiled them from source at every start (about 0.2 s). Files already compiled are skipped.
uv run --frozen --no-sync python - <<'PY' >/dev/null 2>&1 || echo "setup: could not write bytecode (mcpsniff starts slower)" >&2
import compileall, importlib.util, pathlib
dirs = ["mcpsniff"] + [str(pathlib.Path(spec.origin).parent) for name in ("click", "rich", "yaml", "jinja2", "markupsafe", "mypy_extensions") if (spec := importlib.util.find_spec(name)) and spec.origin and spec.origin.endswith("__init__.py")]
raise SystemExit(0 if all(compileall.compile_dir(d, quiet=1) for d in dirs) else 1)
PY

# The hot modules of `analyze` compiled with mypyc (scripts/compile.py: gcc and the Python headers; mypy and
# setuptools come from PyPI for the build only). Skipped when already built for these sources; a failure
# is not fatal: mcpsniff then runs as plain Python, the same code, slower.
uv run --frozen --no-sync --with mypy==2.4.1 --with setuptools==84.2.1 python scripts/compile.py \
  || echo "setup: the compiled modules could not be built; mcpsniff runs as plain Python" >&2

# What the demo's SDK client hosts need, each once (skipped when already installed): the TS hosts'
# node modules (npm ci of mcpsniff/demo/ts/package-lock.json, TS SDK 1.32 and 2.4, into
# ${XDG_CACHE_HOME:-~/.cache}/mcpsniff/ts-host-<hash>/) and the mcp 2.3.0 venv of the 2026-07-28
# scenarios (uv, mcpsniff/demo/modern/requirements.txt, into .../mcpsniff/py-sdk2-<hash>/).
# A failure (e.g. offline) is not fatal: the first demo scenario that needs it tries again.
uv run --frozen --no-sync python -m mcpsniff.demo.prepare \
  || echo "setup: the demo's client hosts could not be prepared now; their scenarios will try again" >&2
