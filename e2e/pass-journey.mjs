// The edge pass, measured (docs/benchmarks.md, section 7): one Pro visitor loads a gated page
// of the example site every INTERVAL_S seconds for DURATION_S seconds, twice side by side: the
// API with PASS_SIGNING_KEY (PASS_TTL_SECONDS=TTL_S) and without. Counts the origin checks at
// local-api (its log has one line per check, each one DynamoDB GetItem for a one-email cookie)
// and the middleware's decisions. Prints JSON.
//
//   (cd e2e && DURATION_S=600 node pass-journey.mjs)
//
// Needs LLMXT_TEST_DYNAMODB_ENDPOINT, the debug binaries and the example built by
// nextjs-example.test.mjs (any API origin: this script points the site's server at its API
// with LLMXT_API_URL, which the middleware and the page read when they run).
import { spawn, execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { root, bin, freePort, waitForServer, deliverEvent, accountToken, stop } from "./lib.mjs";

const duration = Number(process.env.DURATION_S ?? 600);
const interval = Number(process.env.INTERVAL_S ?? 2);
const ttl = process.env.TTL_S ?? "60";
const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
if (!endpoint) throw new Error("set LLMXT_TEST_DYNAMODB_ENDPOINT");
const example = join(root, "examples", "nextjs");
const suffix = `${process.pid}-${Date.now()}`;

async function journey(withPass) {
  const apiPort = await freePort();
  const sitePort = await freePort();
  const api = `http://127.0.0.1:${apiPort}`;
  const site = `http://localhost:${sitePort}`;
  const name = withPass ? "pass" : "nopass";
  const env = {
    ...process.env,
    PORT: String(apiPort),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `journey-${name}-entitlements-${suffix}`,
    PAYMENTS_TABLE: `journey-${name}-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "journey-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: "journey-hmac-secret-0123456789abcdef0123456",
    REQUIRE_HMAC_SIGNATURE: "true",
    NEXT_PUBLIC_SITE_URL: site,
    PRODUCT_PLANS: "pdt_test=professional",
    RUST_LOG: "info",
    // The longest database budget, so that a loaded machine's slow DynamoDB Local does not make
    // answers fail open (they carry no pass; every one still counts as a check).
    ENTITLEMENT_DB_BUDGET_MS: "900",
    ...(withPass
      ? { PASS_SIGNING_KEY: generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }), PASS_TTL_SECONDS: ttl }
      : {}),
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "ignore" });
  const local = spawn(bin("local-api"), [], { env, stdio: ["ignore", "pipe", "ignore"] });
  let checks = 0;
  createInterface({ input: local.stdout }).on("line", (line) => {
    if (/entitlement by cookie|failing open on a valid cookie/.test(line)) checks += 1;
  });
  const next = spawn(process.execPath, ["node_modules/next/dist/bin/next", "start", "-H", "127.0.0.1", "-p", String(sitePort)], {
    cwd: example,
    env: { PATH: process.env.PATH, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1", NEXT_PUBLIC_SITE_URL: site, LLMXT_API_URL: api, HMAC_SECRET: env.HMAC_SECRET },
    stdio: "ignore",
  });
  try {
    await waitForServer(`${api}/`, "local-api");
    await waitForServer(`${site}/`, "next start", 30);
    const email = `journey-${name}-${suffix}@example.com`;
    await deliverEvent({ url: `${api}/api/webhooks/dodo`, env }, "payment.succeeded.cli-generator.json", `pay_journey_${name}_${process.pid}`, email);
    const jar = new Map([["__Host-llmxt_pro", accountToken({ email, aud: site, key: env.ENTITLEMENT_SECRET, daysAgo: 0 })]]);
    checks = 0;
    const decisions = {};
    let views = 0;
    let notPro = 0;
    const started = Date.now();
    while (Date.now() - started < duration * 1000) {
      const tick = Date.now();
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
      const response = await fetch(`${site}/pro`, { headers: { cookie }, redirect: "manual" });
      await response.arrayBuffer();
      for (const set of response.headers.getSetCookie()) {
        const [pair, ...attributes] = set.split(";");
        const eq = pair.indexOf("=");
        const [key, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
        if (!value || attributes.some((a) => /^\s*max-age=0$/i.test(a))) jar.delete(key);
        else jar.set(key, value);
      }
      views += 1;
      if (response.status !== 200) notPro += 1;
      const decision = response.headers.get("x-llmxt-decision") ?? "?";
      decisions[decision] = (decisions[decision] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, Math.max(0, interval * 1000 - (Date.now() - tick))));
    }
    return { pass: withPass, ttl_s: withPass ? Number(ttl) : null, views, not_pro: notPro, origin_checks: checks, dynamodb_reads_per_1000_views: Math.round((checks * 1000) / views), decisions };
  } finally {
    await stop(next);
    await stop(local);
  }
}

const results = await Promise.all([journey(true), journey(false)]);
console.log(JSON.stringify({ duration_s: duration, interval_s: interval, results }, null, 2));
