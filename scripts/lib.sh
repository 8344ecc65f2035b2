# Shared by the scripts: load .env without overriding variables already set in the
# environment (so `PORT=3100 scripts/dev.sh` wins over PORT in .env).
load_env_file() {
  local file=$1 line key value
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    value=${line#*=}
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if [ -z "${!key+x}" ]; then export "$key=$value"; fi
  done <"$file"
}

# The local binaries (local-api, llmxt-admin, dodo-local), built as one package set everywhere
# (the same set keeps cargo's feature resolution, and so its cache, identical).
build_local_binaries() {
  cargo build --quiet "$@" -p local-api -p llmxt-admin -p llmxt-testkit --bins
}

# Runs llmxt-admin, built with the other local binaries.
llmxt_admin() {
  build_local_binaries
  "$(dirname "${BASH_SOURCE[0]}")/../target/debug/llmxt-admin" "$@"
}
