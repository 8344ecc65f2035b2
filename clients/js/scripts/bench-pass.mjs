// How long proMiddleware takes to decide with a fresh pass (no API call) beside the same
// decision asked of an API on loopback (the fastest an origin check can be). Prints JSON.
// Run after `npm run build`: node scripts/bench-pass.mjs [decisions]
import { cpus, loadavg } from "node:os";
import { createClient } from "../dist/index.js";
import { makeKey, jwks, claims, signPass, serve, now, allowNextServerImport } from "../test/helpers.mjs";

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
const middleware = proMiddleware({
  matcher: "/pro/:path*",
  redirectTo: "/pricing",
  siteUrl: SITE,
  client: createClient({ apiUrl: api.url, hmacSecret: "bench-hmac-secret-0123456789abcdef" }),
});

async function measure(cookieOf, count, expected) {
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
}, null, 2));
