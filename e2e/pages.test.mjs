// Every buyer page state in a real headless Chromium, against local-api (the real handlers)
// with branding configured, DynamoDB Local and the SES emulator: axe-core finds no violation at
// 1280 and 390 px in the light and the dark scheme; the brand name, the logo (allowed by the
// page's CSP) and the support contact are on every page; and each state is screenshotted for
// the gallery (docs/pages/ with scripts/gallery.sh, a temporary directory otherwise). Then the
// sign-in link is clicked in the SES emulator's own mailbox page.
// Needs LLMXT_TEST_DYNAMODB_ENDPOINT, LLMXT_TEST_SES_ENDPOINT and the debug binaries
// (scripts/test.sh provides all three).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync, statSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { bin, freePort, waitForServer, deliverEvent, stop } from "./lib.mjs";
const endpoint = process.env.LLMXT_TEST_DYNAMODB_ENDPOINT;
const sesEndpoint = process.env.LLMXT_TEST_SES_ENDPOINT;
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const galleryDir = process.env.LLMXT_GALLERY_DIR || mkdtempSync(join(tmpdir(), "llmxt-gallery-"));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const suffix = `${process.pid}-${Date.now()}`;

const BRAND = {
  name: "Acme Notes",
  color: "#ffb000", // too light for white text: the pages must derive a readable one
  logo: "https://brand.example/logo.svg",
  support: "help@acme.example",
};
const LOGO_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">' +
  '<rect width="32" height="32" rx="7" fill="#ffb000"/><path d="M9 23 16 8l7 15h-4l-3-7-3 7z" fill="#1b1f24"/></svg>';
const WIDTHS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];

let server;
let dodo;
let browser;
let site;
let env;

const admin = (...args) => execFileSync(bin("llmxt-admin"), args, { env }).toString().trim();

const deliverPayment = (paymentId, email, edit) =>
  deliverEvent({ url: `${site}/api/webhooks/dodo`, env }, "payment.succeeded.cli-generator.json", paymentId, email, edit);

// The cookie llmxt-admin mints for `email` ("NAME=VALUE"), as Playwright cookies. Chromium
// takes a __Host- cookie only from a secure URL; it still sends it to http://localhost.
function mintedCookie(email) {
  const [name, ...rest] = admin("mint-cookie", email).split("=");
  return [{ name, value: rest.join("="), url: site.replace(/^http:/, "https:"), httpOnly: true, secure: true, sameSite: "Lax" }];
}

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
  const dodoUrl = `http://127.0.0.1:${dodoPort}`;
  env = {
    ...process.env,
    PORT: String(port),
    AWS_REGION: "us-east-1",
    DYNAMODB_ENDPOINT: endpoint,
    ENTITLEMENTS_TABLE: `pages-entitlements-${suffix}`,
    PAYMENTS_TABLE: `pages-payments-${suffix}`,
    DODO_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ENTITLEMENT_SECRET: "pages-entitlement-secret-0123456789abcdef",
    HMAC_SECRET: "pages-hmac-secret-0123456789abcdef012345",
    REQUIRE_HMAC_SIGNATURE: "false",
    NEXT_PUBLIC_SITE_URL: site,
    PRODUCT_PLANS: "pdt_test=professional,pdt_sub=professional,pdt_ent=enterprise,pdt_down=professional",
    DODO_LOCAL_UNAVAILABLE_PRODUCTS: "pdt_down",
    PLAN_NAMES: "professional=Pro,enterprise=Business",
    DODO_LOCAL_SUBSCRIPTION_PRODUCTS: "pdt_sub,pdt_ent",
    DODO_LOCAL_PRICES: "pdt_sub=1000,pdt_ent=3000",
    RESTORE_EMAIL_FROM: "access@example.com",
    DODO_PAYMENTS_API_KEY: "pages-dodo-api-key",
    DODO_PAYMENTS_BASE_URL: dodoUrl,
    DODO_LOCAL_PORT: String(dodoPort),
    NEXT_PUBLIC_CHECKOUT_URL: `${site}/upgrade/checkout?product=pdt_test`,
    DODO_LOCAL_WEBHOOK_URL: `http://127.0.0.1:${port}/api/webhooks/dodo`,
    SES_ENDPOINT: sesEndpoint,
    BRAND_NAME: BRAND.name,
    BRAND_COLOR: BRAND.color,
    BRAND_LOGO_URL: BRAND.logo,
    SUPPORT_EMAIL: BRAND.support,
    RUST_LOG: "warn",
  };
  admin("create-tables");
  dodo = spawn(bin("dodo-local"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  server = spawn(bin("local-api"), [], { env, stdio: ["ignore", "inherit", "inherit"] });
  await waitForServer(`${site}/`, "local-api");
  await waitForServer(`${dodoUrl}/`, "dodo-local");
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--font-render-hinting=none"],
  });
});

