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
# DynamoDB Local has no option for its listening address (it listens on every interface);
# scripts/dynamodb-local/LoopbackServer.java starts it bound to 127.0.0.1 instead. That needs
# javac or a Java with the jdk.compiler module (Debian's openjdk-17-jre-headless has it);
# without either it falls back to every interface and says so.
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
  loopback_main
  (cd "$emulator" && exec java -Djava.library.path=./DynamoDBLocal_lib "${java_main[@]}" \
      "${storage[@]}" -sharedDb -port "$port" -disableTelemetry >"$log" 2>&1) &
  echo $! >"$cache/dynamodb-$port.pid"
  wait_for_service dynamodb-local "$port" answers "$cache/dynamodb-$port.pid" "$log" || exit 1
}

# Sets `java_main` to the java arguments that start the server: the loopback launcher (compiled
# once into the cache with javac, or run from source), or the jar's own main as a last resort.
loopback_main() {
  local source="$root/scripts/dynamodb-local/LoopbackServer.java" classes="$cache/loopback"
  if [ ! "$classes/LoopbackServer.class" -nt "$source" ] && command -v javac >/dev/null; then
    # Compiled aside and renamed into place: tests start several at once.
    mkdir -p "$classes"
    local tmp
    tmp=$(mktemp -d "$cache/loopback.XXXXXX")
    javac -d "$tmp" "$source" >&2 && mv -f "$tmp/LoopbackServer.class" "$classes/"
    rm -rf "$tmp"
  fi
  if [ "$classes/LoopbackServer.class" -nt "$source" ]; then
    java_main=(-cp "DynamoDBLocal.jar:$classes" LoopbackServer)
  elif java --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; then
    java_main=(-cp DynamoDBLocal.jar "$source")
  else
    echo "dynamodb-local: this Java can compile nothing (no javac, no jdk.compiler), so it listens on every interface, not only 127.0.0.1" >&2
    java_main=(-jar DynamoDBLocal.jar)
  fi
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
