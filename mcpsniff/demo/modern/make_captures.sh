#!/usr/bin/env bash
# Regenerate the 2026-07-28 lab captures (real SDK processes on 127.0.0.1, tcpdump on lo; run as root).
#   mcpsniff/demo/modern/make_captures.sh [OUT_DIR] [NAME ...]      (default OUT_DIR: /tmp/modern/captures)
# Needs: uv, node >= 20, tcpdump; `npm install` once in mcpsniff/demo/modern/ts.
# Each capture: ~4 s of traffic, SIGTERM, 5 s down, ~20 s after the server is back (capture.py).
set -euo pipefail
cd "$(dirname "$0")/../../.."            # repository root
OUT=${1:-/tmp/modern/captures}; shift || true
ONLY=("$@")

PY2SERVER='uv run --no-project --with mcp==2.3.0 --with uvicorn python mcpsniff/demo/modern/server.py --port {port}'
PY1SERVER='uv run python -m mcpsniff.demo.server --port {port}'
PY2CLIENTS='uv run --no-project --with mcp==2.3.0 python mcpsniff/demo/modern/clients.py --base {base} --log {log}'
PY1CLIENTS='uv run python mcpsniff/demo/modern/clients_v1.py --base {base} --log {log}'
TSHOST='node mcpsniff/demo/modern/ts/host.mjs --base {base} --log {log}'

want() { [ ${#ONLY[@]} -eq 0 ] && return 0; for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }
cap() { local name=$1 desc=$2; shift 2; want "$name" || return 0
  python3 mcpsniff/demo/modern/capture.py --out "$OUT/$name" --name "$name" --description "$desc" "$@"; }

cap sessionless-healthy "mcp 2.3.0 server and clients (2026-07-28, sessionless); every host rebuilds its Client on error (1,2,4,8,16 s)" \
  --server "$PY2SERVER" --client "$PY2CLIENTS"
cap sessionless-one-dies "as sessionless-healthy, but sprint's host never rebuilds its dead Client" \
  --server "$PY2SERVER" --client "$PY2CLIENTS --policy sprint=dies"
cap ts-fallback "TS client 2.4 (versionNegotiation auto) against the mcp 1.30 server: server/discover -> 400 -> initialize 2025-11-25; hosts rebuild on error" \
  --server "$PY1SERVER" --client "$TSHOST"
cap mixed-eras "one mcp 2.3.0 server process serving both eras: tasks py 2.3.0 and dev-agents TS 2.4 speak 2026-07-28; sprint py 1.30 and ci-infra TS 1.32 speak 2025-11-25 sessions; all rebuild" \
  --server "$PY2SERVER" --client "$PY2CLIENTS --ns tasks" --client "$TSHOST --ns dev-agents" \
  --client "$PY1CLIENTS --ns sprint" --client "$TSHOST --sdk v1 --ns ci-infra"
cap ts-sessionless "TS client 2.4 against the mcp 2.3.0 server (2026-07-28): tasks rebuilds, dev-agents keeps its Client (calls resume, listen never re-opened), sprint dies, ci-infra re-listens" \
  --server "$PY2SERVER" --client "$TSHOST --policy dev-agents=keep --policy sprint=dies --policy ci-infra=relisten"
cap py-fallback "mcp 2.3.0 clients (mode auto) against the mcp 1.30 server: probe, fallback initialize; sprint dies, the others rebuild" \
  --server "$PY1SERVER" --client "$PY2CLIENTS --policy sprint=dies"
cap sessionless-listen "mcp 2.3.0, 2026-07-28: tasks/ci-infra call and rebuild; dev-agents only listens and re-listens; sprint only listens and never re-listens" \
  --server "$PY2SERVER" --client "$PY2CLIENTS --policy dev-agents=listen-only --policy sprint=listen-dies"
cap sessionless-graceful-listen "as sessionless-listen, but the server ends listen streams gracefully at SIGTERM (final SubscriptionsListenResult event)" \
  --server "$PY2SERVER --graceful-listen-close" --client "$PY2CLIENTS --policy dev-agents=listen-only --policy sprint=listen-dies"
cap ts-fallback-stall "TS client 2.4 (auto) against the mcp 1.30 server after fallback: tasks/ci-infra rebuild, dev-agents keeps its Client (stale session id -> 404 forever), sprint dies" \
  --server "$PY1SERVER" --client "$TSHOST --policy dev-agents=keep --policy sprint=dies"
