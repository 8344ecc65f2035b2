// proMiddleware's decision order and getEntitlement's use of the pass, against a stand-in API on
// loopback that can answer Pro or not, fail, hang, or be gone. Real NextRequest/NextResponse.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "../dist/index.js";
import { makeKey, jwks, claims, signPass, serve, now, allowNextServerImport } from "./helpers.mjs";

allowNextServerImport();
const { NextRequest } = await import("next/server");
const { proMiddleware, getEntitlement } = await import("../dist/next.js");

const SITE = "https://shop.example";
const key = makeKey();
const keys = jwks(key);
const hmacSecret = "middleware-test-hmac-secret-0123456789";
const api = { mode: "pro", calls: 0, keyCalls: 0 };
let origin;

before(async () => {
  origin = await serve((req, res) => {
    if (req.url === "/api/entitlement/keys") {
      api.keyCalls++;
      res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
      return res.end(JSON.stringify(keys));
    }
    api.calls++;
    api.lastCookie = req.headers.cookie;
    api.lastSignature = req.headers["x-llmxt-signature"];
    if (api.mode === "down") return res.writeHead(502).end("bad gateway");
    if (typeof api.mode === "number") return res.writeHead(api.mode).end("{}");
    if (api.mode === "slow") return setTimeout(() => res.writeHead(200).end("{}"), 3000).unref();
    const pro = api.mode === "pro";
    const pass = signPass(key, claims(SITE, now(), { pro }));
    res.setHeader("set-cookie", [
      `__Host-llmxt_pro=refreshed; Path=/; HttpOnly; Secure; SameSite=Lax`,
      `__Host-llmxt_pass=${pass}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=86400`,
      ...api.extraSetCookie,
    ]);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ pro, plan: pro ? "professional" : null, source: "database", features: [], pass }));
  });
});
after(() => origin.close());
beforeEach(() => Object.assign(api, { mode: "pro", calls: 0, keyCalls: 0, extraSetCookie: [] }));

const quiet = (t) => {
  const real = console.error;
  console.error = () => {};
  t.after(() => (console.error = real));
};
const client = () => createClient({ apiUrl: origin.url, hmacSecret });
const gate = (extra = {}) =>
  proMiddleware({ matcher: "/pro/:path*", redirectTo: "/pricing", client: client(), keys, siteUrl: SITE, ...extra });
const request = (cookie, path = "/pro/report") =>
  new NextRequest(`${SITE}${path}`, { headers: cookie ? { cookie } : {} });
const freshPass = (extra) => signPass(key, claims(SITE, now(), extra));
const stalePass = (extra) => signPass(key, claims(SITE, now() - 3600, extra));

function outcome(response) {
  if (response.headers.get("x-middleware-next") === "1") return "next";
  if (response.headers.get("x-middleware-rewrite")) return "rewrite";
  if (response.status === 307) return "redirect";
  return String(response.status);
}

test("paths outside the matcher pass untouched", async () => {
  const response = await gate()(request(null, "/about"));
  assert.equal(outcome(response), "next");
  assert.equal(response.headers.get("x-llmxt-decision"), null);
  assert.equal(api.calls, 0);
});

test("1. no Pro cookie and no pass: redirect, decision none, no call", async () => {
  const response = await gate()(request("theme=dark; llmxt_checkout=abc"));
  assert.equal(outcome(response), "redirect");
  assert.equal(new URL(response.headers.get("location")).pathname, "/pricing");
  assert.equal(response.headers.get("x-llmxt-decision"), "none");
  assert.equal(response.headers.get("cache-control"), "private, no-store");
  assert.equal(api.calls, 0);
});

test("2. a fresh pass decides locally: Pro through, not Pro redirected, no call", async () => {
  const pro = await gate()(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${freshPass()}`));
  assert.deepEqual([outcome(pro), pro.headers.get("x-llmxt-decision")], ["next", "pass"]);
  const notPro = await gate()(request(`__Host-llmxt_pass=${freshPass({ pro: false })}`));
  assert.deepEqual([outcome(notPro), notPro.headers.get("x-llmxt-decision")], ["redirect", "pass"]);
  assert.equal(api.calls, 0);
});

test("2. the default key set is fetched from the client's API once", async () => {
  const middleware = gate({ keys: undefined });
  for (let i = 0; i < 5; i++) {
    const response = await middleware(request(`__Host-llmxt_pass=${freshPass()}`));
    assert.equal(response.headers.get("x-llmxt-decision"), "pass");
  }
  assert.deepEqual([api.keyCalls, api.calls], [1, 0]);
});

test("3. otherwise the API decides, signed, with the whole Cookie header, and every Set-Cookie comes back", async () => {
  const cookie = `theme=dark; __Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`;
  const response = await gate()(request(cookie));
  assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision")], ["next", "origin"]);
  assert.equal(api.calls, 1);
  assert.equal(api.lastCookie, cookie);
  assert.match(api.lastSignature, /^v1=[0-9a-f]{64}$/);
  const set = response.headers.getSetCookie();
  assert.equal(set.length, 2);
  assert.ok(set.some((c) => c.startsWith("__Host-llmxt_pass=ey")), "the new pass is passed on");

  api.mode = "free";
  const notPro = await gate()(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`));
  assert.deepEqual([outcome(notPro), notPro.headers.get("x-llmxt-decision")], ["redirect", "origin"], "the API wins over a stale Pro pass");
  assert.equal(notPro.headers.getSetCookie().length, 2);
});

