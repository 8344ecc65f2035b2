#!/usr/bin/env bash
# Runs the whole system on this machine: DynamoDB Local and the SES emulator (fetched and
# cached on first use), both tables, the Dodo stand-in (dodo-local, with a hosted checkout
# page) and local-api on http://localhost:$PORT routing to the real handlers, every one on
# 127.0.0.1.
#
# Ports: PORT (local-api, 3000), DYNAMODB_LOCAL_PORT (8000), SES_LOCAL_PORT (8005),
# DODO_LOCAL_PORT (8006), from the environment or .env. Setting DYNAMODB_ENDPOINT,
# SES_ENDPOINT or DODO_PAYMENTS_BASE_URL instead uses a service you run yourself (dev.sh then
# starts none in its place). Settings come from .env when present (see .env.example); safe
# development defaults otherwise. A port held by something else stops the start with one
# line; a service an earlier dev.sh left running on it is stopped first.
# Ctrl-C stops everything it started (DynamoDB Local runs in memory: data goes with it).
# The first run compiles the Rust binaries first: a few minutes, with cargo's progress shown.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# DEV_ENV_FILE: another settings file instead of .env (the test of this script uses one).
env_file=${DEV_ENV_FILE:-.env}
if [ ! -f "$env_file" ]; then
  cp .env.example "$env_file"
  echo "dev.sh: created $env_file from .env.example (edit it to change settings)" >&2
fi
. scripts/lib.sh
load_env_file "$env_file"

die() { echo "dev.sh: $*" >&2; exit 1; }

# local_service PORT_VARIABLE ENDPOINT_VARIABLE DEFAULT_PORT: prints the port dev.sh runs the
# service on and sets the endpoint variable to it, or prints nothing when the endpoint is set
# (a service of your own).
local_service() {
  local port_variable=$1 endpoint_variable=$2 default=$3
  local port=${!port_variable:-} endpoint=${!endpoint_variable:-}
  if [ -n "$endpoint" ]; then
    [ -z "$port" ] || die "both $endpoint_variable=$endpoint and $port_variable=$port are set (in .env or the environment): remove one"
    return 0
  fi
  port=${port:-$default}
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
    die "$port_variable must be a port number, not '$port'"
  echo "$port"
}