after(async () => {
  await browser?.close();
  if (!process.env.LLMXT_GALLERY_DIR) rmSync(galleryDir, { recursive: true, force: true });
  for (const child of [server, dodo]) await stop(child);
});

// Each state: how to reach it (a URL; steps before it, which may return the URL; or steps on
// the page), and what it must show.
function states() {
  const token = "A".repeat(43);
  return [
    { name: "pending", path: "/upgrade/success?payment_id=pay_pages_pending&status=succeeded", h1: /Confirming your payment/, pending: true },
    { name: "pending-timeout", path: "/upgrade/success?payment_id=pay_pages_pending&attempt=30", h1: /not received the payment confirmation/ },
    { name: "link-used", path: "/upgrade/success?payment_id=pay_pages_used&status=succeeded", h1: /already used/ },
    { name: "other-browser", path: "/upgrade/success?payment_id=pay_pages_bound&status=succeeded", h1: /another browser/ },
    { name: "payment-failed", path: "/upgrade/success?payment_id=pay_pages_failed&status=failed", h1: /did not go through/, check: leadsWithTryAgain },
    { name: "payment-cancelled", path: "/upgrade/success?payment_id=pay_pages_cancelled&status=cancelled", h1: /The payment was cancelled/, check: leadsWithTryAgain },
    {
      name: "payment-refunded",
      path: "/upgrade/success?payment_id=pay_pages_refunded&status=succeeded",
      h1: /This payment was refunded/,
      check: async (page) => {
        assert.equal(await page.textContent(".actions .button"), "Go to the site");
        assert.equal(await page.locator("#try-again").count(), 0);
        assert.equal(await page.locator('a[href^="mailto:"]').count(), 1, "the support line appears once");
      },
    },
    { name: "invalid-link", path: "/upgrade/success", h1: /not valid/ },
    { name: "restore-form", path: "/upgrade/restore", h1: /Restore access/ },
    {
      name: "restore-sent",
      path: "/upgrade/restore",
      h1: /Restore access/,
      steps: async (page) => {
        await page.fill("#email", "gallery@example.com");
        await page.click("#send");
        await page.locator("#notice").waitFor();
      },
    },
    { name: "restore-confirm", path: `/upgrade/restore?token=${token}`, h1: /Sign in on this device/ },
    { name: "restore-link-expired", path: "/upgrade/restore?token=expired", h1: /Restore access/, alert: /invalid or has expired/ },
    {
      name: "signed-in",
      h1: /You're signed in/,
      check: async (page) => {
        assert.equal(await page.locator("[role=alert]").count(), 0, "not the invalid-link error");
        assert.match(await page.textContent("main"), /you are signed in here as signed-in@example\.com/);
        assert.equal(await page.textContent("#home"), "Go to the site");
      },
      // Signs this browser in with an emailed link, then opens the same link again.
      before: async (page) => {
        await page.goto(`${site}/upgrade/restore`);
        await page.fill("#email", "signed-in@example.com");
        await page.click("#send");
        await page.locator("#notice").waitFor();
        const store = await (await fetch(`${sesEndpoint}/store`)).json();
        const mail = store.emails.filter((m) => m.destination.to.includes("signed-in@example.com")).at(-1);
        assert.ok(mail, "the sign-in email was sent");
        const link = mail.body.text.match(/https?:\/\/\S+\/upgrade\/restore\?token=\S+/)[0];
        await page.goto(link);
        await page.click("#sign-in");
        await page.waitForURL(`${site}/?upgrade=restored`);
        return link.slice(site.length);
      },
    },
    { name: "billing-signed-out", path: "/upgrade/billing", h1: /Sign in to manage billing/ },
    { name: "billing-no-account", path: "/upgrade/billing", h1: /No billing account/, cookies: () => mintedCookie("gift@example.com") },
    { name: "already-have-plan", path: "/upgrade/checkout?product=pdt_test", h1: /You already have Pro/, cookies: () => mintedCookie("gift@example.com") },
    {
      name: "too-many-sign-in-links",
      path: "/upgrade/restore",
      h1: /Restore access/,
      alert: /Too many sign-in links/,
      steps: async (page) => {
        for (let i = 0; i < 4; i++) {
          await page.fill("#email", "limited@example.com");
          await page.click("#send");
          await page.locator("#notice, #alert").first().waitFor();
        }
        await page.locator("#alert").waitFor();
      },
    },
    { name: "plan-signed-out", path: "/upgrade/plan?product=pdt_ent", h1: /Sign in to change your plan/ },
    { name: "plan-upgrade", path: "/upgrade/plan?product=pdt_ent", h1: /Change your plan/, buyer: { product: "pdt_sub" } },
    {
      name: "plan-downgrade",
      path: "/upgrade/plan?product=pdt_sub",
      h1: /Change your plan/,
      buyer: { product: "pdt_ent" },
      check: async (page) => {
        assert.equal(await page.textContent("#current-plan"), "Business");
        assert.equal(await page.textContent("#new-plan"), "Pro");
        assert.equal(await page.textContent("#charged-now"), "$0.00");
        assert.match(await page.textContent("#when"), /^The switch happens on \d{1,2} [A-Z][a-z]+ \d{4}, your next billing date\. Until then you keep Business/);
        assert.match(await page.textContent("#confirm"), /^Switch on \d{1,2} [A-Z][a-z]+ \d{4}$/, "the button names the date");
        assert.equal(await page.textContent("#cancel"), "Cancel");
      },
    },
    { name: "plan-current", path: "/upgrade/plan?product=pdt_sub", h1: /You are on this plan/, buyer: { product: "pdt_sub" } },
    { name: "plan-choose", path: "/upgrade/plan?product=pdt_ent", h1: /Which subscription/, buyer: { product: "pdt_sub", twice: true } },
    { name: "plan-lifetime", path: "/upgrade/plan?product=pdt_ent", h1: /Your access is for life/, cookies: () => mintedCookie("gift@example.com") },
    { name: "checkout-provider-down", path: "/upgrade/checkout?product=pdt_down", h1: /The checkout could not be opened/, status: 502 },
    {
      name: "checkout-busy",
      path: "/upgrade/checkout?product=pdt_down",
      h1: /Checkout is busy/,
      status: 429,
      before: async (page) => {
        // Spend this browser's checkouts for the hour (CHECKOUTS_PER_HOUR_PER_IP, 20).
        for (let i = 0; i < 30; i++) {
          const answer = await page.goto(`${site}/upgrade/checkout?product=pdt_down`);
          if (answer.status() === 429) return;
        }
        assert.fail("checkout never got busy");
      },
    },
    { name: "unknown-product", path: "/upgrade/checkout?product=pdt_unknown", h1: /Unknown product/ },
    { name: "not-found", path: "/upgrade/no-such-page", h1: /Page not found/ },
  ];
}