/** The Cookie header the page renders with: Next.js applies the middleware's request override. */
function pageCookie(response, sent) {
  const overridden = (response.headers.get("x-middleware-override-headers") ?? "").split(",");
  return overridden.includes("cookie") ? response.headers.get("x-middleware-request-cookie") : sent;
}

test("3. the page renders with the cookies the API just set, so its getEntitlement makes no second call", async () => {
  const old = stalePass();
  const sent = `theme=dark; __Host-llmxt_pro=c; __Host-llmxt_pass=${old}`;
  const response = await gate()(request(sent));
  assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision"), api.calls], ["next", "origin", 1]);
  const cookie = pageCookie(response, sent);
  assert.notEqual(cookie, sent, "the page's Cookie header is overridden");
  assert.ok(!cookie.includes(old), "the old pass is replaced");
  assert.match(cookie, /^theme=dark; __Host-llmxt_pro=refreshed; __Host-llmxt_pass=ey[\w-]+\.[\w-]+\.[\w-]+$/);
  const newPass = response.headers.getSetCookie().find((c) => c.startsWith("__Host-llmxt_pass="));
  assert.ok(cookie.endsWith(newPass.split(";")[0]), "the very pass the browser gets");
  // The page (a server component: `getEntitlement(await headers(), client)`), keys from the API.
  const answer = await getEntitlement(new Headers({ cookie, host: "shop.example" }), client());
  assert.deepEqual([answer.pro, answer.source, answer.plan], [true, "pass", "professional"]);
  assert.equal(api.calls, 1, "no second check");
});

test("3. a cookie the API removes is not in the page's request; a refusal overrides nothing", async () => {
  api.extraSetCookie = ["llmxt_pro=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"];
  const sent = `llmxt_pro=old; theme=dark; __Host-llmxt_pro=c`;
  const cookie = pageCookie(await gate()(request(sent)), sent);
  assert.equal(cookie.split("; ").find((part) => part.startsWith("llmxt_pro=")), undefined, cookie);
  assert.match(cookie, /^theme=dark; __Host-llmxt_pro=refreshed; __Host-llmxt_pass=ey/);
  api.mode = "free";
  const refused = await gate()(request(sent));
  assert.equal(outcome(refused), "redirect");
  assert.equal(refused.headers.get("x-middleware-override-headers"), null);
});

test("3. a pass for another site, or with no keys to check it, is left to the API", async () => {
  const foreign = signPass(key, claims("https://other.example", now()));
  const response = await gate()(request(`__Host-llmxt_pass=${foreign}`));
  assert.equal(response.headers.get("x-llmxt-decision"), "origin");
  const handMade = { entitlement: (query, options) => client().entitlement(query, options) };
  const noKeys = proMiddleware({ matcher: "/pro/:path*", redirectTo: "/pricing", client: handMade });
  const again = await noKeys(request(`__Host-llmxt_pass=${freshPass()}`));
  assert.equal(again.headers.get("x-llmxt-decision"), "origin");
  assert.deepEqual([api.calls, api.keyCalls], [2, 0]);
});

test("3. the site origin defaults to the request's", async () => {
  const middleware = proMiddleware({ matcher: "/pro/:path*", redirectTo: "/pricing", client: client(), keys });
  const ours = await middleware(request(`__Host-llmxt_pass=${freshPass()}`));
  assert.equal(ours.headers.get("x-llmxt-decision"), "pass");
  const elsewhere = await middleware(new NextRequest("https://staging.example/pro", { headers: { cookie: `__Host-llmxt_pass=${freshPass()}` } }));
  assert.equal(elsewhere.headers.get("x-llmxt-decision"), "origin");
});

test("4. the API fails and a Pro pass is within its stale window: through, decision stale", async (t) => {
  quiet(t);
  api.mode = "down";
  const response = await gate()(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`));
  assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision")], ["next", "stale"]);
  assert.equal(api.calls, 1);
});

test("4. a slow API is given up on after timeoutMs", async (t) => {
  quiet(t);
  api.mode = "slow";
  const started = performance.now();
  const response = await gate({ timeoutMs: 200 })(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`));
  const took = performance.now() - started;
  assert.equal(response.headers.get("x-llmxt-decision"), "stale");
  assert.ok(took >= 150 && took < 1000, `took ${took} ms`);
});

