/**
 * `@llmxt/pro`: asks the llmxt entitlement API whether a visitor (by cookie) or an email has
 * Pro, and builds signed checkout links. Web Crypto and `fetch` only, so it runs in Node >= 20,
 * Next.js middleware on the edge runtime and other edge runtimes.
 */
export * from "./pass.js";
export * from "./usage.js";
import { usageClient, type UsageClient } from "./usage.js";

export type { Billing, BillingState, Entitlement } from "./types.js";
import type { Entitlement } from "./types.js";

/** An answer plus every `Set-Cookie` the API sent: pass them on to the visitor unchanged. */
export interface EntitlementAnswer extends Entitlement {
  setCookie: string[];
}

/** Who to ask about: the visitor's whole `Cookie` header, or an email (account-wide). */
export type EntitlementQuery = { cookie: string | null | undefined } | { email: string };

export interface ClientOptions {
  /** Origin the API is served under, normally the site's own (`https://example.com`). */
  apiUrl: string;
  /** `HMAC_SECRET` of the API. Server side only. */
  hmacSecret: string;
  /** Give up after this many milliseconds (default 5000). */
  timeoutMs?: number;
}

export interface CheckoutOptions {
  /** Dodo product id listed in `PRODUCT_PLANS`. */
  product: string;
  /** Prefills the checkout; signed, so nobody can change it in the link. */
  email?: string;
  /** Seconds the prefill stays valid (default 3600, the API accepts at most one hour). */
  expiresIn?: number;
}

export interface Client {
  /** `apiUrl` without a trailing slash (absent on hand-made clients). */
  readonly apiUrl?: string;
  /** `timeoutMs` overrides the client's for this call. */
  entitlement(query: EntitlementQuery, options?: { timeoutMs?: number }): Promise<EntitlementAnswer>;
  checkoutUrl(options: CheckoutOptions): Promise<string>;
  /** Usage limits: reserve, commit, release, consume, withUsage (docs/usage.md). */
  readonly usage: UsageClient;
}

/** Why an entitlement check failed: `timeout`, `network` or `status` (a non-2xx answer). */
export class EntitlementError extends Error {
  readonly kind: "timeout" | "network" | "status";
  /** HTTP status of a `status` failure. */
  readonly status?: number;
  constructor(kind: "timeout" | "network" | "status", message: string, status?: number, cause?: unknown) {
    super(message, { cause });
    this.name = "EntitlementError";
    this.kind = kind;
    this.status = status;
  }
}

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `x-llmxt-signature` value: `v1=` + hex HMAC-SHA256 of `{timestamp}.{METHOD}.{path?query}.{body}`. */
export async function signRequest(
  secret: string,
  timestamp: number,
  method: string,
  pathAndQuery: string,
  body = "",
): Promise<string> {
  return "v1=" + (await hmacHex(secret, `${timestamp}.${method.toUpperCase()}.${pathAndQuery}.${body}`));
}

/** Trims and lower-cases ASCII letters only, as the API stores emails. */
export function normaliseEmail(email: string): string {
  return email.trim().replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/** Lowercase hex HMAC-SHA256 of `checkout\n{product}\n{normalised email}\n{expires}`. */
export function checkoutSignature(secret: string, product: string, email: string, expires: number): Promise<string> {
  return hmacHex(secret, `checkout\n${product}\n${normaliseEmail(email)}\n${expires}`);
}

// encodeURIComponent leaves !'()* alone, but a URL parser re-encodes ' in a query: encode all
// of them so the path signed is the path sent.
function encodeQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Path and query of an entitlement check, exactly as signed and sent. */
export function entitlementPath(email?: string): string {
  return email === undefined ? "/api/entitlement" : `/api/entitlement?email=${encodeQueryValue(email)}`;
}

function setCookiesOf(headers: Headers): string[] {
  if (typeof headers.getSetCookie === "function") return headers.getSetCookie();
  const joined = headers.get("set-cookie");
  // Split only before `name=`, not inside an `Expires=Wed, 21 Oct …` date.
  return joined ? joined.split(/,\s*(?=[^;,=\s]+=)/) : [];
}

/** A client for one API. */
export function createClient({ apiUrl, hmacSecret, timeoutMs = 5000 }: ClientOptions): Client {
  if (!apiUrl) throw new TypeError("createClient: apiUrl is required");
  if (!hmacSecret) throw new TypeError("createClient: hmacSecret is required");
  const base = apiUrl.replace(/\/+$/, "");

  async function entitlement(query: EntitlementQuery, options?: { timeoutMs?: number }): Promise<EntitlementAnswer> {
    const limit = options?.timeoutMs ?? timeoutMs;
    const email = "email" in query ? query.email : undefined;
    const cookie = "cookie" in query ? query.cookie : undefined;
    const url = new URL(base + entitlementPath(email));
    const pathAndQuery = url.pathname + url.search;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      accept: "application/json",
      "x-llmxt-timestamp": String(timestamp),
      "x-llmxt-signature": await signRequest(hmacSecret, timestamp, "GET", pathAndQuery),
    };
    if (cookie) headers.cookie = cookie;
    let response: Response;
    try {
      response = await fetch(url, {
        headers,
        cache: "no-store",
        redirect: "manual",
        signal: AbortSignal.timeout(limit),
      });
    } catch (error) {
      const name = (error as { name?: string } | null)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw new EntitlementError("timeout", `entitlement check timed out after ${limit} ms`, undefined, error);
      }
      throw new EntitlementError("network", `entitlement check failed: ${String(error)}`, undefined, error);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new EntitlementError("status", `entitlement check answered ${response.status}`, response.status);
    }
    let body: Partial<Entitlement>;
    try {
      body = (await response.json()) as Partial<Entitlement>;
    } catch (error) {
      const name = (error as { name?: string } | null)?.name;
      const kind = name === "TimeoutError" || name === "AbortError" ? "timeout" : "network";
      throw new EntitlementError(kind, "entitlement check: unreadable answer", response.status, error);
    }
    return {
      pro: body.pro === true,
      plan: body.plan ?? null,
      status: body.status ?? null,
      expires_at: body.expires_at ?? null,
      source: body.source === "cookie" ? "cookie" : "database",
      scope: body.scope ?? null,
      features: body.features ?? [],
      billing: body.billing ?? null,
      ...(typeof body.pass === "string" ? { pass: body.pass } : {}),
      ...(body.usage ? { usage: body.usage } : {}),
      setCookie: setCookiesOf(response.headers),
    };
  }

  async function checkoutUrl({ product, email, expiresIn = 3600 }: CheckoutOptions): Promise<string> {
    const params = new URLSearchParams({ product });
    if (email !== undefined) {
      const expires = Math.floor(Date.now() / 1000) + expiresIn;
      params.set("email", normaliseEmail(email));
      params.set("expires", String(expires));
      params.set("sig", await checkoutSignature(hmacSecret, product, email, expires));
    }
    return `${base}/upgrade/checkout?${params}`;
  }

  const usage = usageClient(
    base,
    (timestamp, path, body) => signRequest(hmacSecret, timestamp, "POST", path, body),
    timeoutMs,
  );
  return { apiUrl: base, entitlement, checkoutUrl, usage };
}