// A failed or cancelled payment: Try again first (no product is stored for these payments, so
// NEXT_PUBLIC_CHECKOUT_URL), then the sign-in link; the support line only in the footer.
async function leadsWithTryAgain(page) {
  assert.equal(await page.textContent(".actions .button"), "Try again");
  assert.equal(await page.getAttribute("#try-again", "href"), `${site}/upgrade/checkout?product=pdt_test`);
  assert.equal(await page.textContent("#sign-in"), "I was charged: get a sign-in link");
  assert.equal(await page.locator('a[href^="mailto:"]').count(), 1, "the support line appears once");
}

// Buys a subscription to `product` in the stand-in's hosted checkout, in this browser (twice
// for two subscriptions of one email).
async function subscribe(page, name, { product, twice }) {
  const email = `${name}-${suffix}@example.com`;
  for (let i = 0; i < (twice ? 2 : 1); i++) {
    await page.goto(`${site}/upgrade/checkout?product=${product}${i ? "&anyway=1" : ""}`);
    await page.waitForURL(/\/checkout\//);
    await page.fill("input[name=email]", email);
    await page.click("button[value=send]");
    await page.waitForURL(`${site}/?upgrade=success`, { timeout: 20_000 });
  }
}

async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.evaluate(axeSource); // through DevTools, so the page's CSP does not apply
  }
  return page.evaluate(async () => {
    const results = await window.axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
}

// Targets: every link and button at least 24 px tall and wide, primary buttons 44 px tall.
async function smallTargets(page) {
  return page.evaluate(() => {
    const small = [];
    for (const element of document.querySelectorAll("a, button, input:not([type=hidden])")) {
      const box = element.getBoundingClientRect();
      const minimum = element.matches(".button, button, input") ? 44 : 24;
      if (box.height < minimum || box.width < 24) small.push(`${element.outerHTML.slice(0, 80)} ${box.width}x${box.height}`);
    }
    return small;
  });
}

test("every page state is branded, accessible in both schemes at both widths, and rendered for the gallery", async () => {
  await deliverPayment("pay_pages_used", "used@example.com");
  const first = await fetch(`${site}/upgrade/success?payment_id=pay_pages_used`, { redirect: "manual" });
  assert.equal(first.status, 302, "the first visit redeems the claim");
  await deliverPayment("pay_pages_bound", "bound@example.com", (data) => {
    data.metadata = { checkout_ref: "bound-to-a-browser-that-is-not-this-one" };
  });
  admin("grant", "gift@example.com", "--plan", "professional", "--reason", "gallery");
  await deliverPayment("pay_pages_restore", "gallery@example.com");
  await deliverPayment("pay_pages_signed_in", "signed-in@example.com");
  await deliverPayment("pay_pages_refunded", "refunded@example.com");
  await deliverEvent({ url: `${site}/api/webhooks/dodo`, env }, "refund.succeeded.cli-generator.json", "pay_pages_refunded", "refunded@example.com");

  const context = await browser.newContext({ viewport: WIDTHS[0] });
  let logoRequests = 0;
  await context.route(`${new URL(BRAND.logo).origin}/**`, (route) => {
    logoRequests += 1;
    return route.fulfill({ status: 200, contentType: "image/svg+xml", body: LOGO_SVG });
  });
  // The pending page's retry lands on a 204, which keeps the page in place while axe runs.
  let retries = 0;
  await context.route(/\/upgrade\/success\?payment_id=pay_pages_pending&attempt=1$/, (route) => {
    retries += 1;
    return route.fulfill({ status: 204 });
  });
  const page = await context.newPage();
  const cspErrors = [];
  const otherOrigins = new Set();
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) cspErrors.push(message.text());
  });
  let buying = false;
  page.on("request", (request) => {
    if (buying) return;
    const origin = new URL(request.url()).origin;
    if (origin !== site && origin !== new URL(BRAND.logo).origin) otherOrigins.add(origin);
  });

  const sizes = {};
  const failures = [];
  for (const state of states()) {
    await context.clearCookies();
    if (state.cookies) await context.addCookies(state.cookies());
    if (state.buyer) {
      buying = true; // the stand-in's hosted checkout is another origin
      await subscribe(page, state.name, state.buyer);
      buying = false;
    }
    await page.setViewportSize(WIDTHS[0]);
    await page.emulateMedia({ colorScheme: "light" });
    const path = (state.before && (await state.before(page))) || state.path;
    const response = await page.goto(`${site}${path}`);
    if (state.status) assert.equal(response.status(), state.status, state.name);
    if (state.steps) await state.steps(page);
    const html = state.steps ? await page.content() : await response.text();
    sizes[state.name] = Buffer.byteLength(html);
    assert.match(await page.textContent("h1"), state.h1, state.name);
    assert.equal(await page.locator("h1").count(), 1, state.name);
    assert.equal(await page.locator("main").count(), 1, state.name);
    assert.equal((await page.textContent("#brand")).trim(), BRAND.name, state.name);
    assert.equal(await page.textContent("#back"), `Back to ${BRAND.name}`, state.name);
    assert.equal(await page.getAttribute("#support", "href"), `mailto:${BRAND.support}`, state.name);
    assert.ok(await page.$eval("#logo", (img) => img.complete && img.naturalWidth > 0), `${state.name}: the logo loads`);
    if (state.alert) assert.match(await page.textContent("[role=alert]"), state.alert, state.name);
    if (state.check) await state.check(page);
    if (!state.steps) {
      const policy = response.headers()["content-security-policy"];
      assert.match(policy, /style-src 'sha256-/, state.name);
      assert.doesNotMatch(policy, /unsafe-inline/, state.name);
    }
    for (const viewport of WIDTHS) {
      await page.setViewportSize(viewport);
      for (const colorScheme of ["light", "dark"]) {
        await page.emulateMedia({ colorScheme });
        const violations = await axeViolations(page);
        if (violations.length) failures.push(`${state.name} at ${viewport.width} px, ${colorScheme}:\n  ${violations.join("\n  ")}`);
        if (colorScheme === "dark") {
          await page.screenshot({ path: join(galleryDir, `${state.name}-${viewport.width}-dark.png`) });
        }
      }
      await page.emulateMedia({ colorScheme: "light" });
      const small = await smallTargets(page);
      if (small.length) failures.push(`${state.name} at ${viewport.width} px: small targets:\n  ${small.join("\n  ")}`);
      await page.screenshot({ path: join(galleryDir, `${state.name}-${viewport.width}.png`) });
    }
    if (state.pending) {
      await page.waitForTimeout(100);
      await expectEventually(() => retries > 0, "the pending page's script (allowed by its hash) checks again by itself");
      assert.equal(await page.getAttribute("#next", "href"), "?payment_id=pay_pages_pending&attempt=1");
      assert.equal((await page.textContent("#next")).trim(), "Check again");
    }
  }
  await context.close();
  assert.deepEqual(failures, [], failures.join("\n"));
  assert.deepEqual(cspErrors, [], "nothing blocked by the pages' policies");
  assert.deepEqual([...otherOrigins], [], "no request to another origin than the logo's");
  assert.ok(logoRequests > 0);
  const largest = Math.max(...Object.values(sizes));
  console.log(`page sizes (bytes): ${JSON.stringify(sizes)}; largest ${largest}`);
  assert.ok(largest <= 20 * 1024, `a page is ${largest} bytes`);
  const images = states().flatMap((s) => WIDTHS.flatMap((w) => [`${s.name}-${w.width}.png`, `${s.name}-${w.width}-dark.png`]));
  const total = images.reduce((sum, name) => sum + statSync(join(galleryDir, name)).size, 0);
  console.log(`gallery: ${total} bytes in ${galleryDir}`);
  // 27 states, each at two widths in light and in dark, come to about 4 MB; each state adds
  // about 150 kB (docs/pages.md, "Gallery size").
  assert.ok(total <= 4.5 * 1024 * 1024, `the gallery's images stay small (${total} bytes)`);
});

