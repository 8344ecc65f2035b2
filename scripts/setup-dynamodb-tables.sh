#!/usr/bin/env bash
# Creates both tables (idempotently), with the email-index GSI and TTL, against AWS or
# DYNAMODB_ENDPOINT when set. Honours ENTITLEMENTS_TABLE and PAYMENTS_TABLE.
#
#   scripts/setup-dynamodb-tables.sh us-east-1
#
# The table definitions live in one place, crates/store/src/store.rs (table_specs); a test
# checks template.yaml against them.
set -euo pipefail
cd "$(dirname "$0")/.."
region=${1:-${AWS_REGION:-}}
[ -n "$region" ] || { echo "usage: $0 REGION" >&2; exit 2; }
export AWS_REGION="$region"
. scripts/lib.sh
llmxt_admin create-tables
