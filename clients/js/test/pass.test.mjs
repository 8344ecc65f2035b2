// verifyPass and its pieces: RFC 8037 known answers, every refusal, fresh and stale windows,
// and the key set's cache (served from loopback, requests counted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { verifyPass, verifyJws, jwkThumbprint, passFromCookies } from "../dist/index.js";
import { makeKey, jwks, claims, signPass, b64url, serve, now } from "./helpers.mjs";

const SITE = "https://shop.example";
const key = makeKey();
const keys = jwks(key);

test("RFC 8037 A.3: the thumbprint of the example public key", async () => {
  const jwk = { kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" };
  assert.equal(await jwkThumbprint(jwk), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  assert.equal(await jwkThumbprint(key.jwk), key.jwk.kid, "same as node:crypto's SHA-256 of the canonical JSON");
  await assert.rejects(jwkThumbprint({ kty: "RSA", n: "x", e: "AQAB" }), TypeError);
});

test("RFC 8037 A.4: the example JWS verifies, and any change to it does not", async () => {
  const jwk = { kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" };
  const jws =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc." +
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
  const verified = await verifyJws(jws, jwk);
  assert.deepEqual(verified?.header, { alg: "EdDSA" });
  assert.equal(new TextDecoder().decode(verified.payload), "Example of Ed25519 signing");
  const [h, p, s] = jws.split(".");
  assert.equal(await verifyJws(`${h}.${b64url("Example of Ed25519 signinG")}.${s}`, jwk), null);
  assert.equal(await verifyJws(`${h}.${p}.${s.slice(0, -2)}Ag`.replace(/Ag$/, "Aw"), jwk), null);
  assert.equal(await verifyJws(jws, key.jwk), null, "another key");
  assert.equal(await verifyJws(jws, { ...jwk, crv: "X25519" }), null);
});

test("a fresh pass: the answer it carries", async () => {
  const iat = 1_800_000_000;
  const pass = await verifyPass(signPass(key, claims(SITE, iat)), { keys, now: iat + 10, audience: SITE });
  assert.equal(pass.fresh, true);
  assert.equal(pass.stale, false);
  assert.deepEqual(pass.entitlement, {
    pro: true,
    plan: "professional",
    status: null,
    expires_at: null,
    source: "pass",
    scope: "account",
    features: ["export", "api"],
    billing: { state: "active" },
  });
  assert.equal(pass.claims.sub, "buyer@example.com");
  assert.equal(pass.claims.source, "database");
  const bare = await verifyPass(
    signPass(key, claims(SITE, iat, { plan: null, billing_state: null, pro: false, features: [] })),
    { keys, now: iat },
  );
  assert.deepEqual([bare.entitlement.pro, bare.entitlement.plan, bare.entitlement.billing], [false, null, null]);
});

test("refused: tampered payload, header or signature", async () => {
  const iat = now();
  const good = signPass(key, claims(SITE, iat));
  const [h, p, s] = good.split(".");
  const forged = b64url(JSON.stringify(claims(SITE, iat, { sub: "thief@example.com" })));
  assert.equal(await verifyPass(`${h}.${forged}.${s}`, { keys }), null);
  const otherHeader = b64url(JSON.stringify({ alg: "EdDSA", kid: key.jwk.kid, typ: "llmxt-pass+jwt", x: 1 }));
  assert.equal(await verifyPass(`${otherHeader}.${p}.${s}`, { keys }), null);
  assert.equal(await verifyPass(`${h}.${p}.${b64url(Buffer.alloc(64))}`, { keys }), null);
  assert.equal(await verifyPass(`${h}.${p}.`, { keys }), null);
  assert.ok(await verifyPass(good, { keys }), "the untouched pass verifies");
});

test("refused: alg none, and HS256 keyed with the public key", async () => {
  const body = claims(SITE);
  const none = `${b64url(JSON.stringify({ alg: "none", kid: key.jwk.kid, typ: "llmxt-pass+jwt" }))}.${b64url(JSON.stringify(body))}.`;
  assert.equal(await verifyPass(none, { keys }), null);
  for (const secret of [Buffer.from(key.jwk.x, "base64url"), Buffer.from(key.jwk.x), Buffer.from(JSON.stringify(key.jwk))]) {
    const h = b64url(JSON.stringify({ alg: "HS256", kid: key.jwk.kid, typ: "llmxt-pass+jwt" }));
    const p = b64url(JSON.stringify(body));
    const mac = createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url");
    assert.equal(await verifyPass(`${h}.${p}.${mac}`, { keys }), null);
    // even with alg rewritten to EdDSA, a MAC is not a signature
    const h2 = b64url(JSON.stringify({ alg: "EdDSA", kid: key.jwk.kid, typ: "llmxt-pass+jwt" }));
    assert.equal(await verifyPass(`${h2}.${p}.${createHmac("sha256", secret).update(`${h2}.${p}`).digest("base64url")}`, { keys }), null);
  }
  assert.equal(await verifyPass(signPass(key, body, { alg: "EdDSA", kid: key.jwk.kid }), { keys }).then(Boolean), true);
});

test("refused: wrong or missing typ, unknown or missing kid, a key set entry for another alg", async () => {
  const body = claims(SITE);
  assert.equal(await verifyPass(signPass(key, body, { typ: "JWT" }), { keys }), null);
  assert.equal(await verifyPass(signPass(key, body, { typ: undefined }), { keys }), null);
  assert.equal(await verifyPass(signPass(key, body, { kid: "not-a-kid" }), { keys }), null);
  assert.equal(await verifyPass(signPass(key, body, { kid: undefined }), { keys }), null);
  const other = makeKey();
  assert.equal(await verifyPass(signPass(other, body), { keys }), null, "a key not in the set");
  assert.equal(await verifyPass(signPass(other, body, { kid: key.jwk.kid }), { keys }), null, "our kid, their key");
  assert.equal(await verifyPass(signPass(key, body), { keys: { keys: [{ ...key.jwk, alg: "ES256" }] } }), null);
  assert.ok(await verifyPass(signPass(key, body), { keys: jwks(other, key) }), "found among several");
});

test("refused: wrong issuer or audience", async () => {
  const body = claims(SITE);
  assert.ok(await verifyPass(signPass(key, body), { keys, audience: SITE + "/", issuer: SITE }));
  assert.equal(await verifyPass(signPass(key, body), { keys, audience: "https://evil.example" }), null);
  assert.equal(await verifyPass(signPass(key, body), { keys, issuer: "http://shop.example" }), null);
  assert.equal(await verifyPass(signPass(key, { ...body, aud: "https://evil.example" }), { keys }), null, "iss must equal aud");
  assert.equal(await verifyPass(signPass(key, { ...body, aud: [SITE] }), { keys }), null);
});

test("refused: malformed claims", async () => {
  const base = claims(SITE);
  for (const change of [
    { pro: "true" },
    { exp: "soon" },
    { iat: undefined },
    { exp: base.iat - 1 },
    { sub: 7 },
    { features: "export" },
    { features: [1] },
    { plan: 3 },
    { scope: "everything" },
    { stale_until: "later" },
  ]) {
    assert.equal(await verifyPass(signPass(key, { ...base, ...change }), { keys }), null, JSON.stringify(change));
  }
  assert.equal(await verifyPass(signPass(key, "[1,2]"), { keys }), null);
  assert.equal(await verifyPass(signPass(key, "not json"), { keys }), null);
});

test("garbage never throws", async () => {
  const inputs = ["", ".", "..", "a.b", "a.b.c.d", "!!!.@@@.###", "eyJ.eyJ.eyJ", "x".repeat(10_000), null, undefined, 42, {}];
  inputs.push(`${b64url("{\"alg\":\"EdDSA\",\"typ\":\"llmxt-pass+jwt\",\"kid\":\"" + key.jwk.kid + "\"")}.e30.AA`);
  inputs.push(`${b64url('{"alg":"EdDSA","typ":"llmxt-pass+jwt","kid":"' + key.jwk.kid + '"}')}.${"e30"}.${"A".repeat(86)}`);
  inputs.push(`${b64url(Buffer.from([0xff, 0xfe]))}.e30.AA`);
  for (const input of inputs) {
    assert.equal(await verifyPass(input, { keys }), null, String(input).slice(0, 20));
    assert.equal(await verifyJws(input, key.jwk), null);
  }
  assert.equal(await verifyPass(signPass(key, claims(SITE)), { keys: { keys: "nope" } }), null);
  assert.equal(await verifyPass(signPass(key, claims(SITE)), {}), null, "no keys at all");
  assert.equal(await verifyJws(signPass(key, claims(SITE)), { kty: "OKP", crv: "Ed25519", x: "short" }), null);
});

test("fresh until exp + leeway, then stale until stale_until (Pro only), then nothing", async () => {
  const iat = 1_800_000_000;
  const token = signPass(key, claims(SITE, iat));
  const at = (t, leewaySeconds) => verifyPass(token, { keys, now: t, leewaySeconds });
  assert.deepEqual(await at(iat + 60).then((p) => [p.fresh, p.stale]), [true, false]);
  assert.deepEqual(await at(iat + 65).then((p) => [p.fresh, p.stale]), [true, false], "default leeway 5 s");
  assert.deepEqual(await at(iat + 66).then((p) => [p.fresh, p.stale]), [false, true]);
  assert.deepEqual(await at(iat + 61, 0).then((p) => [p.fresh, p.stale]), [false, true]);
  assert.deepEqual(await at(iat + 86400).then((p) => [p.fresh, p.stale]), [false, true]);
  assert.equal(await at(iat + 86401), null, "expired past its stale window");

  const notPro = signPass(key, claims(SITE, iat, { pro: false }));
  assert.equal(await verifyPass(notPro, { keys, now: iat + 100 }), null, "a not-Pro pass is never stale");
  for (const stale_until of [undefined, iat, iat + 60]) {
    const noWindow = signPass(key, claims(SITE, iat, { stale_until }));
    assert.equal(await verifyPass(noWindow, { keys, now: iat + 70 }), null, `stale_until ${stale_until}`);
    assert.equal((await verifyPass(noWindow, { keys, now: iat + 30 })).fresh, true);
  }
});

test("passFromCookies: a fresh pass wins over a stale one; others are ignored", async () => {
  const t = now();
  const stale = signPass(key, claims(SITE, t - 1000));
  const fresh = signPass(key, claims(SITE, t, { plan: "enterprise" }));
  const header = `a=1; __Host-llmxt_pass=garbage; __Host-llmxt_pass=${stale}; __Host-llmxt_pass=${fresh}`;
  assert.equal((await passFromCookies(header, { keys })).entitlement.plan, "enterprise");
  assert.equal((await passFromCookies(`__Host-llmxt_pass=${stale}`, { keys })).stale, true);
  assert.equal(await passFromCookies("llmxt_pass=" + fresh, { keys }), null, "only the __Host- name");
  assert.equal(await passFromCookies(null, { keys }), null);
});

test("key set: fetched once, cached for max-age; an unknown kid refetches at most once a minute", async (t) => {
  const current = makeKey();
  const next = makeKey();
  let served = [current];
  let requests = 0;
  const server = await serve((req, res) => {
    requests++;
    res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
    res.end(JSON.stringify(jwks(...served)));
  });
  t.after(server.close);
  const realNow = Date.now;
  t.after(() => (Date.now = realNow));
  let clock = realNow();
  Date.now = () => clock;
  const keysUrl = `${server.url}/api/entitlement/keys`;
  const opts = { keysUrl, now: 1_800_000_000 };
  const pass = (k) => signPass(k, claims(SITE, 1_800_000_000));

  const both = await Promise.all([verifyPass(pass(current), opts), verifyPass(pass(current), opts)]);
  assert.ok(both.every(Boolean));
  assert.equal(requests, 1, "concurrent first uses share one fetch");
  for (let i = 0; i < 20; i++) assert.ok(await verifyPass(pass(current), opts));
  assert.equal(requests, 1, "cached");

  // A pass signed with a key the cache has not seen yet (rotation), ten seconds after the fetch.
  clock += 10_000;
  served = [next, current];
  assert.equal(await verifyPass(pass(next), opts), null, "the last fetch was under a minute ago");
  assert.equal(requests, 1);
  clock += 51_000;
  assert.ok(await verifyPass(pass(next), opts), "a minute on, an unknown kid refetches and finds the new key");
  assert.equal(requests, 2);
  for (let i = 0; i < 5; i++) assert.equal(await verifyPass(pass(makeKey()), opts), null);
  assert.equal(requests, 2, "unknown kids within the minute do not refetch");
  clock += 60_000;
  for (let i = 0; i < 5; i++) assert.equal(await verifyPass(pass(makeKey()), opts), null);
  assert.equal(requests, 3, "one refetch a minute, however many unknown kids");

  clock += 300_000;
  assert.ok(await verifyPass(pass(current), opts));
  assert.equal(requests, 4, "refetched once max-age ran out");
});

test("key set: a failed fetch keeps the keys known and retries after a minute", async (t) => {
  const k = makeKey();
  let up = true;
  let requests = 0;
  const server = await serve((req, res) => {
    requests++;
    if (!up) return res.writeHead(503).end();
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" });
    res.end(JSON.stringify(jwks(k)));
  });
  t.after(server.close);
  const realNow = Date.now;
  const realError = console.error;
  t.after(() => ((Date.now = realNow), (console.error = realError)));
  console.error = () => {};
  let clock = realNow();
  Date.now = () => clock;
  const opts = { keysUrl: `${server.url}/keys`, now: 1_800_000_000 };
  const token = signPass(k, claims(SITE, 1_800_000_000));
  assert.ok(await verifyPass(token, opts));
  up = false;
  clock += 61_000;
  assert.ok(await verifyPass(token, opts), "the key set could not be fetched: the known keys still verify");
  assert.equal(requests, 2);
  assert.ok(await verifyPass(token, opts));
  assert.equal(requests, 2, "no retry within the minute");
  const unreachable = { keysUrl: "http://127.0.0.1:9/keys", now: 1_800_000_000 };
  assert.equal(await verifyPass(token, unreachable), null, "nothing known, nothing fetched: null, no throw");
});

test("a remembered pass is still checked against the key set, the clock and the audience", async () => {
  const iat = 1_800_000_000;
  const token = signPass(key, claims(SITE, iat));
  assert.ok(await verifyPass(token, { keys, now: iat }));
  assert.ok(await verifyPass(token, { keys, now: iat }), "again, from memory");
  const swapped = { keys: [{ ...makeKey().jwk, kid: key.jwk.kid }] };
  assert.equal(await verifyPass(token, { keys: swapped, now: iat }), null, "same kid, another key: verified again, and fails");
  assert.equal(await verifyPass(token, { keys: { keys: [] }, now: iat }), null, "key withdrawn");
  assert.equal(await verifyPass(token, { keys, now: iat + 200_000 }), null, "expired since");
  assert.equal(await verifyPass(token, { keys, now: iat, audience: "https://other.example" }), null);
  const first = await verifyPass(token, { keys, now: iat });
  first.entitlement.features.push("tampered");
  assert.deepEqual((await verifyPass(token, { keys, now: iat })).entitlement.features, ["export", "api"]);
});
