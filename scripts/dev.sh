#!/usr/bin/env bash
# Runs the whole system on this machine: DynamoDB Local and the SES emulator (fetched and
# cached on first use), both tables, the Dodo stand-in (dodo-local, with a hosted checkout
# page) and local-api on http://localhost:$PORT routing to the real handlers.
# Settings come from .env when present (see .env.example); safe development defaults
# otherwise. Ctrl-C stops everything (DynamoDB Local runs in memory: data goes with it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -f .env ]; then
  cp .env.example .env
  echo "dev.sh: created .env from .env.example (edit it to change settings)" >&2
fi
. scripts/lib.sh
load_env_file .env

export PORT=${PORT:-3000}
ddb_port=${DYNAMODB_LOCAL_PORT:-8000}
export AWS_REGION=${AWS_REGION:-us-east-1}
export DYNAMODB_ENDPOINT=${DYNAMODB_ENDPOINT:-http://127.0.0.1:$ddb_port}
export DODO_WEBHOOK_SECRET=${DODO_WEBHOOK_SECRET:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}
export ENTITLEMENT_SECRET=${ENTITLEMENT_SECRET:-local-dev-entitlement-secret-change-me-0123456789}
export HMAC_SECRET=${HMAC_SECRET:-local-dev-hmac-secret-change-me-0123456789abcdef}
export REQUIRE_HMAC_SIGNATURE=${REQUIRE_HMAC_SIGNATURE:-false}
export NEXT_PUBLIC_SITE_URL=${NEXT_PUBLIC_SITE_URL:-http://localhost:$PORT}
export RUST_LOG=${RUST_LOG:-info}
ses_port=${SES_LOCAL_PORT:-8005}
export SES_ENDPOINT=${SES_ENDPOINT:-http://127.0.0.1:$ses_port}
export RESTORE_EMAIL_FROM=${RESTORE_EMAIL_FROM:-access@example.com}
dodo_port=${DODO_LOCAL_PORT:-8006}
export DODO_PAYMENTS_API_KEY=${DODO_PAYMENTS_API_KEY:-local-dodo-api-key}
export DODO_PAYMENTS_BASE_URL=${DODO_PAYMENTS_BASE_URL:-http://127.0.0.1:$dodo_port}
export DODO_LOCAL_PORT=$dodo_port
export DODO_LOCAL_WEBHOOK_URL=${DODO_LOCAL_WEBHOOK_URL:-http://127.0.0.1:$PORT/api/webhooks/dodo}
export PRODUCT_PLANS=${PRODUCT_PLANS:-pdt_test=professional}

started_ddb=""
started_ses=""
dodo_pid=""
cleanup() {
  [ -n "$dodo_pid" ] && kill "$dodo_pid" 2>/dev/null
  [ -n "$started_ses" ] && scripts/ses-local.sh stop "$ses_port"
  [ -n "$started_ddb" ] && scripts/dynamodb-local.sh stop "$ddb_port"
  return 0
}
trap cleanup EXIT
if [ "$DYNAMODB_ENDPOINT" = "http://127.0.0.1:$ddb_port" ]; then
  if ! scripts/dynamodb-local.sh status "$ddb_port"; then
    scripts/dynamodb-local.sh start "$ddb_port"
    started_ddb=1
  fi
fi

if [ "$SES_ENDPOINT" = "http://127.0.0.1:$ses_port" ] && ! scripts/ses-local.sh status "$ses_port"; then
  scripts/ses-local.sh start "$ses_port"
  started_ses=1
fi

echo "== building local-api, llmxt-admin and dodo-local" >&2
llmxt_admin create-tables
if [ "$DODO_PAYMENTS_BASE_URL" = "http://127.0.0.1:$dodo_port" ]; then
  target/debug/dodo-local &
  dodo_pid=$!
fi

cat >&2 <<TXT

  Open the site:   $NEXT_PUBLIC_SITE_URL/   → Buy Pro → Pay → back on the site as Pro
                   (Manage billing, Restore on this device, and the local mailbox are linked there)
  Local Dodo:      $DODO_PAYMENTS_BASE_URL (API stand-in + hosted checkout)
  Local mailbox:   $SES_ENDPOINT/
  Signed webhook:  scripts/send-webhook.sh payment.succeeded --email you@example.com --payment-id pay_demo1
  Look up:         DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT target/debug/llmxt-admin show you@example.com

TXT
target/debug/local-api
