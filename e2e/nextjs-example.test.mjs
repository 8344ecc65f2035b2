// The example Next.js site (examples/nextjs, a production build) in a real headless Chromium,
// in front of local-api, dodo-local, DynamoDB Local and the SES emulator: the middleware of
// @llmxt/pro gates /pro, a purchase opens it, a refresh reaches the browser through the
// middleware, a refund closes it again, and the emailed sign-in link works through the rewrites.
// The site's own parts: notices after ?upgrade=…, a page margin on a phone, one host (a visit on
// another host is sent to NEXT_PUBLIC_SITE_URL's), its own page when the API is down, and
// `next start` (package.json's script) on loopback only. With the API's edge pass on
// (PASS_SIGNING_KEY): most page views decide without a call, a refund still ends access within
// the pass's TTL, a stale pass stands in while the API is down, and a retired key's passes
// verify while it is published.
// Needs LLMXT_TEST_DYNAMODB_ENDPOINT, LLMXT_TEST_SES_ENDPOINT, the debug binaries and
// `npm ci` in clients/js and examples/nextjs (scripts/test.sh provides all of them).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash, createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { root, bin, freePort, portIsFree, waitForServer, deliverEvent, accountToken, stop, listenAddresses } from "./lib.mjs";

const example = join(root, "examples", "nextjs");
const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
const sesEndpoint = process.env.LLMXT_TEST_SES_ENDPOINT;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const suffix = `${process.pid}-${Date.now()}`;
// Next.js fixes rewrites at build time: local-api gets this port when it is free, so the
// cached build can be reused; otherwise another port and a fresh build.
const preferredApiPort = 39417;
let api;
let dodo;
let next;
let browser;
let site;
let sitePort;
let dodoUrl;
let env;

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

