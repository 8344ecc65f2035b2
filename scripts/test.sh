#!/usr/bin/env bash
# The one test command: formatting, lints and every test, against a real DynamoDB Local that
# this script fetches (once), starts on a free port and stops again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Python with the reference standardwebhooks package, for the signature cross-check.
venv="$root/.cache/venv"
if ! "$venv/bin/python" -c "import standardwebhooks" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
export LLMXT_TEST_PYTHON="$venv/bin/python"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'scripts/dynamodb-local.sh stop "$port"' EXIT
scripts/dynamodb-local.sh start "$port"
export LLMXT_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
