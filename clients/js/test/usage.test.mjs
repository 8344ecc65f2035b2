// usage.reserve/commit/release/consume and withUsage against a running local-api (the real
// handlers) on DynamoDB Local, with PLAN_LIMITS set. Needs LLMXT_TEST_DYNAMODB_ENDPOINT and the
// debug binaries (scripts/test.sh provides both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createClient, LimitReachedError, UsageError } from "../dist/index.js";
import { bin, freePort, waitForServer, deliverEvent, accountToken, stop } from "../../../e2e/lib.mjs";

const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
const suffix = `${process.pid}-${Date.now()}`;
const hmacSecret = "js-usage-hmac-secret-0123456789abcdef";
let server;
let api;
let env;
let client;

before(async () => {
  assert.ok(endpoint, "LLMXT_TEST_DYNAMODB_ENDPOINT is not set: run scripts/test.sh");
  for (const name of ["local-api", "llmxt-admin"]) {
    assert.ok(existsSync(bin(name)), `${bin(name)} is missing: cargo build -p local-api -p llmxt-admin --bins`);
  }
  const port = await freePort();
  api = `http://localhost:${port}`;
  env = {
    ...process.env,
    PORT: String(port),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `js-usage-entitlements-${suffix}`,
    PAYMENTS_TABLE: `js-usage-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "js-usage-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: hmacSecret,
    // Usage calls are signed whatever this says.
    REQUIRE_HMAC_SIGNATURE: "false",
    NEXT_PUBLIC_SITE_URL: api,
    PRODUCT_PLANS: "pdt_test=professional",
    PLAN_LIMITS: "professional=tokens:1000/month",
    RUST_LOG: "warn",
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "inherit" });
  server = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitForServer(`${api}/`, "local-api");
  await deliverEvent({ url: `${api}/api/webhooks/dodo`, env }, "payment.succeeded.cli-generator.json", "pay_js_usage", "tokens@example.com");
  client = createClient({ apiUrl: api, hmacSecret });
});

after(async () => {
  await stop(server);
});

const buyer = { email: "tokens@example.com" };

test("an unsigned usage call is refused even with REQUIRE_HMAC_SIGNATURE=false", async () => {
  const response = await fetch(`${api}/api/usage/consume`, {
    method: "POST",
    body: JSON.stringify({ ...buyer, meter: "tokens", amount: 1, idempotency_key: "x" }),
  });
  assert.equal(response.status, 401);
});

test("reserve, commit part, and the rest goes back", async () => {
  const held = await client.usage.reserve(buyer, { meter: "tokens", amount: 300, idempotencyKey: "r1" });
  assert.equal(held.reserved, 300);
  assert.equal(held.remaining, 700);
  const again = await client.usage.reserve(buyer, { meter: "tokens", amount: 300, idempotencyKey: "r1" });
  assert.equal(again.reservation, held.reservation, "the same key gets the first answer");
  const settled = await client.usage.commit(held.reservation, 120);
  assert.deepEqual(settled, { state: "committed", used: 120, remaining: 880 });
  const answer = await client.entitlement(buyer);
  assert.equal(answer.usage?.tokens?.used, 120);
});

test("withUsage commits what the work reports and releases when it throws", async () => {
  const value = await client.usage.withUsage({ ...buyer, meter: "tokens", amount: 200, idempotencyKey: "w1" }, async () => ({
    amount: 80,
    value: "done",
  }));
  assert.equal(value, "done");
  await assert.rejects(
    client.usage.withUsage({ ...buyer, meter: "tokens", amount: 500, idempotencyKey: "w2" }, async () => {
      throw new Error("model failed");
    }),
    /model failed/,
  );
  const usage = (await client.entitlement(buyer)).usage.tokens;
  assert.equal(usage.used, 200);
  assert.equal(usage.reserved, 0, "the failed call's hold was released");
});

test("a reserve over the balance throws LimitReachedError with the 402 fields", async () => {
  await assert.rejects(client.usage.reserve(buyer, { meter: "tokens", amount: 801, idempotencyKey: "big" }), (error) => {
    assert.ok(error instanceof LimitReachedError);
    assert.deepEqual([error.status, error.error], [402, "limit_reached"]);
    assert.equal(error.meter, "tokens");
    assert.equal(error.limit, 1000);
    assert.equal(error.used, 200);
    assert.equal(error.remaining, 800);
    assert.equal(error.credits, 0);
    assert.match(error.resets_at, /^\d{4}-\d\d-01T00:00:00Z$/);
    return true;
  });
  const consumed = await client.usage.consume(buyer, { meter: "tokens", amount: 800, idempotencyKey: "c1" });
  assert.equal(consumed.remaining, 0);
});

test("a meter outside the plan and a buyer without Pro are refused with UsageError", async () => {
  await assert.rejects(client.usage.consume(buyer, { meter: "images", amount: 1, idempotencyKey: "i" }), (error) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.status, 403);
    assert.equal(error.error, "meter_not_in_plan");
    return true;
  });
  const cookie = `__Host-llmxt_pro=${accountToken({ email: "nobody@example.com", aud: api, key: env.ENTITLEMENT_SECRET, daysAgo: 0 })}`;
  await assert.rejects(client.usage.reserve({ cookie }, { meter: "tokens", amount: 1, idempotencyKey: "n" }), (error) => {
    assert.equal(error.status, 403);
    assert.equal(error.error, "no_access");
    return true;
  });
});
