// How long proMiddleware takes to decide with a fresh pass (no API call) beside the same
// decision asked of an API on loopback: a stand-in answering at once (the fastest an origin
// check can be) and, when LLMXT_TEST_DYNAMODB_ENDPOINT is set and local-api is built, the real
// local-api (signature checked, one DynamoDB Local read, a new pass signed). Prints JSON.
// Run after `npm run build`: node scripts/bench-pass.mjs [decisions]
// (LLMXT_BENCH_BIN_DIR: where local-api and llmxt-admin are, default target/debug.)
import { spawn, execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { createClient } from "../dist/index.js";
import { makeKey, jwks, claims, signPass, serve, now, allowNextServerImport } from "../test/helpers.mjs";
import { root, freePort, waitForServer, deliverEvent, accountToken, stop } from "../../../e2e/lib.mjs";

allowNextServerImport();
const { NextRequest } = await import("next/server");
const { proMiddleware } = await import("../dist/next.js");

const decisions = Number(process.argv[2] ?? 10_000);
const SITE = "https://shop.example";
const key = makeKey();
const answer = JSON.stringify({ pro: true, plan: "professional", source: "database", features: [], billing: { state: "lifetime" } });
const api = await serve((req, res) => {
  if (req.url === "/api/entitlement/keys") {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
    return res.end(JSON.stringify(jwks(key)));
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(answer);
});

// The key set comes from the API (the default keysUrl), fetched on the first decision and cached.
const gate = proMiddleware({
  matcher: "/pro/:path*",
  redirectTo: "/pricing",
  siteUrl: SITE,
  client: createClient({ apiUrl: api.url, hmacSecret: "bench-hmac-secret-0123456789abcdef" }),
});

async function measure(cookieOf, count, expected, middleware = gate) {
  const times = new Float64Array(count);
  for (let i = -Math.min(500, count); i < count; i++) {
    const request = new NextRequest(`${SITE}/pro/report`, { headers: { cookie: cookieOf(i) } });
    const started = performance.now();
    const response = await middleware(request);
    const took = performance.now() - started;
    if (response.headers.get("x-llmxt-decision") !== expected) throw new Error(`expected ${expected}`);
    if (i >= 0) times[i] = took;
  }
  times.sort();
  const at = (q) => Number(times[Math.min(count - 1, Math.floor(q * count))].toFixed(4));
  const mean = times.reduce((a, b) => a + b, 0) / count;
  return { decisions: count, p50_ms: at(0.5), p99_ms: at(0.99), mean_ms: Number(mean.toFixed(4)) };
}

const withPass = (token) => `theme=dark; __Host-llmxt_pro=c; __Host-llmxt_pass=${token}`;
// The same visitor's pass again (its signature verified once, then remembered), as on every
// request of a visitor's pass minute; and a new pass every decision (each one verified).
const pass = signPass(key, claims(SITE, now() + 3600)); // fresh for the whole run
const repeated = await measure(() => withPass(pass), decisions, "pass");
const fresh = Array.from({ length: decisions + 500 }, (_, i) => withPass(signPass(key, claims(SITE, now() + 3600, { sub: `b${i}@example.com` }))));
const distinct = await measure((i) => fresh[i + 500], decisions, "pass");
const origin = await measure(() => "theme=dark; __Host-llmxt_pro=c", Math.min(decisions, 2000), "origin");
await api.close();
const local = await localApi(Math.min(decisions, 1000));
const ratio = (a, b) => Number((a / b).toFixed(1));
console.log(JSON.stringify({
  node: process.version,
  cpus: cpus().length,
  load_average_1m: Number(loadavg()[0].toFixed(2)),
  pass_repeated: repeated,
  pass_distinct: distinct,
  origin_loopback: origin,
  speedup_repeated: { p50: ratio(origin.p50_ms, repeated.p50_ms), p99: ratio(origin.p99_ms, repeated.p99_ms) },
  speedup_distinct: { p50: ratio(origin.p50_ms, distinct.p50_ms), p99: ratio(origin.p99_ms, distinct.p99_ms) },
  ...(local && {
    origin_local_api: local,
    speedup_vs_local_api_repeated: { p50: ratio(local.p50_ms, repeated.p50_ms), p99: ratio(local.p99_ms, repeated.p99_ms) },
    speedup_vs_local_api_distinct: { p50: ratio(local.p50_ms, distinct.p50_ms), p99: ratio(local.p99_ms, distinct.p99_ms) },
  }),
}, null, 2));

/** The origin check against local-api on loopback, or null when it cannot run here. */
async function localApi(count) {
  const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
  const dir = process.env.LLMXT_BENCH_BIN_DIR ?? join(root, "target", "debug");
  const bin = (name) => join(dir, name);
  if (!endpoint || !existsSync(bin("local-api")) || !existsSync(bin("llmxt-admin"))) return null;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const suffix = `${process.pid}-${Date.now()}`;
  const env = {
    ...process.env,
    PORT: String(port),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `bench-pass-entitlements-${suffix}`,
    PAYMENTS_TABLE: `bench-pass-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "bench-pass-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: "bench-hmac-secret-0123456789abcdef",
    REQUIRE_HMAC_SIGNATURE: "true",
    NEXT_PUBLIC_SITE_URL: SITE,
    PRODUCT_PLANS: "pdt_test=professional",
    PASS_SIGNING_KEY: generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }),
    ENTITLEMENT_DB_BUDGET_MS: "900",
    RUST_LOG: "warn",
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "ignore" });
  const server = spawn(bin("local-api"), [], { env, stdio: "ignore" });
  try {
    await waitForServer(`${url}/`, "local-api");
    const email = `bench-pass-${suffix}@example.com`;
    await deliverEvent({ url: `${url}/api/webhooks/dodo`, env }, "payment.succeeded.cli-generator.json", `pay_bench_pass_${process.pid}`, email);
    const cookie = `theme=dark; __Host-llmxt_pro=${accountToken({ email, aud: SITE, key: env.ENTITLEMENT_SECRET, daysAgo: 0 })}`;
    const middleware = proMiddleware({ matcher: "/pro/:path*", redirectTo: "/pricing", siteUrl: SITE, client: createClient({ apiUrl: url, hmacSecret: env.HMAC_SECRET }) });
    return { ...(await measure(() => cookie, count, "origin", middleware)), api: `local-api (${dir.split("/").pop()}), DynamoDB Local` };
  } finally {
    await stop(server);
  }
}
