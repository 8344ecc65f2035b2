# Shared by the scripts: load .env without overriding variables already set in the
# environment (so `PORT=3100 scripts/dev.sh` wins over PORT in .env). KEY=VALUE lines; one
# pair of matching quotes around a value is removed (PLAN_FEATURES="a=x;b=y" reads a=x;b=y,
# as `set -a; . ./.env` does); nothing else is interpreted ($, \ and # stay as written).
load_env_file() {
  local file=$1 line key value
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [ ${#value} -ge 2 ]; then
      case "$value" in
        \"*\" | \'*\') value=${value:1:${#value}-2} ;;
      esac
    fi
    if [ -z "${!key+x}" ]; then export "$key=$value"; fi
  done <"$file"
}

# Where cargo puts the local binaries: local_bin NAME.
local_bin() {
  echo "${CARGO_TARGET_DIR:-$(dirname "${BASH_SOURCE[0]}")/../target}/debug/$1"
}

# The local binaries (local-api, llmxt-admin, dodo-local), built as one package set everywhere
# (the same set keeps cargo's feature resolution, and so its cache, identical). Cargo shows its
# progress; pass --quiet where a script's own output matters more.
build_local_binaries() {
  cargo build "$@" -p local-api -p llmxt-admin -p llmxt-testkit --bins
}

# Runs llmxt-admin, built with the other local binaries (quietly once they exist: a first
# build shows cargo's progress).
llmxt_admin() {
  local quiet=()
  [ -x "$(local_bin llmxt-admin)" ] && quiet=(--quiet)
  build_local_binaries "${quiet[@]}"
  "$(local_bin llmxt-admin)" "$@"
}

# Test phases, for scripts/test.sh: `phase NAME` ends the phase before it (a line with its
# time) and announces NAME; `phase_end [failed]` ends the current one.
phase_name="" phase_started=0
phase() {
  phase_end
  phase_name=$1
  phase_started=$SECONDS
  echo "== $phase_name"
}
phase_end() {
  [ -n "$phase_name" ] || return 0
  if [ "${1:-}" = failed ]; then
    echo "-- $phase_name: FAILED after $((SECONDS - phase_started)) s"
  else
    echo "-- $phase_name: $((SECONDS - phase_started)) s"
  fi
  phase_name=""
}

# Waits up to 30 s until `$check PORT` succeeds for the background process whose pid is in
# PIDFILE; prints LOG and fails if the process exits first. Used by the service scripts.
#   wait_for_service NAME PORT CHECK PIDFILE LOG
wait_for_service() {
  local name=$1 port=$2 check=$3 pidfile=$4 log=$5
  for _ in $(seq 1 300); do
    if "$check" "$port"; then
      echo "$name: answering on http://127.0.0.1:$port" >&2
      return 0
    fi
    running "$(cat "$pidfile")" || { cat "$log" >&2; echo "$name: it exited while starting" >&2; return 1; }
    sleep 0.1
  done
  echo "$name: no answer on port $port after 30 s (log: $log)" >&2
  return 1
}

# Whether process PID is alive (an exited process nobody has reaped yet does not count).
running() {
  local state=""
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] && state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ "$state" != Z ]
}

# Stops the processes PIDS (TERM, then KILL those still running after 3 s).
stop_pids() {
  local pid left
  [ $# -gt 0 ] || return 0
  kill "$@" 2>/dev/null || true
  for _ in $(seq 1 30); do
    left=""
    for pid in "$@"; do running "$pid" && left=1; done
    [ -n "$left" ] || return 0
    sleep 0.1
  done
  kill -9 "$@" 2>/dev/null || true
}

# Stops the process whose pid is in PIDFILE (TERM, then KILL after 3 s) and removes the file.
stop_pidfile() {
  local pidfile=$1
  [ -f "$pidfile" ] || return 0
  stop_pids "$(cat "$pidfile")"
  rm -f "$pidfile"
}
