#!/usr/bin/env bash
# Proves @llmxt/pro installs and works as a site gets it: `npm publish --dry-run` has nothing to
# warn about, then the `npm pack` tarball is installed (offline: it has no dependencies) into a
# scratch project whose ESM script and type check import it. Needs `npm ci` here first (the
# pack builds dist with the devDependencies). Not part of `npm test`: run `npm run pack-check`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$here"

echo "pack-check: npm publish --dry-run"
if ! npm publish --dry-run >"$work/publish.log" 2>&1; then
  cat "$work/publish.log"
  echo "pack-check: npm publish --dry-run failed" >&2
  exit 1
fi
# Being logged out is this machine's state, not the package's; any other warning fails.
warnings="$(grep -iE '(^| )(warn|err!?|error)( |$)' "$work/publish.log" | grep -v 'requires you to be logged in' || true)"
if [[ -n "$warnings" ]]; then
  printf '%s\n' "$warnings" >&2
  echo "pack-check: npm publish --dry-run warned (above)" >&2
  exit 1
fi

echo "pack-check: npm pack"
npm pack --pack-destination "$work" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; exit 1; }
tarball="$(ls "$work"/llmxt-pro-*.tgz)"
contents="$(tar -tzf "$tarball" | sort)"
for expected in package/package.json package/README.md package/dist/index.js package/dist/index.d.ts \
  package/dist/next.js package/dist/next.d.ts package/dist/pass.js package/dist/paths.js; do
  grep -qx "$expected" <<<"$contents" || { echo "pack-check: $expected missing from the tarball" >&2; exit 1; }
done
if grep -vE '^package/(package\.json|README\.md|dist/[a-z-]+\.(js|d\.ts))$' <<<"$contents"; then
  echo "pack-check: unexpected files in the tarball (above)" >&2
  exit 1
fi

echo "pack-check: install $(basename "$tarball") into a scratch project"
site="$work/site"
mkdir "$site"
cd "$site"
printf '{ "name": "pack-check-site", "private": true, "type": "module" }\n' >package.json
npm install --offline --no-audit --no-fund "$tarball" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
[[ ! -e node_modules/next ]] || { echo "pack-check: next was installed, but it is an optional peer" >&2; exit 1; }

cat >check.mjs <<'JS'
import assert from "node:assert/strict";
import { createClient, verifyPass, verifyJws, jwkThumbprint, EntitlementError } from "@llmxt/pro";

const client = createClient({ apiUrl: "https://shop.example/", hmacSecret: "pack-check-secret-0123456789abcdef" });
assert.equal(client.apiUrl, "https://shop.example");
assert.equal(await client.checkoutUrl({ product: "pdt_x" }), "https://shop.example/upgrade/checkout?product=pdt_x");
// RFC 8037 A.3 and A.4
const jwk = { kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" };
assert.equal(await jwkThumbprint(jwk), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
const jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
  "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
assert.ok(await verifyJws(jws, jwk));
assert.equal(await verifyPass("not.a.pass", { keys: { keys: [jwk] } }), null);
assert.equal(typeof EntitlementError, "function");
// The Next.js entry is there (importing it needs the site's own `next`).
assert.match(import.meta.resolve("@llmxt/pro/next"), /node_modules\/@llmxt\/pro\/dist\/next\.js$/);
assert.equal(JSON.parse(await (await import("node:fs/promises")).readFile(new URL(import.meta.resolve("@llmxt/pro/package.json")))).name, "@llmxt/pro");
console.log("pack-check: @llmxt/pro imports and works from the tarball");
JS
node check.mjs

cat >check.ts <<'TS'
import { createClient, verifyPass, type VerifiedPass, type EntitlementAnswer } from "@llmxt/pro";
const client = createClient({ apiUrl: "https://shop.example", hmacSecret: "s" });
const answer: Promise<EntitlementAnswer> = client.entitlement({ cookie: null }, { timeoutMs: 1500 });
const pass: Promise<VerifiedPass | null> = verifyPass("t", { keysUrl: "https://shop.example/api/entitlement/keys" });
const source: "database" | "cookie" | "pass" = null! as Awaited<typeof answer>["source"];
void pass; void source;
TS
printf '{ "compilerOptions": { "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022", "lib": ["ES2022", "DOM"], "strict": true, "noEmit": true, "types": [] }, "files": ["check.ts"] }\n' >tsconfig.json
"$here/node_modules/.bin/tsc" -p tsconfig.json
echo "pack-check: the types resolve from the tarball"
echo "pack-check: ok"
