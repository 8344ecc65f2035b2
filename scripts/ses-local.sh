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
  for _ in $(seq 1 150); do
    if answers "$port"; then
      echo "ses-local: answering on http://127.0.0.1:$port" >&2
      return 0
    fi
    kill -0 "$(cat "$cache/ses-$port.pid")" 2>/dev/null || { cat "$log" >&2; die "it exited while starting"; }
    sleep 0.1
  done
  die "no answer on port $port after 15 s (log: $log)"
}

stop() {
  local port=$1 pidfile="$cache/ses-$port.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
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
