// The edge pass: a short-lived Ed25519-signed JWS the API issues beside its cookie, so a site
// can decide "Pro or not" locally, without asking the API on every request.
import type { BillingState, Entitlement } from "./types.js";

/** A public key of the key set (`GET /api/entitlement/keys`): RFC 8037 OKP, Ed25519. */
export interface Jwk {
  kty: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

/** The key set document (JWKS). */
export interface Jwks {
  keys: Jwk[];
}

/** The claims of a pass. */
export interface PassClaims {
  /** Site origin, both of them. */
  iss: string;
  aud: string;
  /** The buyer's normalised email. */
  sub: string;
  iat: number;
  exp: number;
  /** Until when a Pro pass may stand in while the API cannot be reached; absent or ≤ exp: never. */
  stale_until?: number;
  pro: boolean;
  plan: string | null;
  features: string[];
  scope: "purchase" | "account" | null;
  billing_state: string | null;
  /** `source` of the answer the pass was issued with. */
  source: string;
}

/** A pass that verified, and how usable it still is. */
export interface VerifiedPass {
  /** The pass as an answer: `source: "pass"`, `billing` = `{state}` only, `status`/`expires_at` null. */
  entitlement: Entitlement;
  /** now ≤ exp + leeway: decide from it alone. */
  fresh: boolean;
  /** Not fresh, says Pro, now ≤ stale_until: usable only when the API cannot be reached. */
  stale: boolean;
  claims: PassClaims;
}

export interface VerifyPassOptions {
  /** The key set itself. */
  keys?: Jwks;
  /** Where to fetch the key set (cached per URL for its max-age; an unknown kid refetches at most once a minute). */
  keysUrl?: string;
  /** Unix seconds; defaults to the clock. */
  now?: number;
  /** Seconds a pass stays fresh past `exp` (clock skew), default 5. */
  leewaySeconds?: number;
  /** Site origin the pass must be issued by (`iss`). */
  issuer?: string;
  /** Site origin the pass must be issued to (`aud`). Either way `iss` must equal `aud`. */
  audience?: string;
}

/** Name of the pass cookie. */
export const PASS_COOKIE = "__Host-llmxt_pass";
const PASS_TYPE = "llmxt-pass+jwt";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Strict base64url (no padding) to bytes, or null. */
function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function jsonOf(bytes: Uint8Array | null): Record<string, unknown> | null {
  const value: unknown = bytes && JSON.parse(decoder.decode(bytes));
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an OKP public key: the `kid` of the key set. */
export async function jwkThumbprint(jwk: Jwk): Promise<string> {
  if (jwk.kty !== "OKP" || typeof jwk.crv !== "string" || typeof jwk.x !== "string") {
    throw new TypeError("jwkThumbprint: an OKP key with crv and x is needed");
  }
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return toBase64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))));
}

const importedKeys = new Map<string, Promise<CryptoKey>>();

function verifyKey(x: string): Promise<CryptoKey> {
  let key = importedKeys.get(x);
  if (!key) {
    if (importedKeys.size >= 64) importedKeys.clear();
    key = crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x }, { name: "Ed25519" }, false, ["verify"]);
    key.catch(() => importedKeys.delete(x));
    importedKeys.set(x, key);
  }
  return key;
}

/**
 * Verifies a compact JWS signed with EdDSA (Ed25519) by `jwk`: any other `alg` is refused.
 * Returns its header and payload bytes, or null (never throws).
 */
export async function verifyJws(
  token: string,
  jwk: Jwk,
): Promise<{ header: Record<string, unknown>; payload: Uint8Array } | null> {
  try {
    const parts = typeof token === "string" && token.length <= 4096 ? token.split(".") : [];
    if (parts.length !== 3 || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") return null;
    const header = jsonOf(fromBase64url(parts[0]));
    const payload = fromBase64url(parts[1]);
    const signature = fromBase64url(parts[2]);
    if (header?.alg !== "EdDSA" || !payload || signature?.length !== 64) return null;
    const signed = new TextEncoder().encode(parts[0] + "." + parts[1]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, await verifyKey(jwk.x), signature, signed);
    return ok ? { header, payload } : null;
  } catch {
    return null;
  }
}

interface KeySetEntry {
  keys?: Jwk[];
  /** Date.now() when the cached set is due again, and when it was last asked for. */
  expires: number;
  fetched: number;
  pending?: Promise<void>;
}

const keySets = new Map<string, KeySetEntry>();

async function loadKeySet(url: string, entry: KeySetEntry): Promise<void> {
  entry.fetched = Date.now();
  try {
    const response = await fetch(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(1000) });
    const body = response.ok ? ((await response.json()) as Partial<Jwks>) : null;
    if (!Array.isArray(body?.keys)) throw new Error(`key set ${url}: ${response.status}`);
    entry.keys = body.keys;
    const maxAge = /max-age=(\d+)/.exec(response.headers.get("cache-control") ?? "");
    entry.expires = entry.fetched + (maxAge ? Number(maxAge[1]) : 60) * 1000;
  } catch (error) {
    // Keep what was known; try again in a minute.
    console.error("@llmxt/pro: could not fetch the pass key set:", error);
    entry.expires = entry.fetched + 60_000;
  }
}

