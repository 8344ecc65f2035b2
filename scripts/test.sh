#!/usr/bin/env bash
# The one test command: formatting, lints and every test, against a real DynamoDB Local and
# the SES emulator that this script fetches (once), starts on free loopback ports and stops
# again. Each phase prints a "== name" line when it starts and "-- name: N s" when it ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
started=$SECONDS
port="" ses_port=""
finish() {
  local status=$?
  if [ "$status" -eq 0 ]; then
    phase_end
    echo "== all passed in $((SECONDS - started)) s"
  else
    phase_end failed
  fi
  [ -z "$port" ] || scripts/dynamodb-local.sh stop "$port"
  [ -z "$ses_port" ] || scripts/ses-local.sh stop "$ses_port"
}
trap finish EXIT

# Python tools: the reference standardwebhooks package (signature cross-check), SAM CLI and
# cfn-lint (template validation), pytest (template tests). Reinstalled when the list changes.
phase "Python test tools in .cache/venv"
venv="$root/.cache/venv"
stamp="$venv/.requirements"
if ! cmp -s scripts/requirements-test.txt "$stamp" 2>/dev/null; then
  echo "installing $(grep -v '^#' scripts/requirements-test.txt | tr '\n' ' ')(about a minute the first time)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$stamp"
else
  echo "up to date"
fi
export LLMXT_TEST_PYTHON="$venv/bin/python"
export SAM_CLI_TELEMETRY=0

phase "DynamoDB Local and the SES emulator (fetched once into .cache/)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
ses_port=$(free_port)
scripts/dynamodb-local.sh start "$port"
scripts/ses-local.sh start "$ses_port"
export LLMXT_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export LLMXT_TEST_SES_ENDPOINT="http://127.0.0.1:$ses_port"

phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
phase "layers: the domain crate's dependency tree"
scripts/check-layers.sh
phase "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

phase "local binaries (local-api, llmxt-admin, dodo-local)"
build_local_binaries --locked

phase "scripts/dev.sh and scripts/lib.sh: free ports, loopback only, Ctrl-C leaves nothing running"
node --test tests/dev/

phase "template: sam validate --lint, cfn-lint, checks against the code"
"$venv/bin/sam" validate --lint --region us-east-1
"$venv/bin/cfn-lint" template.yaml
"$venv/bin/pytest" -q tests/template

phase "Chromium for the browser tests"
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
echo "$chromium_path"

phase "JS client (clients/js): npm ci, build, tests (signing vectors, calls against local-api)"
(cd clients/js && npm ci --silent --no-audit --no-fund && npm test)
phase "JS client package: npm publish --dry-run, and the packed tarball installed into a scratch project"
(cd clients/js && npm run --silent pack-check)

phase "example site (examples/nextjs): npm ci"
(cd examples/nextjs && npm ci --silent --no-audit --no-fund)

phase "browser end-to-end in headless Chromium (builds the example site when not cached in .cache/)"
(cd e2e && npm ci --silent --no-audit --no-fund && CHROMIUM_PATH="$chromium_path" node --test)
