#!/usr/bin/env bash
# The README's second command: set up everything the tests need, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec uv run pytest "$@"
