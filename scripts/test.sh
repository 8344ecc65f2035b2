#!/usr/bin/env bash
# The one test command: formatting, lints and every test, against a real DynamoDB Local and
# the SES emulator that this script fetches (once), starts on free loopback ports and stops
# again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Python tools: the reference standardwebhooks package (signature cross-check), SAM CLI and
# cfn-lint (template validation), pytest (template tests). Reinstalled when the list changes.
venv="$root/.cache/venv"
stamp="$venv/.requirements"
if ! cmp -s scripts/requirements-test.txt "$stamp" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$stamp"
fi
export LLMXT_TEST_PYTHON="$venv/bin/python"
export SAM_CLI_TELEMETRY=0

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
ses_port=$(free_port)
trap 'scripts/dynamodb-local.sh stop "$port"; scripts/ses-local.sh stop "$ses_port"' EXIT
scripts/dynamodb-local.sh start "$port"
scripts/ses-local.sh start "$ses_port"
export LLMXT_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export LLMXT_TEST_SES_ENDPOINT="http://127.0.0.1:$ses_port"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== layers: the domain crate's dependency tree"
scripts/check-layers.sh
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

. scripts/lib.sh
build_local_binaries --locked

echo "== scripts/dev.sh: on free ports, loopback only, Ctrl-C leaves nothing running"
node --test tests/dev/

echo "== template: sam validate --lint, cfn-lint, checks against the code"
"$venv/bin/sam" validate --lint --region us-east-1
"$venv/bin/cfn-lint" template.yaml
"$venv/bin/pytest" -q tests/template

echo "== browser end-to-end (headless Chromium)"
chromium_path=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium_path" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser test" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || \
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
  else
    echo "Chromium is needed at $chromium_path for the browser test: apt-get install chromium (or set CHROMIUM_PATH)" >&2
    exit 1
  fi
fi
echo "== JS client (clients/js): npm ci, build, tests (signing vectors, calls against local-api)"
step=$SECONDS
(cd clients/js && npm ci --silent --no-audit --no-fund && npm test)
echo "clients/js: $((SECONDS - step)) s"
echo "== example site (examples/nextjs): npm ci (its production build is cached under .cache/)"
step=$SECONDS
(cd examples/nextjs && npm ci --silent --no-audit --no-fund)
echo "examples/nextjs npm ci: $((SECONDS - step)) s"
step=$SECONDS
(cd e2e && npm ci --silent --no-audit --no-fund && CHROMIUM_PATH="$chromium_path" node --test)
echo "browser tests (with the example's build when not cached): $((SECONDS - step)) s"
