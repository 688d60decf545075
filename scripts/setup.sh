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
# The interpreter pyenv picks for .python-version (3.12); uv must not download one.
uv sync --frozen --quiet --python "$(python3 -c "import sys; print(sys.executable)")"

# The TS client host's node modules, from its lockfile, once per lockfile (npm ci into
# ${XDG_CACHE_HOME:-~/.cache}/mcpsniff/ts-host-<hash>/); a failure (e.g. offline) is not fatal:
# the first ts demo scenario tries again.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  uv run --frozen --no-sync python -c "from mcpsniff.demo.tshost import ensure_installed; ensure_installed(lambda m: print('setup: ' + m, file=__import__('sys').stderr))" \
    || echo "setup: the demo's TS client host could not be installed now (npm ci failed); ts demo scenarios will try again" >&2
fi
