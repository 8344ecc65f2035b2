#!/usr/bin/env bash
# Fetches, caches, starts and stops the official DynamoDB Local.
#
#   scripts/dynamodb-local.sh fetch          download once into .cache/dynamodb-local
#   scripts/dynamodb-local.sh start [PORT]   start in the background (default 8000), wait until it answers
#   scripts/dynamodb-local.sh stop [PORT]    stop the one started on PORT
#   scripts/dynamodb-local.sh status [PORT]  exit 0 when it answers on PORT
#
# The jar comes from the npm package amplify-dynamodb-simulator, which ships it unchanged.
# It runs in memory with -sharedDb, so every access key and region sees the same tables;
# with DYNAMODB_LOCAL_DB_PATH=DIR it keeps its data in DIR instead (survives a restart).
set -euo pipefail

PACKAGE="amplify-dynamodb-simulator@2.9.30"
root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/dynamodb-local"
emulator="$cache/package/emulator"

. "$root/scripts/lib.sh"

die() { echo "dynamodb-local: $*" >&2; exit 1; }

answers() {
  # Any HTTP answer (DynamoDB Local says 400 to a bare GET) means it is up.
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$1/" 2>/dev/null
}

fetch() {
  [ -f "$emulator/DynamoDBLocal.jar" ] && return 0
  command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local (install Node.js)"
  mkdir -p "$cache"
  local tmp
  tmp=$(mktemp -d)
  echo "dynamodb-local: fetching $PACKAGE (about 55 MB, once)" >&2
  (cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null) || die "npm pack $PACKAGE failed"
  tar -xzf "$tmp"/amplify-dynamodb-simulator-*.tgz -C "$tmp"
  rm -rf "$cache/package"
  mv "$tmp/package" "$cache/package"
  rm -rf "$tmp"
  [ -f "$emulator/DynamoDBLocal.jar" ] || die "the package did not contain emulator/DynamoDBLocal.jar"
}

start() {
  local port=$1
  command -v java >/dev/null || die "Java 17+ is needed (Debian: apt-get install -y openjdk-17-jre-headless)"
  if answers "$port"; then
    echo "dynamodb-local: already answering on port $port" >&2
    return 0
  fi
  fetch
  local log="$cache/dynamodb-$port.log"
  local storage=(-inMemory)
  if [ -n "${DYNAMODB_LOCAL_DB_PATH:-}" ]; then
    mkdir -p "$DYNAMODB_LOCAL_DB_PATH"
    storage=(-dbPath "$(cd "$DYNAMODB_LOCAL_DB_PATH" && pwd)")
  fi
  (cd "$emulator" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      "${storage[@]}" -sharedDb -port "$port" -disableTelemetry >"$log" 2>&1) &
  echo $! >"$cache/dynamodb-$port.pid"
  wait_for_service dynamodb-local "$port" answers "$cache/dynamodb-$port.pid" "$log" || exit 1
}

stop() {
  stop_pidfile "$cache/dynamodb-$1.pid"
}

command=${1:-}
port=${2:-8000}
case "$command" in
  fetch) fetch ;;
  start) start "$port" ;;
  stop) stop "$port" ;;
  status) answers "$port" ;;
  *) die "usage: $0 fetch|start [PORT]|stop [PORT]|status [PORT]" ;;
esac