async function expectEventually(check, what) {
  for (let i = 0; i < 50; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(what);
}

test("the sign-in link works when clicked in the SES emulator's mailbox", async () => {
  const email = `mailbox-${suffix}@example.com`;
  await deliverPayment("pay_pages_mailbox", email);
  const device = await browser.newContext();
  const page = await device.newPage();
  await page.goto(`${site}/upgrade/restore`);
  await page.fill("#email", email);
  await page.click("#send");
  await page.locator("#notice").waitFor();
  const store = await (await fetch(`${sesEndpoint}/store`)).json();
  const mail = store.emails.filter((m) => m.destination.to.includes(email)).at(-1);
  assert.ok(mail, "the sign-in email was sent");
  assert.equal(mail.subject, `Your sign-in link for ${BRAND.name}`);

  const mailbox = await device.newPage();
  await mailbox.goto(`${sesEndpoint}/`);
  await mailbox.click(`button[onclick="toggle('${mail.messageId}-html')"]`);
  const message = mailbox.frameLocator(`[id="${mail.messageId}-html-iframe"]`);
  assert.match(await message.locator("body").textContent(), new RegExp(BRAND.name));
  const [opened] = await Promise.all([device.waitForEvent("page"), message.locator("#sign-in-link").click()]);
  await opened.waitForLoadState();
  assert.ok(opened.url().startsWith(`${site}/upgrade/restore?token=`), opened.url());
  await opened.click("#sign-in");
  await opened.waitForURL(`${site}/?upgrade=restored`);
  const status = opened.locator("#status");
  await status.filter({ hasNotText: "checking" }).waitFor();
  assert.equal(await status.textContent(), "Pro (professional)");
  await device.close();
});
