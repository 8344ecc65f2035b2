# Shared by the scripts: load .env without overriding variables already set in the
# environment (so `PORT=3100 scripts/dev.sh` wins over PORT in .env).
load_env_file() {
  local file=$1 line key value
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [ -z "${!key+x}" ]; then export "$key=$value"; fi
  done <"$file"
}

# The local binaries (local-api, llmxt-admin, dodo-local), built as one package set everywhere
# (the same set keeps cargo's feature resolution, and so its cache, identical).
build_local_binaries() {
  cargo build --quiet "$@" -p local-api -p llmxt-admin -p llmxt-testkit --bins
}

# Runs llmxt-admin, built with the other local binaries.
llmxt_admin() {
  build_local_binaries
  "$(dirname "${BASH_SOURCE[0]}")/../target/debug/llmxt-admin" "$@"
}

# Waits up to 15 s until `$check PORT` succeeds for the background process whose pid is in
# PIDFILE; prints LOG and fails if the process exits first. Used by the service scripts.
#   wait_for_service NAME PORT CHECK PIDFILE LOG
wait_for_service() {
  local name=$1 port=$2 check=$3 pidfile=$4 log=$5
  for _ in $(seq 1 150); do
    if "$check" "$port"; then
      echo "$name: answering on http://127.0.0.1:$port" >&2
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; echo "$name: it exited while starting" >&2; return 1; }
    sleep 0.1
  done
  echo "$name: no answer on port $port after 15 s (log: $log)" >&2
  return 1
}

# Stops the process whose pid is in PIDFILE (TERM, then KILL after 5 s) and removes the file.
stop_pidfile() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
