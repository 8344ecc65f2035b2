// The usage client against a stand-in API on loopback (no local-api, no DynamoDB): what
// withUsage commits or releases for each thing the work returns, the merged reserve/consume
// form, and the error classes. test/usage.test.mjs runs the same calls against the real handlers.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createClient, LimitReachedError, UsageError } from "../dist/index.js";
import { serve } from "./helpers.mjs";

const api = { calls: [], answers: {} };
let origin;
let usage;

before(async () => {
  origin = await serve(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const path = req.url.replace("/api/usage/", "");
    api.calls.push({ path, body: JSON.parse(body), cookie: req.headers.cookie, signed: /^v1=/.test(req.headers["x-llmxt-signature"]) });
    const [status, answer] = api.answers[path] ?? [200, defaults[path](JSON.parse(body))];
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(answer));
  });
  usage = createClient({ apiUrl: origin.url, hmacSecret: "usage-unit-test-secret-0123456789" }).usage;
});
after(() => origin.close());
beforeEach(() => Object.assign(api, { calls: [], answers: {} }));

const defaults = {
  reserve: (b) => ({ reservation: "res_1", meter: b.meter, reserved: b.amount, remaining: 900, credits: 0, resets_at: "", expires_at: "" }),
  commit: (b) => ({ state: "committed", used: b.amount ?? 100, remaining: 900 }),
  release: () => ({ state: "released", used: 0, remaining: 1000 }),
  consume: (b) => ({ meter: b.meter, consumed: b.amount, used: b.amount, remaining: 999, credits: 0, resets_at: "" }),
};
const job = { email: "buyer@example.com", meter: "tokens", amount: 100, idempotencyKey: "k1" };
/** The settle call withUsage made after its reserve: ["commit", amount] or ["release"]. */
const settled = () => {
  assert.equal(api.calls.length, 2, JSON.stringify(api.calls));
  const { path, body } = api.calls[1];
  return path === "commit" ? [path, body.amount] : [path];
};

test("withUsage: undefined or null from the work commits all that was reserved", async () => {
  for (const returned of [undefined, null]) {
    api.calls = [];
    assert.equal(await usage.withUsage(job, async () => returned), undefined);
    assert.deepEqual(settled(), ["commit", 100], String(returned));
  }
  api.calls = [];
  await usage.withUsage(job, () => {}); // a plain function works too
  assert.deepEqual(settled(), ["commit", 100]);
});

test("withUsage: a number from the work is the amount used, floored and clamped to 0..reserved", async () => {
  for (const [returned, expected] of [[40, ["commit", 40]], [12.9, ["commit", 12]], [1e9, ["commit", 100]], [0, ["release"]], [0.5, ["release"]], [-5, ["release"]], [NaN, ["commit", 100]]]) {
    api.calls = [];
    assert.equal(await usage.withUsage(job, async () => returned), undefined);
    assert.deepEqual(settled(), expected, String(returned));
  }
});

test("withUsage: { amount, value } commits amount (all when absent) and returns value", async () => {
  assert.equal(await usage.withUsage(job, async () => ({ amount: 30, value: "text" })), "text");
  assert.deepEqual(settled(), ["commit", 30]);
  api.calls = [];
  assert.equal(await usage.withUsage(job, async () => ({ value: "all" })), "all");
  assert.deepEqual(settled(), ["commit", 100]);
  api.calls = [];
  assert.equal(await usage.withUsage(job, async () => ({ amount: 0, value: 7 })), 7);
  assert.deepEqual(settled(), ["release"]);
  api.calls = [];
  assert.equal(await usage.withUsage(job, async () => ({ amount: 500 })), undefined);
  assert.deepEqual(settled(), ["commit", 100]);
});

test("withUsage: the work throwing releases and rethrows; a failing commit propagates, with no release", async () => {
  await assert.rejects(usage.withUsage(job, async () => { throw new Error("model failed"); }), /model failed/);
  assert.deepEqual(settled(), ["release"]);
  api.calls = [];
  api.answers.commit = [409, { error: "hold_expired" }];
  await assert.rejects(usage.withUsage(job, async () => 10), { name: "UsageError", status: 409, error: "hold_expired" });
  assert.deepEqual(settled(), ["commit", 10]);
});

test("reserve and consume take (buyer, options) or one merged object, with the same request", async () => {
  const options = { meter: "tokens", amount: 5, idempotencyKey: "k2" };
  await usage.reserve({ email: "buyer@example.com" }, { ...options, holdSeconds: 60 });
  await usage.reserve({ email: "buyer@example.com", ...options, holdSeconds: 60 });
  await usage.consume({ cookie: "__Host-llmxt_pro=c" }, options);
  await usage.consume({ cookie: "__Host-llmxt_pro=c", ...options });
  const [r1, r2, c1, c2] = api.calls;
  assert.deepEqual(r1.body, { email: "buyer@example.com", meter: "tokens", amount: 5, idempotency_key: "k2", hold_seconds: 60 });
  assert.deepEqual(r2, r1);
  assert.deepEqual(c1.body, { meter: "tokens", amount: 5, idempotency_key: "k2" });
  assert.equal(c1.cookie, "__Host-llmxt_pro=c");
  assert.deepEqual(c2, c1);
  assert.ok(api.calls.every((call) => call.signed));
});

test("a 402 is a LimitReachedError with status 402 and error limit_reached; other refusals a UsageError with status", async () => {
  const fields = { meter: "tokens", limit: 1000, used: 990, reserved: 0, remaining: 10, credits: 0, resets_at: "2030-01-01T00:00:00Z" };
  api.answers.reserve = [402, { error: "limit_reached", ...fields }];
  await assert.rejects(usage.reserve({ email: job.email }, { ...job, amount: 11 }), (error) => {
    assert.ok(error instanceof LimitReachedError);
    assert.equal(error.status, 402);
    assert.equal(error.error, "limit_reached");
    for (const [name, value] of Object.entries(fields)) assert.equal(error[name], value, name);
    return true;
  });
  api.answers.consume = [503, { error: "unavailable", retry_after: 2 }];
  await assert.rejects(usage.consume({ email: job.email }, job), (error) => {
    assert.ok(error instanceof UsageError);
    assert.deepEqual([error.status, error.error, error.retryAfter], [503, "unavailable", 2]);
    return true;
  });
});
