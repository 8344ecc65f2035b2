// Test helpers: Ed25519 keys and passes made with node:crypto (independent of the package's
// Web Crypto code), a loopback HTTP server, and the hook that lets plain Node import next/server.
import { generateKeyPairSync, sign, createHash } from "node:crypto";
import { createServer } from "node:http";
import { register } from "node:module";

export const b64url = (data) => Buffer.from(data).toString("base64url");

/** An Ed25519 key pair: `jwk` (public, as the key set lists it, kid = RFC 7638 thumbprint) and `privateKey`. */
export function makeKey() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const { crv, kty, x } = publicKey.export({ format: "jwk" });
  const kid = createHash("sha256").update(JSON.stringify({ crv, kty, x })).digest("base64url");
  return { privateKey, jwk: { kty, crv, x, alg: "EdDSA", use: "sig", kid } };
}

export const jwks = (...keys) => ({ keys: keys.map((k) => k.jwk) });

export const now = () => Math.floor(Date.now() / 1000);

/** Claims of a Pro pass for `site`, issued at `iat`. */
export function claims(site, iat = now(), extra = {}) {
  return {
    iss: site,
    aud: site,
    sub: "buyer@example.com",
    iat,
    exp: iat + 60,
    stale_until: iat + 86400,
    pro: true,
    plan: "professional",
    features: ["export", "api"],
    scope: "account",
    billing_state: "active",
    source: "database",
    ...extra,
  };
}

/** A compact JWS of `payload` signed with `key`; `header` overrides the pass header. */
export function signPass(key, payload, header = {}) {
  const h = b64url(JSON.stringify({ alg: "EdDSA", kid: key.jwk.kid, typ: "llmxt-pass+jwt", ...header }));
  const p = b64url(typeof payload === "string" ? payload : JSON.stringify(payload));
  return `${h}.${p}.${b64url(sign(null, Buffer.from(`${h}.${p}`), key.privateKey))}`;
}

/** A server on 127.0.0.1 running `handler`; resolves to {url, server, close}. */
export async function serve(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    server,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** Makes `import "next/server"` work in plain Node ESM (Next.js has no exports map; bundlers resolve it). */
export function allowNextServerImport() {
  register("data:text/javascript," + encodeURIComponent(
    'export async function resolve(s, c, next) { return next(s === "next/server" ? "next/server.js" : s, c); }',
  ));
}
