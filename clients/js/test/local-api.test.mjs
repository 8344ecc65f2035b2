// The client against a running local-api (the real handlers) on DynamoDB Local, with
// REQUIRE_HMAC_SIGNATURE=true, so every answer here proves the client's signature.
// Checkout links go through dodo-local, the Dodo stand-in.
// Needs LLMXT_TEST_DYNAMODB_ENDPOINT and the debug binaries (scripts/test.sh provides both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import net from "node:net";
import { createClient, EntitlementError, verifyPass, PASS_COOKIE } from "../dist/index.js";
import { bin, freePort, waitForServer, deliverEvent, accountToken, stop } from "../../../e2e/lib.mjs";

const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
const suffix = `${process.pid}-${Date.now()}`;
const hmacSecret = "js-client-hmac-secret-0123456789abcdef";
let server;
let dodo;
let api;
let env;

const deliver = (fixtureName, paymentId, email) =>
  deliverEvent({ url: `${api}/api/webhooks/dodo`, env }, fixtureName, paymentId, email);
const accountCookie = (email, daysAgo) => accountToken({ email, aud: api, key: env.ENTITLEMENT_SECRET, daysAgo });

before(async () => {
  assert.ok(endpoint, "LLMXT_TEST_DYNAMODB_ENDPOINT is not set: run scripts/test.sh, or scripts/dynamodb-local.sh start PORT and export it");
  for (const name of ["local-api", "llmxt-admin", "dodo-local"]) {
    assert.ok(existsSync(bin(name)), `${bin(name)} is missing: run cargo build -p local-api -p llmxt-admin -p llmxt-testkit --bins (scripts/test.sh does)`);
  }
  const port = await freePort();
  const dodoPort = await freePort();
  api = `http://localhost:${port}`;
  env = {
    ...process.env,
    PORT: String(port),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `js-entitlements-${suffix}`,
    PAYMENTS_TABLE: `js-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "js-client-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: hmacSecret,
    REQUIRE_HMAC_SIGNATURE: "true",
    NEXT_PUBLIC_SITE_URL: api,
    PRODUCT_PLANS: "pdt_test=professional",
    DODO_PAYMENTS_API_KEY: "js-client-dodo-api-key",
    DODO_PAYMENTS_BASE_URL: `http://127.0.0.1:${dodoPort}`,
    DODO_LOCAL_PORT: String(dodoPort),
    DODO_LOCAL_WEBHOOK_URL: `http://127.0.0.1:${port}/api/webhooks/dodo`,
    // The API issues edge passes: a key made here, so the passes below prove both sides agree.
    PASS_SIGNING_KEY: generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }),
    PLAN_FEATURES: "professional=export,api",
    RUST_LOG: "warn",
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "inherit" });
  server = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  dodo = spawn(bin("dodo-local"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitForServer(`${api}/`, "local-api");
  await waitForServer(env.DODO_PAYMENTS_BASE_URL, "dodo-local");
  await deliver("payment.succeeded.cli-generator.json", "pay_js_paid", "paid@example.com");
  await deliver("payment.succeeded.cli-generator.json", "pay_js_quote", "o'brien+pro@example.com");
});

after(async () => {
  await stop(server);
  await stop(dodo);
});

test("an unsigned request is refused, so the answers below prove the client's signature", async () => {
  assert.equal((await fetch(`${api}/api/entitlement?email=paid%40example.com`)).status, 401);
});

test("email lookup answers Pro from the database", async () => {
  const answer = await createClient({ apiUrl: api, hmacSecret }).entitlement({ email: "Paid@Example.com" });
  assert.equal(answer.pro, true);
  assert.equal(answer.plan, "professional");
  assert.equal(answer.source, "database");
  assert.ok(Array.isArray(answer.features));
  assert.deepEqual(answer.setCookie, []);
});

test("an email with ' and + is signed as sent", async () => {
  const answer = await createClient({ apiUrl: api, hmacSecret }).entitlement({ email: "o'brien+pro@example.com" });
  assert.equal(answer.pro, true);
});

test("an email without a purchase is not Pro", async () => {
  const answer = await createClient({ apiUrl: api, hmacSecret }).entitlement({ email: "nobody@example.com" });
  assert.equal(answer.pro, false);
  assert.equal(answer.plan, null);
});

test("the whole Cookie header is forwarded and a refreshed cookie comes back in setCookie", async () => {
  const old = accountCookie("paid@example.com", 3);
  const answer = await createClient({ apiUrl: api, hmacSecret }).entitlement({
    cookie: `theme=dark; llmxt_pro=${old}; other=1`,
  });
  assert.equal(answer.pro, true);
  assert.equal(answer.source, "database");
  const fresh = answer.setCookie.find((c) => /^(__Host-)?llmxt_pro=[^;]/.test(c));
  assert.ok(fresh, `a refreshed cookie: ${JSON.stringify(answer.setCookie)}`);
  assert.ok(!fresh.includes(old), "it is a new token");
  assert.match(fresh, /HttpOnly/i);
});

test("a cookie alone answers Pro; no cookie is not Pro", async () => {
  const client = createClient({ apiUrl: api, hmacSecret });
  const recent = await client.entitlement({ cookie: `llmxt_pro=${accountCookie("paid@example.com", 0)}` });
  assert.equal(recent.pro, true);
  const none = await client.entitlement({ cookie: undefined });
  assert.equal(none.pro, false);
});

