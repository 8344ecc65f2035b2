// The buyer's journey in a real headless Chromium, against local-api (the real handlers)
// and DynamoDB Local. Needs LLMXT_TEST_DYNAMODB_ENDPOINT and the debug binaries
// (scripts/test.sh provides both).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { root, bin, freePort, waitForServer, deliverEvent } from "./lib.mjs";
const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
const sesEndpoint = process.env.LLMXT_TEST_SES_ENDPOINT;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const suffix = `${process.pid}-${Date.now()}`;
let server;
let dodo;
let dodoUrl;
let browser;
let site;
let env;

const deliverPayment = (paymentId, email) =>
  deliverEvent({ url: `${site}/api/webhooks/dodo`, env }, "payment.succeeded.cli-generator.json", paymentId, email);

before(async () => {
  assert.ok(endpoint, "LLMXT_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test.sh");
  assert.ok(sesEndpoint, "LLMXT_TEST_SES_ENDPOINT is not set: run the tests with scripts/test.sh (or scripts/ses-local.sh start)");
  for (const name of ["local-api", "llmxt-admin", "dodo-local"]) {
    assert.ok(existsSync(bin(name)), `${bin(name)} is missing: run cargo build -p local-api -p llmxt-admin -p llmxt-testkit --bins (scripts/test.sh does)`);
  }
  assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`);
  const port = await freePort();
  const dodoPort = await freePort();
  site = `http://localhost:${port}`;
  dodoUrl = `http://127.0.0.1:${dodoPort}`;
  env = {
    ...process.env,
    PORT: String(port),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `e2e-entitlements-${suffix}`,
    PAYMENTS_TABLE: `e2e-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "e2e-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: "e2e-hmac-secret-0123456789abcdef012345",
    REQUIRE_HMAC_SIGNATURE: "false",
    // A loaded machine's DynamoDB Local can be slower than the default 400 ms; an answer from
    // the cookie alone would skip the refresh these journeys check.
    ENTITLEMENT_DB_BUDGET_MS: "900",
    NEXT_PUBLIC_SITE_URL: site,
    PRODUCT_PLANS: "pdt_test=professional,pdt_test_enterprise=enterprise,pdt_test_sub=professional",
    PLAN_FEATURES: "professional=export,api;enterprise=export,api,sso",
    PLAN_NAMES: "professional=Pro,enterprise=Business",
    DODO_LOCAL_SUBSCRIPTION_PRODUCTS: "pdt_test_enterprise,pdt_test_sub",
    DODO_LOCAL_PRICES: "pdt_test_sub=1000,pdt_test_enterprise=3000",
    RESTORE_EMAIL_FROM: "access@example.com",
    DODO_PAYMENTS_API_KEY: "e2e-dodo-api-key",
    DODO_PAYMENTS_BASE_URL: dodoUrl,
    DODO_LOCAL_PORT: String(dodoPort),
    DODO_LOCAL_WEBHOOK_URL: `http://127.0.0.1:${port}/api/webhooks/dodo`,
    SES_ENDPOINT: sesEndpoint,
    RUST_LOG: "warn",
  };
  execFileSync(bin("llmxt-admin"), ["create-tables"], { env, stdio: "inherit" });
  dodo = spawn(bin("dodo-local"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  server = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitForServer(`${site}/`, "local-api");
  await waitForServer(`${dodoUrl}/`, "dodo-local");
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  for (const child of [server, dodo]) {
    if (child && child.exitCode === null) {
      child.kill("SIGINT");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  }
});

async function proStatus(page) {
  const status = page.locator("#status");
  await status.filter({ hasNotText: "checking" }).waitFor();
  return status.textContent();
}

// The same delivery, sent by the documented command a developer uses.
function sendWithScript(paymentId, email) {
  const output = execFileSync(
    join(root, "scripts", "send-webhook.sh"),
    ["payment.succeeded", "--email", email, "--payment-id", paymentId, "--url", `${site}/api/webhooks/dodo`],
    { env, cwd: root },
  ).toString();
  assert.match(output, /"outcome":"processed"/);
  assert.match(output, /HTTP 200/);
}

test("paid buyer comes back, gets an HttpOnly cookie, and the page says Pro", async () => {
  sendWithScript("pay_e2e_paid", "buyer1@example.com");
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/success?payment_id=pay_e2e_paid&status=succeeded`);
  assert.equal(new URL(page.url()).search, "?upgrade=success");
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === "__Host-llmxt_pro");
  assert.ok(cookie, "the cookie is set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.path, "/");
  assert.equal(await page.evaluate(() => document.cookie.includes("llmxt_pro")), false, "invisible to page JavaScript");
  assert.equal(await proStatus(page), "Pro (professional)");
  await context.close();
});

test("the pending page completes by itself once the webhook lands", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/success?payment_id=pay_e2e_late&status=succeeded`);
  assert.match(await page.textContent("h1"), /Confirming your payment/);
  await deliverPayment("pay_e2e_late", "buyer2@example.com");
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  assert.equal(await proStatus(page), "Pro (professional)");
  await context.close();
});

test("replaying the success URL in another browser gives no Pro", async () => {
  await deliverPayment("pay_e2e_replay", "buyer3@example.com");
  const first = await browser.newContext();
  const firstPage = await first.newPage();
  await firstPage.goto(`${site}/upgrade/success?payment_id=pay_e2e_replay&status=succeeded`);
  assert.equal(await proStatus(firstPage), "Pro (professional)");
  const second = await browser.newContext();
  const page = await second.newPage();
  await page.goto(`${site}/upgrade/success?payment_id=pay_e2e_replay&status=succeeded`);
  assert.match(await page.textContent("h1"), /already used/);
  assert.equal(await page.getAttribute("#sign-in", "href"), `${site}/upgrade/restore`);
  assert.equal((await second.cookies()).some((c) => c.name === "__Host-llmxt_pro"), false);
  await page.goto(`${site}/`);
  assert.equal(await proStatus(page), "Not Pro");
  await first.close();
  await second.close();
});

// An HS256 JWT signed here, independently of the Rust code, as jsonwebtoken expects it.
function jwt(claims, key) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

test("a three-day-old cookie is refreshed to a full lifetime with the same attributes", async () => {
  await deliverPayment("pay_e2e_refresh", "buyer4@example.com");
  const now = Math.floor(Date.now() / 1000);
  const old = jwt(
    { sub: "buyer4@example.com", plan: "professional", iat: now - 3 * 86400, exp: now + 27 * 86400, aud: site, auth_time: now - 3 * 86400 },
    env.ENTITLEMENT_SECRET,
  );
  const context = await browser.newContext();
  await context.addCookies([{ name: "__Host-llmxt_pro", value: old, domain: "localhost", path: "/", httpOnly: true, secure: true, sameSite: "Lax" }]);
  const page = await context.newPage();
  await page.goto(`${site}/`);
  assert.equal(await proStatus(page), "Pro (professional)");
  const cookie = (await context.cookies()).find((c) => c.name === "__Host-llmxt_pro");
  assert.ok(cookie && cookie.value !== old, "a fresh cookie replaced the old one");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Lax");
  assert.equal(cookie.path, "/");
  const lifetime = cookie.expires - now;
  assert.ok(Math.abs(lifetime - 30 * 86400) < 120, `expires in a full lifetime (got ${lifetime} s)`);
  await context.close();
});

test("a buyer restores Pro on a new device with the emailed link", async () => {
  const email = `restore-${suffix}@example.com`;
  await deliverPayment("pay_e2e_restore", email);
  await restoreOnNewDevice(email);
});

test("a buyer imported from a previous system restores Pro with the sign-in link", async () => {
  const email = `imported-${suffix}@example.com`;
  const file = join(tmpdir(), `llmxt-import-${suffix}.csv`);
  writeFileSync(file, `email,plan,expires_at,provider,payment_id,note\n${email},professional,,stripe,ch_e2e_${suffix},old shop\n`);
  const output = execFileSync(bin("llmxt-admin"), ["import", file], { env }).toString();
  assert.match(output, /1 granted/);
  await restoreOnNewDevice(email);
});

/** Asks for the sign-in link for `email` in a fresh browser, opens it, signs in: Pro. */
async function restoreOnNewDevice(email) {
  const device = await browser.newContext();
  const page = await device.newPage();
  await page.goto(`${site}/`);
  assert.equal(await proStatus(page), "Not Pro");
  await page.click("#restore");
  await page.fill("#email", email);
  await page.click("button[type=submit]");
  assert.match(await page.textContent("#notice"), /If a purchase exists for that address/);
  const store = await (await fetch(`${sesEndpoint}/store`)).json();
  const mail = store.emails.filter((m) => m.destination.to.includes(email)).at(-1);
  assert.ok(mail, "the sign-in email was sent");
  const link = mail.body.text.match(/https?:\/\/\S+\/upgrade\/restore\?token=\S+/)[0];
  assert.ok(link.startsWith(`${site}/upgrade/restore?token=`), link);
  await page.goto(link);
  assert.equal((await device.cookies()).some((c) => c.name === "__Host-llmxt_pro"), false, "opening the link alone changes nothing");
  await page.click("#sign-in");
  await page.waitForURL(`${site}/?upgrade=restored`);
  assert.equal(await proStatus(page), "Pro (professional)");
  const cookie = (await device.cookies()).find((c) => c.name === "__Host-llmxt_pro");
  assert.equal(cookie.httpOnly, true);
  // The same link opened again in this browser: signed in, not "invalid or expired".
  await page.goto(link);
  assert.equal(await page.textContent("h1"), "You're signed in");
  assert.equal(await page.locator("#alert").count(), 0);
  await page.click("#home");
  await page.waitForURL(`${site}/`);
  assert.equal(await proStatus(page), "Pro (professional)");
  await device.close();
}

async function buyFromHome(context, email, button) {
  const page = await context.newPage();
  await page.goto(`${site}/`);
  assert.equal(await proStatus(page), "Not Pro");
  await page.click("#buy");
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  await page.fill("input[name=email]", email);
  await page.click(`button[value=${button}]`);
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  assert.equal(await proStatus(page), "Pro (professional)");
  return page;
}

test("a newcomer clicks home → Buy Pro → Pay and is Pro, then manages billing", async () => {
  const context = await browser.newContext();
  const page = await buyFromHome(context, `journey-${suffix}@example.com`, "send");
  const checkoutCookie = (await context.cookies()).find((c) => c.name === "__Host-llmxt_checkout");
  assert.equal(checkoutCookie, undefined, "the checkout binding is spent once the purchase is redeemed");
  // The success link proved the purchase, not the mailbox: Manage billing offers the sign-in
  // link instead of Dodo's portal.
  await page.goto(`${site}/`);
  await page.click("#billing");
  await page.waitForURL(`${site}/upgrade/billing`);
  assert.ok(await page.locator("#sign-in").count(), "the sign-in link is offered");
  // Signed in as the account (an operator-minted account cookie stands in for the emailed
  // link), the same click opens the portal.
  await signInAsAccount(context, `journey-${suffix}@example.com`);
  await page.goto(`${site}/`);
  await page.click("#billing");
  await page.waitForURL(`${dodoUrl}/portal/**`);
  assert.match(page.url(), /\/portal\/cus_journey-/);
  await page.click("#back");
  await page.waitForURL(`${site}/`);
  await context.close();
});

/** Adds an account cookie for `email` (printed by `llmxt-admin mint-cookie`) to `context`. */
async function signInAsAccount(context, email) {
  const minted = execFileSync(bin("llmxt-admin"), ["mint-cookie", email], { env }).toString().trim();
  const [name, value] = [minted.slice(0, minted.indexOf("=")), minted.slice(minted.indexOf("=") + 1)];
  await context.addCookies([{ name, value, domain: "localhost", path: "/", httpOnly: true, secure: true, sameSite: "Lax" }]);
}

test("when the webhook is lost, the success page confirms the payment through the API", async () => {
  const context = await browser.newContext();
  await buyFromHome(context, `lost-${suffix}@example.com`, "lose");
  await context.close();
});

test("a subscriber clicks Change plan → Pay $20.00 and switch and is on the new plan", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/checkout?product=pdt_test_sub`);
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  await page.fill("input[name=email]", `plan-${suffix}@example.com`);
  await page.click("button[value=send]");
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  assert.equal(await proStatus(page), "Pro (professional)");
  assert.match(await page.textContent("#details"), /features: api, export; billing: active, renews /);
  await page.click("#change-plan");
  await page.waitForURL(`${site}/upgrade/plan?product=pdt_test_enterprise`);
  assert.equal(await page.textContent("#current-plan"), "Pro");
  assert.equal(await page.textContent("#new-plan"), "Business");
  assert.equal(await page.textContent("#charged-now"), "$20.00");
  assert.match(await page.textContent("#recurring"), /^\$30\.00 a month from \d{1,2} [A-Z][a-z]+ \d{4}$/);
  assert.match(await page.getAttribute("#renews", "datetime"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(await page.textContent("#card"), "Visa ending in 4242");
  assert.equal(await page.textContent("#confirm"), "Pay $20.00 and switch");
  // Cancel goes back to the site and changes nothing.
  await page.click("#cancel");
  await page.waitForURL(`${site}/`);
  assert.equal(await proStatus(page), "Pro (professional)");
  await page.goBack();
  await page.waitForURL(`${site}/upgrade/plan?product=pdt_test_enterprise`);
  await page.click("#confirm");
  await page.waitForURL(`${site}/?upgrade=plan_changed`, { timeout: 20_000 });
  assert.equal(await proStatus(page), "Pro (enterprise)");
  assert.match(await page.textContent("#details"), /features: api, export, sso/);
  await context.close();
});

test("a declined card says so and Try again opens a new checkout of the same product", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/checkout?product=pdt_test`);
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  await page.fill("input[name=email]", `declined-${suffix}@example.com`);
  await page.click("button[value=decline]");
  await page.waitForURL(/\/upgrade\/success\?payment_id=.*status=failed/);
  assert.equal(await page.textContent("h1"), "Your payment did not go through");
  assert.equal(await page.textContent("#try-again"), "Try again");
  await page.click("#try-again");
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  assert.match(await page.textContent("code"), /^pdt_test$/);
  await page.fill("input[name=email]", `declined-${suffix}@example.com`);
  await page.click("button[value=send]");
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  assert.equal(await proStatus(page), "Pro (professional)");
  await context.close();
});

