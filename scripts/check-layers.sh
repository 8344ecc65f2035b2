#!/usr/bin/env bash
# The domain crate stays pure: its normal dependency tree has no AWS SDK, HTTP client, async
# runtime or Dodo SDK (docs/layout.md). Fails naming what crept in.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden=$(cargo tree -p llmxt-domain -e normal --prefix none --locked --offline 2>/dev/null ||
  cargo tree -p llmxt-domain -e normal --prefix none --locked)
bad=$(printf '%s\n' "$forbidden" | grep -E '^(aws-[a-z-]+|reqwest|tokio|dodopayments|hyper|lambda_http) ' | sort -u || true)
if [ -n "$bad" ]; then
  echo "llmxt-domain must not depend on these (normal dependencies):" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
echo "llmxt-domain: no aws-*, reqwest, tokio, hyper, lambda_http or dodopayments in its normal tree"