/** The key set of `url`, fetched when due, or when `unknownKid` and not fetched for a minute. */
async function keySet(url: string, unknownKid: boolean): Promise<Jwk[]> {
  let entry = keySets.get(url);
  if (!entry) keySets.set(url, (entry = { expires: 0, fetched: -Infinity }));
  const now = Date.now();
  if (!entry.pending && (now >= entry.expires || (unknownKid && now - entry.fetched >= 60_000))) {
    const current = entry;
    current.pending = loadKeySet(url, current).finally(() => (current.pending = undefined));
  }
  await entry.pending;
  return entry.keys ?? [];
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Passes whose signature verified, by token, then by the `x` of the key that verified it. */
const verifiedPasses = new Map<string, Record<string, unknown>>();

const isString = (value: unknown): value is string => typeof value === "string";
const isTime = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

/**
 * Verifies a pass (the `__Host-llmxt_pass` cookie or `pass` of an answer): EdDSA only, type
 * `llmxt-pass+jwt`, a `kid` of the key set, `iss` = `aud` (= `audience`/`issuer` when given).
 * Returns null for anything else, and for a pass neither fresh nor stale (never throws).
 */
export async function verifyPass(token: string, options: VerifyPassOptions): Promise<VerifiedPass | null> {
  try {
    const header = jsonOf(fromBase64url(String(token).split(".")[0]));
    if (header?.alg !== "EdDSA" || header.typ !== PASS_TYPE || !isString(header.kid)) return null;
    const find = (keys: Jwk[] | undefined) => keys?.find((key) => key.kid === header.kid);
    let jwk = find(options.keys?.keys);
    if (!jwk && options.keysUrl) {
      jwk = find(await keySet(options.keysUrl, false)) ?? find(await keySet(options.keysUrl, true));
    }
    if (!jwk || (jwk.alg !== undefined && jwk.alg !== "EdDSA") || (jwk.use !== undefined && jwk.use !== "sig")) return null;
    // A visitor sends the same pass on every request of its minute: verify its bytes once.
    let claims = verifiedPasses.get(token)?.[jwk.x as string] as Partial<PassClaims> | undefined | null;
    if (!claims) {
      claims = jsonOf((await verifyJws(token, jwk))?.payload ?? null) as Partial<PassClaims> | null;
      if (claims) {
        if (verifiedPasses.size >= 1000) verifiedPasses.delete(verifiedPasses.keys().next().value!);
        verifiedPasses.set(token, { [jwk.x as string]: claims });
      }
    }
    if (!claims || !isString(claims.iss) || claims.iss !== claims.aud || !isString(claims.sub)) return null;
    if (options.issuer !== undefined && claims.iss !== originOf(options.issuer)) return null;
    if (options.audience !== undefined && claims.aud !== originOf(options.audience)) return null;
    const { iat, exp, stale_until, pro } = claims;
    const features = claims.features ?? [];
    if (!isTime(iat) || !isTime(exp) || exp < iat || typeof pro !== "boolean") return null;
    if (stale_until !== undefined && !isTime(stale_until)) return null;
    if (!Array.isArray(features) || !features.every(isString)) return null;
    const plan = claims.plan ?? null;
    const billingState = claims.billing_state ?? null;
    const scope = claims.scope ?? null;
    if ((plan !== null && !isString(plan)) || (billingState !== null && !isString(billingState))) return null;
    if (scope !== null && scope !== "purchase" && scope !== "account") return null;

    const now = options.now ?? Math.floor(Date.now() / 1000);
    const fresh = now <= exp + (options.leewaySeconds ?? 5);
    // A stale_until at or before exp is already behind `now` here: no stale window.
    const stale = !fresh && pro && stale_until !== undefined && now <= stale_until;
    if (!fresh && !stale) return null;
    return {
      entitlement: {
        pro,
        plan,
        status: null,
        expires_at: null,
        source: "pass",
        scope,
        features: [...features],
        billing: billingState === null ? null : { state: billingState as BillingState },
      },
      fresh,
      stale,
      claims: { ...claims, plan, features: [...features], scope, billing_state: billingState, source: String(claims.source ?? "") } as PassClaims,
    };
  } catch {
    return null;
  }
}

/** Every value of cookie `name` in a Cookie header. */
export function cookieValues(header: string | null | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    const value = part.slice(eq + 1).trim();
    if (eq > 0 && part.slice(0, eq).trim() === name && value) values.push(value);
  }
  return values;
}

/** The best usable pass among the Cookie header's pass cookies: a fresh one over a stale one. */
export async function passFromCookies(header: string | null | undefined, options: VerifyPassOptions): Promise<VerifiedPass | null> {
  let best: VerifiedPass | null = null;
  for (const token of cookieValues(header, PASS_COOKIE)) {
    const pass = await verifyPass(token, options);
    if (pass && (!best || (pass.fresh && !best.fresh))) best = pass;
    if (best?.fresh) break;
  }
  return best;
}
