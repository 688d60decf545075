#!/usr/bin/env bash
# The README's second command: set up everything the tests need, run the whole suite (Python 3.12),
# then the unit tests on 3.11 and 3.13 (scripts/matrix.sh). With arguments: only `pytest ARGS` on 3.12.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
[ $# -eq 0 ] || exec uv run pytest "$@"
status=0
uv run pytest || status=$?
scripts/matrix.sh || { [ $status -ne 0 ] || status=1; }
exit $status