test("4. a 5xx from the API counts as a failure: a stale Pro pass lets through", async (t) => {
  quiet(t);
  for (const status of [500, 503, 504]) {
    api.mode = status;
    const response = await gate()(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`));
    assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision")], ["next", "stale"], String(status));
  }
});

test("6. any other non-2xx (400, 401, 403, 404, 3xx) is a refusal: redirect, not the stale pass or the 503 page", async (t) => {
  quiet(t);
  for (const status of [301, 400, 401, 403, 404]) {
    api.mode = status;
    for (const cookie of [`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`, "__Host-llmxt_pro=c"]) {
      const response = await gate()(request(cookie));
      assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision")], ["redirect", "none"], `${status} ${cookie}`);
      assert.equal(new URL(response.headers.get("location")).pathname, "/pricing");
    }
  }
  assert.equal(api.calls, 10);
});

test("5. the API fails, no usable pass, a Pro cookie: 503 'could not check', never 'you need Pro'", async (t) => {
  quiet(t);
  api.mode = "down";
  const expired = signPass(key, claims(SITE, now() - 200_000));
  for (const cookie of ["__Host-llmxt_pro=c", `llmxt_pro=old; __Host-llmxt_pass=${expired}`, `__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass({ pro: false })}`]) {
    const response = await gate()(request(cookie));
    assert.equal(response.status, 503, cookie);
    assert.equal(response.headers.get("x-llmxt-decision"), "unavailable");
    assert.equal(response.headers.get("cache-control"), "private, no-store");
    const body = await response.text();
    assert.match(body, /could not check/i);
    assert.doesNotMatch(body, /pro\b|upgrade|buy|pricing|subscribe/i);
  }
  const rewrite = await gate({ unavailableTo: "/status/check-failed" })(request("__Host-llmxt_pro=c"));
  assert.equal(outcome(rewrite), "rewrite");
  assert.equal(new URL(rewrite.headers.get("x-middleware-rewrite")).pathname, "/status/check-failed");
  assert.equal(rewrite.headers.get("x-llmxt-decision"), "unavailable");
});

test("5. an API that is not there at all counts as unavailable too", async (t) => {
  quiet(t);
  const gone = createClient({ apiUrl: "http://127.0.0.1:9", hmacSecret });
  const response = await gate({ client: gone })(request("__Host-llmxt_pro=c"));
  assert.equal(response.headers.get("x-llmxt-decision"), "unavailable");
});

test("6. the API fails, no usable pass and no Pro cookie: redirect, decision none", async (t) => {
  quiet(t);
  api.mode = "down";
  const response = await gate()(request(`__Host-llmxt_pass=${signPass(makeKey(), claims(SITE))}`));
  assert.deepEqual([outcome(response), response.headers.get("x-llmxt-decision")], ["redirect", "none"]);
  assert.equal(api.calls, 1);
});

test("getEntitlement: a fresh pass answers without a call; no credential answers without one", async () => {
  const options = { client: client(), keys, siteUrl: SITE };
  const answer = await getEntitlement(request(`__Host-llmxt_pass=${freshPass()}`), options);
  assert.equal(answer.pro, true);
  assert.equal(answer.source, "pass");
  assert.deepEqual(answer.billing, { state: "active" });
  assert.deepEqual(answer.setCookie, []);
  const anonymous = await getEntitlement(new Headers({ cookie: "theme=dark" }), options);
  assert.deepEqual([anonymous.pro, anonymous.source], [false, "cookie"]);
  assert.equal(api.calls, 0);
  const headersOnly = new Headers({ host: "shop.example", "x-forwarded-proto": "https", cookie: `__Host-llmxt_pass=${freshPass()}` });
  assert.equal((await getEntitlement(headersOnly, { client: client(), keys })).source, "pass", "origin from host headers");
  assert.equal(api.calls, 0);
});

test("getEntitlement: otherwise the API answers (with its pass); if it fails, a stale Pro pass answers, else it throws", async (t) => {
  quiet(t);
  const options = { client: client(), keys, siteUrl: SITE };
  const answer = await getEntitlement(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`), options);
  assert.equal(answer.source, "database");
  assert.match(answer.pass, /^ey[\w-]+\.[\w-]+\.[\w-]+$/, "the answer's pass is exposed");
  assert.equal(answer.setCookie.length, 2);
  assert.equal(api.calls, 1);
  assert.equal((await getEntitlement(request("__Host-llmxt_pro=c"), client())).source, "database", "a client as second argument still works");
  api.mode = "down";
  const stale = await getEntitlement(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`), options);
  assert.deepEqual([stale.pro, stale.source], [true, "pass"]);
  await assert.rejects(getEntitlement(request("__Host-llmxt_pro=c"), options), { name: "EntitlementError", kind: "status", status: 502 });
  // An API that answered with a refusal (a wrong secret's 401, a 403) is not unavailable: the
  // stale pass does not stand in, as in the middleware.
  for (const status of [400, 401, 403]) {
    api.mode = status;
    await assert.rejects(
      getEntitlement(request(`__Host-llmxt_pro=c; __Host-llmxt_pass=${stalePass()}`), options),
      { name: "EntitlementError", kind: "status", status },
    );
  }
});
