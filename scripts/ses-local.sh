#!/usr/bin/env bash
# Fetches, caches, starts and stops the SES v2 emulator (npm aws-ses-v2-local, pinned with
# its lock file in scripts/ses-local/), always on loopback.
#
#   scripts/ses-local.sh fetch          install once into .cache/ses-local
#   scripts/ses-local.sh start [PORT]   start in the background (default 8005), wait for /health-check
#   scripts/ses-local.sh stop [PORT]    stop the one started on PORT
#   scripts/ses-local.sh status [PORT]  exit 0 when it answers on PORT
#
# Sent mail: GET http://127.0.0.1:PORT/store (JSON), or the mailbox page at http://127.0.0.1:PORT/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/ses-local"

. "$root/scripts/lib.sh"

die() { echo "ses-local: $*" >&2; exit 1; }

answers() {
  curl -sf -o /dev/null -m 2 "http://127.0.0.1:$1/health-check" 2>/dev/null
}

fetch() {
  if [ -f "$cache/node_modules/aws-ses-v2-local/dist/cli.js" ] &&
     cmp -s "$root/scripts/ses-local/package-lock.json" "$cache/package-lock.json"; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to fetch the SES emulator (install Node.js)"
  mkdir -p "$cache"
  cp "$root/scripts/ses-local/package.json" "$root/scripts/ses-local/package-lock.json" "$cache/"
  echo "ses-local: installing aws-ses-v2-local (once)" >&2
  (cd "$cache" && npm ci --silent --no-audit --no-fund) || die "npm ci failed"
}

start() {
  local port=$1
  command -v node >/dev/null || die "Node.js 20+ is needed"
  if answers "$port"; then
    echo "ses-local: already answering on port $port" >&2
    return 0
  fi
  fetch
  local log="$cache/ses-$port.log"
  (cd "$cache" && exec node node_modules/aws-ses-v2-local/dist/cli.js --host 127.0.0.1 --port "$port" >"$log" 2>&1) &
  echo $! >"$cache/ses-$port.pid"
  wait_for_service ses-local "$port" answers "$cache/ses-$port.pid" "$log" || exit 1
}

stop() {
  stop_pidfile "$cache/ses-$1.pid"
}

command=${1:-}
port=${2:-8005}
case "$command" in
  fetch) fetch ;;
  start) start "$port" ;;
  stop) stop "$port" ;;
  status) answers "$port" ;;
  *) die "usage: $0 fetch|start [PORT]|stop [PORT]|status [PORT]" ;;
esac
