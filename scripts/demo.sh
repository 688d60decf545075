#!/usr/bin/env bash
# The README's first command: set up, then run the built-in demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export MCPSNIFF_SKIP_APT=1
source scripts/setup.sh
exec uv run mcpsniff demo "$@"