export PORT=${PORT:-3000}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be a port number, not '$PORT'"
ddb_port=$(local_service DYNAMODB_LOCAL_PORT DYNAMODB_ENDPOINT 8000)
ses_port=$(local_service SES_LOCAL_PORT SES_ENDPOINT 8005)
dodo_port=$(local_service DODO_LOCAL_PORT DODO_PAYMENTS_BASE_URL 8006)
export AWS_REGION=${AWS_REGION:-us-east-1}
export DYNAMODB_ENDPOINT=${DYNAMODB_ENDPOINT:-http://127.0.0.1:$ddb_port}
export SES_ENDPOINT=${SES_ENDPOINT:-http://127.0.0.1:$ses_port}
export DODO_PAYMENTS_BASE_URL=${DODO_PAYMENTS_BASE_URL:-http://127.0.0.1:$dodo_port}
export DODO_WEBHOOK_SECRET=${DODO_WEBHOOK_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
export ENTITLEMENT_SECRET=${ENTITLEMENT_SECRET:-local-dev-entitlement-secret-change-me-0123456789}
export HMAC_SECRET=${HMAC_SECRET:-local-dev-hmac-secret-change-me-0123456789abcdef}
export REQUIRE_HMAC_SIGNATURE=${REQUIRE_HMAC_SIGNATURE:-false}
export NEXT_PUBLIC_SITE_URL=${NEXT_PUBLIC_SITE_URL:-http://localhost:$PORT}
export RUST_LOG=${RUST_LOG:-info}
export RESTORE_EMAIL_FROM=${RESTORE_EMAIL_FROM:-access@example.com}
export DODO_PAYMENTS_API_KEY=${DODO_PAYMENTS_API_KEY:-local-dodo-api-key}
export DODO_LOCAL_WEBHOOK_URL=${DODO_LOCAL_WEBHOOK_URL:-http://127.0.0.1:$PORT/api/webhooks/dodo}
export PRODUCT_PLANS=${PRODUCT_PLANS:-pdt_test=professional,pdt_test_enterprise=enterprise}
export PLAN_FEATURES=${PLAN_FEATURES:-professional=export,api;enterprise=export,api,sso}
export DODO_LOCAL_SUBSCRIPTION_PRODUCTS=${DODO_LOCAL_SUBSCRIPTION_PRODUCTS:-pdt_test,pdt_test_enterprise}
export DODO_LOCAL_PRICES=${DODO_LOCAL_PRICES:-pdt_test=1000,pdt_test_enterprise=3000}
[ -z "$dodo_port" ] || export DODO_LOCAL_PORT=$dodo_port

ports=("$PORT" $ddb_port $ses_port $dodo_port)
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" -eq "${#ports[@]}" ] ||
  die "PORT, DYNAMODB_LOCAL_PORT, SES_LOCAL_PORT and DODO_LOCAL_PORT must differ (${ports[*]})"

run_dir="$root/.cache/dev"
mkdir -p "$run_dir"
ddb_pidfile="$root/.cache/dynamodb-local/dynamodb-$ddb_port.pid"
ses_pidfile="$root/.cache/ses-local/ses-$ses_port.pid"
dodo_pidfile="$run_dir/dodo-local-$dodo_port.pid"
api_pidfile="$run_dir/local-api-$PORT.pid"

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# claim_port NAME PORT VARIABLE PIDFILE PROGRAM: frees PORT for NAME. The same service left
# running there by an earlier dev.sh (its pid file names a live PROGRAM) is stopped, with one
# line; anything else holding the port stops dev.sh, with one line.
claim_port() {
  local name=$1 port=$2 variable=$3 pidfile=$4 program=$5 pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if running "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$program"; then
      echo "dev.sh: stopping the $name an earlier run left on port $port (its data is not reused)" >&2
      stop_pidfile "$pidfile"
      # The port is free once the listener has closed, which may trail the process's exit.
      for _ in $(seq 1 50); do port_taken "$port" || break; sleep 0.1; done
    else
      rm -f "$pidfile"
    fi
  fi
  if port_taken "$port"; then
    die "port $port ($variable, for $name) is in use by another program: stop it or choose another port"
  fi
}

claim_port local-api "$PORT" PORT "$api_pidfile" local-api
[ -z "$ddb_port" ] || claim_port "DynamoDB Local" "$ddb_port" DYNAMODB_LOCAL_PORT "$ddb_pidfile" DynamoDBLocal
[ -z "$ses_port" ] || claim_port "SES emulator" "$ses_port" SES_LOCAL_PORT "$ses_pidfile" aws-ses-v2-local
[ -z "$dodo_port" ] || claim_port dodo-local "$dodo_port" DODO_LOCAL_PORT "$dodo_pidfile" dodo-local

if [ -z "$ddb_port" ] && ! curl -s -o /dev/null -m 5 "$DYNAMODB_ENDPOINT"; then
  die "nothing answers at DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT: start it, or remove DYNAMODB_ENDPOINT (in .env or the environment) and dev.sh runs DynamoDB Local"
fi

# Built before anything starts: a first build takes minutes, and a failed one leaves nothing
# running. Cargo shows its progress.
if [ -x "$(local_bin local-api)" ] && [ -x "$(local_bin llmxt-admin)" ] && [ -x "$(local_bin dodo-local)" ]; then
  echo "== building local-api, llmxt-admin and dodo-local (only what changed)" >&2
else
  echo "== first run: building local-api, llmxt-admin and dodo-local takes a few minutes (about 5 on 2 cores; later starts take seconds). Cargo's progress follows." >&2
fi
build_local_binaries

# Everything started is recorded before it starts, so that Ctrl-C at any moment stops it.
started_ddb="" started_ses="" dodo_pid="" api_pid=""
cleanup() {
  local status=$?
  trap - EXIT
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  set +e
  local pids=()
  [ -n "$api_pid" ] && pids+=("$api_pid")
  [ -n "$dodo_pid" ] && pids+=("$dodo_pid")
  stop_pids "${pids[@]}" &
  [ -n "$started_ses" ] && scripts/ses-local.sh stop "$ses_port" &
  [ -n "$started_ddb" ] && scripts/dynamodb-local.sh stop "$ddb_port" &
  wait
  rm -f "$api_pidfile" "$dodo_pidfile"
  echo "dev.sh: stopped" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "$ddb_port" ]; then
  started_ddb=1
  scripts/dynamodb-local.sh start "$ddb_port"
fi
if [ -n "$ses_port" ]; then
  started_ses=1
  scripts/ses-local.sh start "$ses_port"
fi

"$(local_bin llmxt-admin)" create-tables
if [ -n "$dodo_port" ]; then
  "$(local_bin dodo-local)" &
  dodo_pid=$!
  echo "$dodo_pid" >"$dodo_pidfile"
fi
"$(local_bin local-api)" &
api_pid=$!
echo "$api_pid" >"$api_pidfile"

# The banner only once local-api answers (it checks its settings before it listens).
until curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"; do
  running "$api_pid" || { wait "$api_pid"; exit 1; }
  sleep 0.1
done
cat >&2 <<TXT

  Open the site:   $NEXT_PUBLIC_SITE_URL/   → Buy Pro → Pay → back on the site as Pro
                   (Manage billing, Restore on this device, and the local mailbox are linked there)
  Local Dodo:      $DODO_PAYMENTS_BASE_URL (API stand-in + hosted checkout)
  Local mailbox:   $SES_ENDPOINT/
  Signed webhook:  scripts/send-webhook.sh payment.succeeded --email you@example.com --payment-id pay_demo1 --url http://127.0.0.1:$PORT/api/webhooks/dodo
  Look up:         DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT target/debug/llmxt-admin show you@example.com
  Stop:            Ctrl-C (stops every service above)

TXT
wait "$api_pid"