// Builds the example once per change of its lock file, its sources, the installed package or
// the API origin; the key lives under .cache/.
function buildExample(apiOrigin) {
  const inputs = [
    ...["package.json", "package-lock.json", "next.config.mjs", "middleware.ts", "tsconfig.json"].map((f) => join(example, f)),
    ...filesUnder(join(example, "app")),
    ...filesUnder(join(example, "node_modules", "@llmxt", "pro")),
  ].sort();
  const hash = createHash("sha256").update(apiOrigin);
  for (const file of inputs) hash.update(relative(root, file)).update("\0").update(readFileSync(file)).update("\0");
  const key = hash.digest("hex");
  const stamp = join(root, ".cache", "nextjs-example", "build-key");
  if (existsSync(join(example, ".next", "BUILD_ID")) && existsSync(stamp) && readFileSync(stamp, "utf8") === key) {
    console.log("# examples/nextjs: reusing the cached production build");
    return;
  }
  const started = Date.now();
  // NEXT_PUBLIC_SITE_URL is left out: `next build` would write it into the code; the site
  // reads it when it runs (the port changes from run to run).
  const { NEXT_PUBLIC_SITE_URL: _, ...buildEnv } = process.env;
  execFileSync(process.execPath, ["node_modules/next/dist/bin/next", "build"], {
    cwd: example,
    env: { ...buildEnv, LLMXT_API_ORIGIN: apiOrigin, NEXT_TELEMETRY_DISABLED: "1" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  mkdirSync(join(root, ".cache", "nextjs-example"), { recursive: true });
  writeFileSync(stamp, key);
  console.log(`# examples/nextjs: production build took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

before(async () => {
  assert.ok(endpoint, "LLMXT_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test.sh");
  assert.ok(sesEndpoint, "LLMXT_TEST_SES_ENDPOINT is not set: run the tests with scripts/test.sh (or scripts/ses-local.sh start)");
  for (const name of ["local-api", "llmxt-admin", "dodo-local"]) {
    assert.ok(existsSync(bin(name)), `${bin(name)} is missing: run cargo build -p local-api -p llmxt-admin -p llmxt-testkit --bins (scripts/test.sh does)`);
  }
  assert.ok(
    existsSync(join(example, "node_modules", "next")) && existsSync(join(example, "node_modules", "@llmxt", "pro", "dist", "next.js")),
    "examples/nextjs is not installed: (cd clients/js && npm ci) && (cd examples/nextjs && npm ci) (scripts/test.sh does)",
  );
  assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`);

  const apiPort = (await portIsFree(preferredApiPort)) ? preferredApiPort : await freePort();
  sitePort = await freePort();
  const dodoPort = await freePort();
  const apiOrigin = `http://127.0.0.1:${apiPort}`;
  site = `http://localhost:${sitePort}`;
  dodoUrl = `http://127.0.0.1:${dodoPort}`;
  buildExample(apiOrigin);

  env = {
    ...process.env,
    PORT: String(apiPort),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `site-entitlements-${suffix}`,
    PAYMENTS_TABLE: `site-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "site-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: "site-hmac-secret-0123456789abcdef0123456",
    // Every check the site makes must be signed by the package.
    REQUIRE_HMAC_SIGNATURE: "true",
    // A loaded machine's DynamoDB Local can be slower than the default 400 ms.
    ENTITLEMENT_DB_BUDGET_MS: "900",
    NEXT_PUBLIC_SITE_URL: site,
    PRODUCT_PLANS: "pdt_test=professional",
    RESTORE_EMAIL_FROM: "access@example.com",
    DODO_PAYMENTS_API_KEY: "site-dodo-api-key",
    DODO_PAYMENTS_BASE_URL: dodoUrl,
    DODO_LOCAL_PORT: String(dodoPort),
    DODO_LOCAL_WEBHOOK_URL: `${apiOrigin}/api/webhooks/dodo`,
    SES_ENDPOINT: sesEndpoint,
    RUST_LOG: "warn",
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "inherit" });
  dodo = spawn(bin("dodo-local"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  api = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  next = startSite(sitePort, site);
  await waitForServer(`${apiOrigin}/`, "local-api");
  await waitForServer(`${dodoUrl}/`, "dodo-local");
  await waitForServer(`${site}/pro`, "the example site (next start)", 30);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

/**
 * The example as `npm start` runs it (package.json's start script, on `port`), for the site
 * at `siteUrl`.
 */
function startSite(port, siteUrl) {
  const [command, ...args] = JSON.parse(readFileSync(join(example, "package.json"), "utf8")).scripts.start.split(/\s+/);
  assert.equal(command, "next");
  return spawn(process.execPath, ["node_modules/next/dist/bin/next", ...args, "-p", String(port)], {
    cwd: example,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      NEXT_PUBLIC_SITE_URL: siteUrl,
      LLMXT_API_URL: site,
      HMAC_SECRET: env.HMAC_SECRET,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
}

after(async () => {
  await browser?.close();
  for (const child of [next, api, dodo]) await stop(child);
});

const deliver = (fixtureName, paymentId, email) =>
  deliverEvent({ url: `${site}/api/webhooks/dodo`, env }, fixtureName, paymentId, email);
const proCookie = (cookies) => cookies.find((c) => /^(__Host-)?llmxt_pro$/.test(c.name));

async function expectSentHome(page) {
  await page.goto(`${site}/pro`);
  assert.equal(page.url(), `${site}/?upgrade=required`);
  assert.equal(await page.textContent("#notice"), "That page needs Pro.");
  assert.equal(await page.locator("#pro-content").count(), 0);
}

async function expectPro(page) {
  await page.goto(`${site}/pro`);
  assert.equal(page.url(), `${site}/pro`);
  assert.match(await page.textContent("#pro-content"), /Welcome to the Pro area \(professional\)/);
}

test("/pro sends a visitor without Pro home, with or without a forged cookie", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await expectSentHome(page);
  assert.equal(await page.textContent("#status"), "Not Pro");
  await context.addCookies([{ name: "llmxt_pro", value: "forged.token.value", url: site, httpOnly: true, secure: true, sameSite: "Lax" }]);
  await expectSentHome(page);
  await context.close();
});

test("Buy Pro → Pay on the hosted checkout → /pro shows the Pro content", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/`);
  assert.equal(await page.textContent("#status"), "Not Pro");
  assert.equal(await page.getAttribute("#buy", "href"), `${site}/upgrade/checkout?product=pdt_test`);
  await page.click("#buy");
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  await page.fill("input[name=email]", `site-buyer-${suffix}@example.com`);
  await page.click("button[value=send]");
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  assert.equal(await page.getByRole("status").textContent(), "Thank you: Pro is yours on this browser.");
  assert.equal(await page.textContent("#status"), "Pro (professional)");
  assert.ok(proCookie(await context.cookies())?.httpOnly, "the API's cookie came through the site's rewrite");
  await expectPro(page);
  // The success link proved the purchase, not the mailbox: Manage billing offers the sign-in
  // link rather than Dodo's portal (buyer-journey.test.mjs signs in and opens it).
  await page.goto(`${site}/`);
  await page.click("#billing");
  await page.waitForURL(`${site}/upgrade/billing`);
  assert.ok(await page.locator("#sign-in").count(), "the sign-in link is offered");
  await context.close();
});

test("a three-day-old cookie is refreshed through the middleware and the browser keeps the new one", async () => {
  const email = `site-refresh-${suffix}@example.com`;
  await deliver("payment.succeeded.cli-generator.json", `pay_site_refresh_${process.pid}`, email);
  const old = accountToken({ email, aud: site, key: env.ENTITLEMENT_SECRET, daysAgo: 3 });
  const context = await browser.newContext();
  await context.addCookies([{ name: "llmxt_pro", value: old, url: site, httpOnly: true, secure: true, sameSite: "Lax" }]);
  const page = await context.newPage();
  const now = Math.floor(Date.now() / 1000);
  await expectPro(page);
  const fresh = (await context.cookies()).filter((c) => /^(__Host-)?llmxt_pro$/.test(c.name) && c.value !== old);
  assert.equal(fresh.length, 1, `one fresh cookie: ${JSON.stringify(await context.cookies())}`);
  const [cookie] = fresh;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.path, "/");
  const lifetime = cookie.expires - now;
  assert.ok(Math.abs(lifetime - 30 * 86400) < 120, `expires in a full lifetime (got ${lifetime} s)`);
  await expectPro(page);
  await context.close();
});

test("a refunded buyer is sent away from /pro", async () => {
  const email = `site-refund-${suffix}@example.com`;
  const paymentId = `pay_site_refund_${process.pid}`;
  await deliver("payment.succeeded.cli-generator.json", paymentId, email);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/success?payment_id=${paymentId}&status=succeeded`);
  assert.equal(page.url(), `${site}/?upgrade=success`);
  await expectPro(page);
  await deliver("refund.succeeded.cli-generator.json", paymentId, email);
  await expectSentHome(page);
  assert.equal(await page.textContent("#status"), "Not Pro");
  await context.close();
});

test("Sign in on this device: the emailed link, through the site's rewrites, opens /pro", async () => {
  const email = `site-restore-${suffix}@example.com`;
  await deliver("payment.succeeded.cli-generator.json", `pay_site_restore_${process.pid}`, email);
  const context = await browser.newContext();
  const page = await context.newPage();
  await expectSentHome(page);
  await page.click("#sign-in");
  await page.fill("#email", email);
  await page.click("button[type=submit]");
  assert.match(await page.textContent("#notice"), /If a purchase exists for that address/);
  const store = await (await fetch(`${sesEndpoint}/store`)).json();
  const mail = store.emails.filter((m) => m.destination.to.includes(email)).at(-1);
  assert.ok(mail, "the sign-in email was sent");
  const link = mail.body.text.match(/https?:\/\/\S+\/upgrade\/restore\?token=\S+/)[0];
  assert.ok(link.startsWith(`${site}/upgrade/restore?token=`), link);
  await page.goto(link);
  await page.click("#sign-in");
  await page.waitForURL(`${site}/?upgrade=restored`);
  assert.equal(await page.textContent("#status"), "Pro (professional)");
  await expectPro(page);
  await context.close();
});

test("notices after ?upgrade=…: each in the site's words, as a status; unknown values show none", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const expected = {
    success: /^Thank you: Pro is yours/,
    restored: /^You are signed in/,
    required: /^That page needs Pro/,
    plan_changed: /^Your plan has changed/,
    plan_scheduled: /^Your plan change is booked: it starts on your next billing date/,
  };
  for (const [value, text] of Object.entries(expected)) {
    await page.goto(`${site}/?upgrade=${value}`);
    const notices = page.getByRole("status");
    assert.equal(await notices.count(), 1, value);
    assert.match(await notices.textContent(), text);
  }
  for (const value of ["nonsense", "constructor", "__proto__"]) {
    const response = await page.goto(`${site}/?upgrade=${value}`);
    assert.equal(response.status(), 200, value);
    assert.equal(await page.getByRole("status").count(), 0, value);
  }
  await context.close();
});

test("on a 390 px phone the page keeps a margin and nothing scrolls sideways", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(`${site}/?upgrade=success`);
  const box = await page.locator("main").boundingBox();
  assert.ok(box.x >= 12, `main starts ${box.x} px from the left edge`);
  assert.ok(390 - (box.x + box.width) >= 12, `main ends ${390 - (box.x + box.width)} px from the right edge`);
  const notice = await page.getByRole("status").boundingBox();
  assert.ok(notice.x >= 12, `the notice starts ${notice.x} px from the edge`);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "the page scrolls sideways");
  await context.close();
});

test("next start (package.json) listens on 127.0.0.1 only", () => {
  assert.deepEqual(listenAddresses(sitePort), ["127.0.0.1"]);
});

test("a visit on another host is sent to NEXT_PUBLIC_SITE_URL's host first, path and query kept", async () => {
  const other = `http://127.0.0.1:${sitePort}`; // the same server, by its address
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${other}/?upgrade=success`);
  assert.equal(page.url(), `${site}/?upgrade=success`);
  assert.match(await page.getByRole("status").textContent(), /^Thank you/);
  // Before the Pro gate, the API routes and the rewrites; POST keeps its method; the target
  // never comes from the request.
  for (const [path, init] of [
    ["/pro", {}],
    ["/upgrade/billing", {}],
    ["/api/entitlement", {}],
    ["/upgrade/restore", { method: "POST", body: "email=a%40example.com", headers: { "content-type": "application/x-www-form-urlencoded" } }],
  ]) {
    const response = await fetch(`${other}${path}?x=1`, { ...init, redirect: "manual" });
    assert.equal(response.status, 307, path);
    assert.equal(response.headers.get("location"), `${site}${path}?x=1`, path);
  }
  const spoofed = await fetch(`${other}/`, { redirect: "manual", headers: { "x-forwarded-host": "evil.example" } });
  assert.equal(spoofed.headers.get("location"), `${site}/`);
  await context.close();

  // The reverse: a site whose URL is its address (127.0.0.1), opened as localhost. Next.js
  // would shorten a redirect to its own address into a loop, so a page moves the visitor on.
  const port = await freePort();
  const byAddress = `http://127.0.0.1:${port}`;
  const second = startSite(port, byAddress);
  try {
    await waitForServer(`${byAddress}/`, "the example site on 127.0.0.1", 30);
    const reverse = await browser.newContext();
    const page2 = await reverse.newPage();
    await page2.goto(`http://localhost:${port}/?upgrade=restored`);
    await page2.waitForURL(`${byAddress}/?upgrade=restored`);
    assert.match(await page2.getByRole("status").textContent(), /^You are signed in/);
    await reverse.close();
  } finally {
    await stop(second);
  }
});

test("with the API down, /upgrade/* shows the site's own page (502) with a way home", async () => {
  await stop(api);
  const context = await browser.newContext();
  // A visitor with a Pro cookie: without one, the home page decides "not Pro" with no call.
  const value = accountToken({ email: `site-down-${suffix}@example.com`, aud: site, key: env.ENTITLEMENT_SECRET, daysAgo: 0 });
  await context.addCookies([{ name: "llmxt_pro", value, url: site, httpOnly: true, secure: true, sameSite: "Lax" }]);
  const page = await context.newPage();
  try {
    for (const path of ["/upgrade/billing", "/upgrade/restore", "/upgrade/success?payment_id=pay_x&status=succeeded"]) {
      const response = await page.goto(`${site}${path}`);
      assert.equal(response.status(), 502, path);
      assert.equal(await page.locator("h1").textContent(), "Billing is unavailable right now", path);
      assert.doesNotMatch(await page.textContent("body"), /Internal Server Error/);
      assert.equal(await page.getAttribute("#again", "href"), path);
    }
    await page.goto(`${site}/`);
    await page.click("#billing");
    assert.equal(page.url(), `${site}/upgrade/billing`);
    await page.click("#home");
    assert.equal(page.url(), `${site}/`);
    assert.equal(await page.textContent("#status"), "Could not check Pro right now");
  } finally {
    await context.close();
    api = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
    await waitForServer(`http://127.0.0.1:${env.PORT}/`, "local-api (again)");
  }
});

// The edge pass. local-api runs again with a signing key and a retired key still published;
// its log counts the checks (one "entitlement by cookie" line each).
const passKeys = { current: generateKeyPairSync("ed25519"), retired: generateKeyPairSync("ed25519") };
let checks = 0;
let failedOpen = 0;

async function restartApi(extra) {
  await stop(api);
  api = spawn(bin("local-api"), [], {
    env: {
      ...env,
      RUST_LOG: "info",
      // The longest database budget: on a loaded machine a slower DynamoDB Local would make
      // answers fail open, and those carry no pass.
      ENTITLEMENT_DB_BUDGET_MS: "900",
      PASS_SIGNING_KEY: passKeys.current.privateKey.export({ type: "pkcs8", format: "pem" }),
      PASS_VERIFY_KEYS_PREVIOUS: passKeys.retired.publicKey.export({ type: "spki", format: "pem" }),
      ...extra,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // One line per check: answered by the database, or by the cookie when the database is slow.
  createInterface({ input: api.stdout }).on("line", (line) => {
    if (/entitlement by cookie|failing open on a valid cookie/.test(line)) checks += 1;
    if (/failing open on a valid cookie/.test(line)) failedOpen += 1;
  });
  await waitForServer(`http://127.0.0.1:${env.PORT}/`, "local-api (with passes)");
}

const passCookie = (cookies) => cookies.find((c) => c.name === "__Host-llmxt_pass");

/** Opens /pro; returns the middleware's decision, asserting the Pro content or the redirect. */
async function viewPro(page, { pro }) {
  const response = await page.goto(`${site}/pro`);
  if (pro) {
    assert.equal(page.url(), `${site}/pro`);
    assert.match(await page.textContent("#pro-content"), /Welcome to the Pro area \(professional\)/);
  }
  const first = response.request().redirectedFrom() ?? response.request();
  return (await first.response()).headers()["x-llmxt-decision"];
}

/** A browser holding a fresh account cookie of a buyer who paid `paymentId`. */
async function buyerContext(name) {
  const email = `site-${name}-${suffix}@example.com`;
  await deliver("payment.succeeded.cli-generator.json", `pay_site_${name}_${process.pid}`, email);
  const context = await browser.newContext();
  const value = accountToken({ email, aud: site, key: env.ENTITLEMENT_SECRET, daysAgo: 0 });
  await context.addCookies([{ name: "llmxt_pro", value, url: site, httpOnly: true, secure: true, sameSite: "Lax" }]);
  return { context, email, page: await context.newPage() };
}

test("with passes, 20 gated page views cost at most 2 checks at the API", async () => {
  await restartApi({});
  const { context, page } = await buyerContext("pass20");
  checks = 0;
  failedOpen = 0;
  const decisions = [await viewPro(page, { pro: true })];
  // The middleware's check brought a pass, and the page decided from it: no check of its own
  // (unless that answer failed open on a slow DynamoDB Local: such an answer carries no pass).
  await new Promise((r) => setTimeout(r, 300)); // local-api's log lines are read as they come
  if (!failedOpen) assert.equal(checks, 1, "the page's getEntitlement asked the API again");
  for (let i = 1; i < 20; i++) decisions.push(await viewPro(page, { pro: true }));
  assert.ok(checks <= 2, `${checks} checks for 20 views (${decisions.join(" ")})`);
  assert.equal(decisions[0], "origin");
  assert.deepEqual(decisions.slice(1), Array(19).fill("pass"));
  const pass = passCookie(await context.cookies());
  assert.ok(pass?.httpOnly && pass.secure && pass.sameSite === "Lax", JSON.stringify(pass));
  console.log(`# edge pass: ${checks} checks at local-api for 20 gated page views`);
  await context.close();
});

test("after a refund, /pro is refused within PASS_TTL_SECONDS + 5 s (TTL 5)", async () => {
  await restartApi({ PASS_TTL_SECONDS: "5" });
  const email = `site-pass-refund-${suffix}@example.com`;
  const paymentId = `pay_site_pass_refund_${process.pid}`;
  await deliver("payment.succeeded.cli-generator.json", paymentId, email);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/success?payment_id=${paymentId}&status=succeeded`);
  assert.ok(passCookie(await context.cookies()), "the success redirect set the pass");
  assert.equal(await viewPro(page, { pro: true }), "pass");
  await deliver("refund.succeeded.cli-generator.json", paymentId, email);
  const refunded = Date.now();
  let refusedAfter;
  const seen = [];
  while (Date.now() - refunded < 15_000) {
    seen.push(await viewPro(page, { pro: false }));
    if (page.url() === `${site}/?upgrade=required`) {
      refusedAfter = (Date.now() - refunded) / 1000;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // TTL 5 + the verifier's 5 s leeway, plus up to 1 s because both sides count whole seconds
  // (a pass is fresh through the whole second exp + leeway).
  assert.ok(refusedAfter !== undefined && refusedAfter <= 11, `refused after ${refusedAfter ?? "more than 15"} s: ${seen.join(" ")}`);
  console.log(`# edge pass: refund to refused in ${refusedAfter.toFixed(1)} s (TTL 5 s)`);
  await context.close();
});

test("a retired key's pass verifies while published; an unknown key's does not", async () => {
  const { x } = passKeys.retired.publicKey.export({ format: "jwk" });
  const kid = createHash("sha256").update(JSON.stringify({ crv: "Ed25519", kty: "OKP", x })).digest("base64url");
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: site, aud: site, sub: `site-retired-${suffix}@example.com`, iat: now, exp: now + 60, pro: true, plan: "professional", source: "database" };
  const forge = (privateKey, keyId) => {
    const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const input = `${part({ alg: "EdDSA", kid: keyId, typ: "llmxt-pass+jwt" })}.${part(claims)}`;
    return `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`;
  };
  const stranger = generateKeyPairSync("ed25519").privateKey;
  for (const [value, pro] of [
    [forge(passKeys.retired.privateKey, kid), true],
    [forge(stranger, kid), false],
    [forge(createPrivateKey(passKeys.retired.privateKey.export({ type: "pkcs8", format: "pem" })), "not-published"), false],
  ]) {
    const context = await browser.newContext();
    // A __Host- cookie is only accepted for an https URL; it is the same host-only cookie.
    await context.addCookies([{ name: "__Host-llmxt_pass", value, url: site.replace("http:", "https:"), httpOnly: true, secure: true, sameSite: "Lax" }]);
    const page = await context.newPage();
    const decision = await viewPro(page, { pro });
    if (pro) assert.equal(decision, "pass");
    else assert.equal(page.url(), `${site}/?upgrade=required`);
    await context.close();
  }
});

test("local-api stopped: a stale Pro pass is still served, a Pro cookie alone gets 503, no cookie the redirect", async () => {
  const { context, page } = await buyerContext("pass-stale");
  assert.equal(await viewPro(page, { pro: true }), "origin");
  const issued = passCookie(await context.cookies());
  assert.ok(issued, "a pass came with the check");
  // Past its TTL (5 s) and the verifier's leeway (5 s): no longer fresh, still within stale_until.
  await new Promise((r) => setTimeout(r, 11_000));
  const { context: cookieOnly, page: cookieOnlyPage } = await buyerContext("pass-none");
  await stop(api);
  try {
    assert.equal(await viewPro(page, { pro: true }), "stale");
    const response = await cookieOnlyPage.goto(`${site}/pro`);
    assert.equal(response.status(), 503);
    assert.equal(response.headers()["x-llmxt-decision"], "unavailable");
    assert.doesNotMatch(await cookieOnlyPage.textContent("body"), /need Pro|buy/i);
    const stranger = await browser.newContext();
    const strangerPage = await stranger.newPage();
    assert.equal(await viewPro(strangerPage, { pro: false }), "none");
    assert.equal(strangerPage.url(), `${site}/?upgrade=required`);
    await stranger.close();
  } finally {
    await context.close();
    await cookieOnly.close();
    await restartApi({});
  }
});
