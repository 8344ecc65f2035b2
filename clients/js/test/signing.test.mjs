// The signing known answers shared with the Rust tests (fixtures/signing-vectors.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createClient, signRequest, entitlementPath, checkoutSignature, normaliseEmail } from "../dist/index.js";

const vectors = JSON.parse(readFileSync(new URL("../../../fixtures/signing-vectors.json", import.meta.url), "utf8"));

test("request signatures match the shared vectors", async () => {
  assert.ok(vectors.request_signature.length >= 4);
  for (const v of vectors.request_signature) {
    assert.equal(entitlementPath(v.email ?? undefined), v.path_and_query, v.name);
    assert.equal(await signRequest(v.secret, v.timestamp, v.method, v.path_and_query, v.body), v.signature, v.name);
  }
});

test("the path signed is the path a URL parser sends", () => {
  for (const v of vectors.request_signature) {
    const url = new URL("https://example.com" + entitlementPath(v.email ?? undefined));
    assert.equal(url.pathname + url.search, v.path_and_query, v.name);
  }
});

test("checkout-link signatures match the shared vectors", async () => {
  assert.ok(vectors.checkout_link.length >= 2);
  for (const v of vectors.checkout_link) {
    assert.equal(normaliseEmail(v.email), v.normalised_email, v.name);
    assert.equal(await checkoutSignature(v.secret, v.product, v.email, v.expires), v.sig, v.name);
  }
});

test("normalising folds ASCII letters only (no Kelvin sign to k)", () => {
  assert.equal(normaliseEmail(" \u212Aate@Example.com\n"), "\u212Aate@example.com");
});

test("checkoutUrl: signed prefill link, default one hour", async (t) => {
  const v = vectors.checkout_link[0];
  const realNow = Date.now;
  t.after(() => (Date.now = realNow));
  Date.now = () => (v.expires - 3600) * 1000 + 999;
  const client = createClient({ apiUrl: "https://shop.example/", hmacSecret: v.secret });
  const link = new URL(await client.checkoutUrl({ product: v.product, email: v.email }));
  assert.equal(link.origin + link.pathname, "https://shop.example/upgrade/checkout");
  assert.deepEqual(Object.fromEntries(link.searchParams), {
    product: v.product,
    email: v.normalised_email,
    expires: String(v.expires),
    sig: v.sig,
  });
  const second = vectors.checkout_link[1];
  Date.now = () => (second.expires - 600) * 1000;
  const short = new URL(await createClient({ apiUrl: "https://shop.example", hmacSecret: second.secret })
    .checkoutUrl({ product: second.product, email: second.email, expiresIn: 600 }));
  assert.equal(short.searchParams.get("email"), second.normalised_email);
  assert.equal(short.searchParams.get("sig"), second.sig);
});

test("checkoutUrl without an email is the plain product link", async () => {
  const client = createClient({ apiUrl: "https://shop.example", hmacSecret: "x".repeat(32) });
  assert.equal(await client.checkoutUrl({ product: "pdt_test" }), "https://shop.example/upgrade/checkout?product=pdt_test");
});

test("createClient refuses missing settings", () => {
  assert.throws(() => createClient({ apiUrl: "", hmacSecret: "s" }), /apiUrl/);
  assert.throws(() => createClient({ apiUrl: "https://a.example", hmacSecret: "" }), /hmacSecret/);
});