test("a refund ends Pro for the cookie too", async () => {
  await deliver("payment.succeeded.cli-generator.json", "pay_js_refunded", "refunded@example.com");
  const client = createClient({ apiUrl: api, hmacSecret });
  const cookie = `llmxt_pro=${accountCookie("refunded@example.com", 3)}`;
  assert.equal((await client.entitlement({ cookie })).pro, true);
  await deliver("refund.succeeded.cli-generator.json", "pay_js_refunded", "refunded@example.com");
  const after = await client.entitlement({ cookie });
  assert.equal(after.pro, false);
  assert.deepEqual(after.setCookie.filter((c) => /llmxt_pro=[^;]/.test(c)), [], "no fresh cookie when not Pro");
});

test("the API's passes verify with verifyPass against its key set", async () => {
  const client = createClient({ apiUrl: api, hmacSecret });
  const keysUrl = `${api}/api/entitlement/keys`;
  const keys = await fetch(keysUrl);
  assert.equal(keys.status, 200, "the key set needs no signature");
  assert.equal(keys.headers.get("cache-control"), "public, max-age=300");
  const answer = await client.entitlement({ cookie: `llmxt_pro=${accountCookie("paid@example.com", 0)}` });
  assert.equal(typeof answer.pass, "string");
  assert.ok(answer.pass.length <= 600, `${answer.pass.length} bytes`);
  const cookie = answer.setCookie.find((c) => c.startsWith(`${PASS_COOKIE}=`));
  assert.ok(cookie?.startsWith(`${PASS_COOKIE}=${answer.pass};`), `the pass cookie: ${JSON.stringify(answer.setCookie)}`);
  assert.match(cookie, /; Max-Age=86400; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
  const verified = await verifyPass(answer.pass, { keysUrl, audience: api });
  assert.ok(verified, "verifyPass accepts the API's pass");
  assert.equal(verified.fresh, true);
  assert.deepEqual(
    { pro: verified.entitlement.pro, plan: verified.entitlement.plan, features: verified.entitlement.features, scope: verified.entitlement.scope },
    { pro: true, plan: "professional", features: ["api", "export"], scope: "account" },
  );
  assert.equal(verified.claims.sub, "paid@example.com");
  assert.equal(verified.claims.exp - verified.claims.iat, 60);
  assert.equal(verified.claims.stale_until - verified.claims.iat, 86400);
  // Past its TTL and the leeway it is stale (it says Pro), past stale_until it is spent.
  assert.equal((await verifyPass(answer.pass, { keysUrl, audience: api, now: verified.claims.exp + 6 }))?.stale, true);
  assert.equal(await verifyPass(answer.pass, { keysUrl, audience: api, now: verified.claims.stale_until + 1 }), null);
  assert.equal(await verifyPass(answer.pass, { keysUrl, audience: "https://other.example" }), null);
  // A visitor without Pro gets a pass saying so; a check by email gets one in the JSON only.
  const none = await client.entitlement({ cookie: `llmxt_pro=${accountCookie("nobody@example.com", 0)}` });
  assert.equal((await verifyPass(none.pass, { keysUrl, audience: api }))?.entitlement.pro, false);
  const byEmail = await client.entitlement({ email: "paid@example.com" });
  assert.equal((await verifyPass(byEmail.pass, { keysUrl, audience: api }))?.entitlement.pro, true);
  assert.deepEqual(byEmail.setCookie, []);
  // A pass never earns a pass.
  const passOnly = await client.entitlement({ cookie: `${PASS_COOKIE}=${answer.pass}` });
  assert.equal(passOnly.pro, false);
  assert.equal(passOnly.pass, undefined);
});

test("a wrong secret rejects with EntitlementError status 401", async () => {
  const client = createClient({ apiUrl: api, hmacSecret: "not-the-secret-0123456789abcdef0123" });
  await assert.rejects(client.entitlement({ email: "paid@example.com" }), (error) => {
    assert.ok(error instanceof EntitlementError);
    assert.equal(error.kind, "status");
    assert.equal(error.status, 401);
    return true;
  });
});

test("an API that does not answer rejects with a timeout EntitlementError", async (t) => {
  const sockets = [];
  const silent = net.createServer((socket) => sockets.push(socket));
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    silent.close();
  });
  const client = createClient({ apiUrl: `http://127.0.0.1:${silent.address().port}`, hmacSecret, timeoutMs: 300 });
  const started = Date.now();
  await assert.rejects(client.entitlement({ email: "paid@example.com" }), (error) => {
    assert.ok(error instanceof EntitlementError);
    assert.equal(error.kind, "timeout");
    return true;
  });
  assert.ok(Date.now() - started < 3000);
});

test("an API that is not there rejects with a network EntitlementError", async () => {
  const client = createClient({ apiUrl: `http://127.0.0.1:${await freePort()}`, hmacSecret });
  await assert.rejects(client.entitlement({ email: "paid@example.com" }), (error) => error instanceof EntitlementError && error.kind === "network");
});

// The hosted checkout page of dodo-local (after the API's 303) for a checkout link.
async function hostedCheckout(link) {
  const response = await fetch(link, { redirect: "manual" });
  assert.equal(response.status, 303, await response.text());
  return (await fetch(response.headers.get("location"))).text();
}

test("a signed checkout link prefills the buyer's email; an altered one does not", async () => {
  const client = createClient({ apiUrl: api, hmacSecret });
  const link = await client.checkoutUrl({ product: "pdt_test", email: " Prefill@Example.com " });
  assert.match(await hostedCheckout(link), /value="prefill@example\.com"/);
  const altered = link.replace("prefill%40example.com", "someone%40example.com");
  assert.notEqual(altered, link);
  assert.doesNotMatch(await hostedCheckout(altered), /someone@example\.com/);
  const foreign = await createClient({ apiUrl: api, hmacSecret: "not-the-secret-0123456789abcdef0123" })
    .checkoutUrl({ product: "pdt_test", email: "foreign@example.com" });
  assert.doesNotMatch(await hostedCheckout(foreign), /foreign@example\.com/);
});