test("a subscriber cancels in the portal and keeps Pro until the paid period ends", async () => {
  const email = `cancel-${suffix}@example.com`;
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${site}/upgrade/checkout?product=pdt_test_sub`);
  await page.waitForURL(`${dodoUrl}/checkout/**`);
  await page.fill("input[name=email]", email);
  await page.click("button[value=send]");
  await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  await proStatus(page);
  assert.match(await page.textContent("#details"), /billing: active, renews /);
  // The portal is for a proven mailbox: sign in as the account.
  await signInAsAccount(context, email);
  await page.goto(`${site}/`);
  await page.click("#billing");
  await page.waitForURL(`${dodoUrl}/portal/**`);
  const renews = (await page.textContent(".state")).match(/renews (\S+)/)[1];
  await page.click("text=Cancel at the end of the period");
  await page.waitForURL(`${dodoUrl}/portal/**`);
  assert.match(await page.textContent(".state"), /^cancelled, ends /);
  await page.click("#back");
  await page.waitForURL(`${site}/`);
  assert.equal(await proStatus(page), "Pro (professional)");
  const details = await page.textContent("#details");
  assert.match(details, /billing: cancelled, ends /);
  assert.ok(details.includes(`ends ${renews}`), `access ends when the paid period does (${renews}): ${details}`);
  // Resuming before the end renews again.
  await page.click("#billing");
  await page.waitForURL(`${dodoUrl}/portal/**`);
  await page.click("text=Resume");
  await page.waitForURL(`${dodoUrl}/portal/**`);
  await page.click("#back");
  await page.waitForURL(`${site}/`);
  await proStatus(page);
  assert.match(await page.textContent("#details"), /billing: active, renews /);
  await context.close();
});
