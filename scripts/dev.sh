#!/usr/bin/env bash
# Runs the whole system on this machine: DynamoDB Local (fetched and cached on first use),
# both tables, and local-api on http://localhost:$PORT routing to the real handlers.
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

started_ddb=""
cleanup() { [ -n "$started_ddb" ] && scripts/dynamodb-local.sh stop "$ddb_port"; }
trap cleanup EXIT
if [ "$DYNAMODB_ENDPOINT" = "http://127.0.0.1:$ddb_port" ]; then
  if ! scripts/dynamodb-local.sh status "$ddb_port"; then
    scripts/dynamodb-local.sh start "$ddb_port"
    started_ddb=1
  fi
fi

echo "== building local-api and llmxt-admin" >&2
llmxt_admin create-tables

cat >&2 <<TXT

  The site:        $NEXT_PUBLIC_SITE_URL/
  Pay (simulated): scripts/send-webhook.sh payment.succeeded --email you@example.com --payment-id pay_demo1
  Come back:       $NEXT_PUBLIC_SITE_URL/upgrade/success?payment_id=pay_demo1&status=succeeded
  Look up:         DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT target/debug/llmxt-admin show you@example.com

TXT
target/debug/local-api
