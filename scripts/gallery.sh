#!/usr/bin/env bash
# Renders every buyer page state at 1280 and 390 px, light and dark, into docs/pages/*.png, with
# the branding e2e/pages.test.mjs configures. The same test runs in scripts/test.sh, rendering
# into a temporary directory; this script keeps its images. Starts (and stops) its own
# DynamoDB Local and SES emulator on free loopback ports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
ses_port=$(free_port)
trap 'scripts/dynamodb-local.sh stop "$port"; scripts/ses-local.sh stop "$ses_port"' EXIT
scripts/dynamodb-local.sh start "$port"
scripts/ses-local.sh start "$ses_port"
build_local_binaries
mkdir -p docs/pages
(cd e2e && npm ci --silent --no-audit --no-fund &&
  LLMXT_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" \
  LLMXT_TEST_SES_ENDPOINT="http://127.0.0.1:$ses_port" \
  LLMXT_GALLERY_DIR="$root/docs/pages" \
  node --test --test-name-pattern='every page state' pages.test.mjs)
du -ch docs/pages/*.png | tail -1
