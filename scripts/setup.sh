#!/usr/bin/env bash
# Installs what mcpsniff and its tests need on a fresh machine, then syncs the venv.
# Safe to run repeatedly: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -e /usr/lib/x86_64-linux-gnu/libpcap.so.0.8 ] || [ -e /usr/lib/aarch64-linux-gnu/libpcap.so.0.8 ] || need_apt+=(libpcap0.8)
if [ ${#need_apt[@]} -gt 0 ] && [ "${MCPSNIFF_SKIP_APT:-}" != 1 ]; then
  echo "setup: installing ${need_apt[*]} (Debian packages)" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv" >&2
  python3 -m pip install -q uv >/dev/null 2>&1 || pip install -q uv
fi
uv sync --frozen --quiet
