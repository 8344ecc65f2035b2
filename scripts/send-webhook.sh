#!/usr/bin/env bash
# Sends a correctly signed sample Dodo delivery to a local or deployed endpoint: a quick
# stand-in for Dodo's test mode. The secret comes from DODO_WEBHOOK_SECRET (or .env).
#
#   scripts/send-webhook.sh EVENT [--email you@example.com] [--url URL] [--payment-id ID]
#                                 [--subscription-id ID] [--product-id ID]
#
# EVENT: payment.succeeded, payment.failed, subscription.active, subscription.cancelled,
#        subscription.expired, refund.succeeded, dispute.lost (from fixtures/dodo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
load_env_file .env

event=${1:-}
[ -n "$event" ] || { sed -n '2,11p' "$0" >&2; exit 2; }
shift
email="" url="http://127.0.0.1:${PORT:-3000}/api/webhooks/dodo" payment_id="" subscription_id="" product_id=""
while [ $# -gt 0 ]; do
  case "$1" in
    --email) email=$2 ;;
    --url) url=$2 ;;
    --payment-id) payment_id=$2 ;;
    --subscription-id) subscription_id=$2 ;;
    --product-id) product_id=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
: "${DODO_WEBHOOK_SECRET:?set DODO_WEBHOOK_SECRET (or put it in .env)}"
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 1; }

kind=${event%%.*}
state=${event#*.}
case "$kind" in
  payment) fixture=payment.succeeded.cli-generator ;;
  subscription) fixture=subscription.active.cli-generator ;;
  refund) fixture=refund.succeeded.cli-generator ;;
  dispute) fixture=dispute.opened.cli-generator ;;
  *) echo "unknown event $event" >&2; exit 2 ;;
esac

now=$(date -u +%s)
stamp=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
next=$(date -u -d "@$((now + 30 * 86400))" +%Y-%m-%dT%H:%M:%S.000Z)
body=$(jq -c \
  --arg type "$event" --arg state "$state" --arg stamp "$stamp" --arg next "$next" \
  --arg email "$email" --arg pay "$payment_id" --arg sub "$subscription_id" --arg product "$product_id" '
  .type = $type | .timestamp = $stamp
  | if $email != "" then .data.customer.email = $email else . end
  | if $pay != "" then .data.payment_id = $pay else . end
  | if $sub != "" then .data.subscription_id = $sub else . end
  | if $product != "" then (if .data.product_cart then .data.product_cart[0].product_id = $product else .data.product_id = $product end) else . end
  | if .data.payload_type == "Payment" or .data.payload_type == "Subscription" then .data.status = $state else . end
  | if .data.payload_type == "Subscription" then .data.next_billing_date = $next else . end
  | if .data.payload_type == "Dispute" then .data.dispute_status = ("dispute_" + $state) else . end
  ' "fixtures/dodo/$fixture.json")

id="msg_local_$(date +%s%N)"
body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT
printf '%s' "$body" >"$body_file"
signature=$(llmxt_admin sign-webhook --id "$id" --timestamp "$now" --body-file "$body_file")

echo "POST $url ($event, webhook-id $id)" >&2
curl -sS -X POST "$url" \
  -H "content-type: application/json" \
  -H "webhook-id: $id" -H "webhook-timestamp: $now" -H "webhook-signature: $signature" \
  --data-binary "@$body_file" -w '\nHTTP %{http_code}\n'
