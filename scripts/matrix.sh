#!/usr/bin/env bash
# The cheap Python matrix that scripts/test.sh runs after the whole suite on 3.12: the unit tests
# (wire, analysis, config, and the analyze/check/diff commands on real captures) on the lowest and
# the highest supported Python, 3.11 and 3.13, both at once, each in its own venv (.venv-3.11,
# .venv-3.13, synced from uv.lock with every extra). The interpreters are pyenv's, never downloaded:
# one that is absent is skipped with a note. Extra arguments go to pytest instead of the selection.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSIONS=(3.11 3.13)
UNIT=(tests/wire tests/analysis tests/test_config.py tests/test_cli_analyze.py tests/test_check.py tests/test_diff.py
  # the slow ones (pcaps built with scapy, editcap and tshark runs): the 3.12 suite covers them
  --ignore=tests/analysis/test_signatures.py --ignore=tests/analysis/test_truncated.py
  --ignore=tests/analysis/test_wireshark_agrees.py)
[ $# -gt 0 ] && UNIT=("$@")

find_python() {  # the newest pyenv 3.X.Y, else python3.X on PATH; nothing when it does not run
  local v=$1 root py
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  py=$(ls -d "$root"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -V | tail -n 1)
  [ -n "$py" ] || py=$(command -v "python$v" || true)
  [ -n "$py" ] && "$py" -c 'import sys' >/dev/null 2>&1 && echo "$py"
  return 0
}

pids=() names=()
for v in "${VERSIONS[@]}"; do
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "matrix: Python $v not found (pyenv install $v): its unit tests are SKIPPED" >&2
    continue
  fi
  (
    UV_PROJECT_ENVIRONMENT=".venv-$v" uv sync --frozen --quiet --all-extras --python "$py"
    ".venv-$v/bin/python" -m pytest -q -p no:cacheprovider "${UNIT[@]}"
  ) >".venv-$v.log" 2>&1 &
  pids+=($!) names+=("$v")
done

status=0
for i in "${!pids[@]}"; do
  v=${names[$i]}
  if wait "${pids[$i]}"; then
    echo "matrix: Python $v: $(tail -n 1 ".venv-$v.log")" >&2
  else
    status=1
    tail -n 40 ".venv-$v.log" >&2
    echo "matrix: Python $v FAILED (whole log: .venv-$v.log)" >&2
  fi
done
exit $status
