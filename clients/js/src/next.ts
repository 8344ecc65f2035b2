/**
 * `@llmxt/pro/next`: Next.js helpers. `proMiddleware` gates paths in `middleware.ts` (edge
 * runtime); `getEntitlement` answers in route handlers and server components.
 */
import { NextResponse, type NextRequest } from "next/server";
import {
  createClient,
  cookieValues,
  passFromCookies,
  PASS_COOKIE,
  type Client,
  type EntitlementAnswer,
  type EntitlementError,
  type Jwks,
  type VerifiedPass,
} from "./index.js";
import { matchesPath, type PathMatcher } from "./paths.js";

export { matchesPath, type PathMatcher };

/** How the middleware and `getEntitlement` find and check the edge pass. */
export interface PassOptions {
  /** Defaults to a client of `LLMXT_API_URL` signed with `HMAC_SECRET`. */
  client?: Client;
  /** The key set itself, instead of fetching it. */
  keys?: Jwks;
  /** Where the key set is; defaults to `{client's apiUrl}/api/entitlement/keys`. */
  keysUrl?: string;
  /**
   * The site's origin, which a pass must be issued by and to. Defaults to
   * `NEXT_PUBLIC_SITE_URL`, else the request's origin. A pass for another origin is ignored
   * (the API is asked instead).
   */
  siteUrl?: string;
  /** Seconds a pass stays fresh past its `exp`, default 5. */
  leewaySeconds?: number;
  /** Milliseconds to wait for the API (middleware default 1500, `getEntitlement` the client's). */
  timeoutMs?: number;
}

export interface ProMiddlewareOptions extends PassOptions {
  matcher: PathMatcher;
  /** Where visitors without Pro go, e.g. `/?upgrade=required`. */
  redirectTo: string;
  /**
   * Path to rewrite to when the API cannot be reached and no pass stands in for a visitor who
   * has a Pro cookie. Default: a 503 page saying access could not be checked.
   */
  unavailableTo?: string;
}

/** `x-llmxt-decision` of a gated response. */
export type Decision = "none" | "pass" | "origin" | "stale" | "unavailable";

function clientFromEnv(): Client {
  const apiUrl = process.env.LLMXT_API_URL;
  const hmacSecret = process.env.HMAC_SECRET;
  if (!apiUrl || !hmacSecret) {
    throw new Error("@llmxt/pro: set LLMXT_API_URL and HMAC_SECRET, or pass a client");
  }
  return createClient({ apiUrl, hmacSecret });
}

const hasProCookie = (cookie: string | null) =>
  cookieValues(cookie, "__Host-llmxt_pro").length + cookieValues(cookie, "llmxt_pro").length > 0;

/** The visitor's usable pass, if the cookie carries one and there are keys to check it with. */
function readPass(cookie: string | null, options: PassOptions, origin?: string) {
  const apiUrl = options.client ? options.client.apiUrl : process.env.LLMXT_API_URL?.replace(/\/+$/, "");
  const keysUrl = options.keysUrl ?? (options.keys || !apiUrl ? undefined : apiUrl + "/api/entitlement/keys");
  if (!cookieValues(cookie, PASS_COOKIE).length || (!options.keys && !keysUrl)) return null;
  const audience = options.siteUrl ?? process.env.NEXT_PUBLIC_SITE_URL ?? origin;
  return passFromCookies(cookie, { keys: options.keys, keysUrl, audience, leewaySeconds: options.leewaySeconds });
}

const UNAVAILABLE =
  '<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Please try again</title>' +
  "<main><h1>We could not check your access just now</h1><p>This is on our side. Please reload the page in a minute.</p></main>";

/**
 * Middleware letting visitors with Pro through the matched paths and redirecting the others to
 * `redirectTo`. In order: no Pro cookie and no pass → redirect, no call; a fresh pass decides
 * alone; else the API is asked (the whole Cookie header forwarded, every `Set-Cookie` passed
 * back); if it is unavailable (timeout, network error, 5xx), a Pro pass within its stale window
 * lets the visitor through, and a visitor with a Pro cookie gets `unavailableTo` (or a 503
 * page), never the redirect; any other non-2xx (400, 401, 403…) redirects. Every gated response
 * carries `x-llmxt-decision`.
 */
export function proMiddleware(options: ProMiddlewareOptions) {
  const { matcher, redirectTo, unavailableTo, timeoutMs = 1500 } = options;
  let api = options.client;
  const client = () => (api ??= clientFromEnv());
  return async function middleware(request: NextRequest): Promise<NextResponse> {
    if (!matchesPath(request.nextUrl.pathname, matcher)) return NextResponse.next();
    const cookie = request.headers.get("cookie");
    const redirect = () => NextResponse.redirect(new URL(redirectTo, request.url));
    const decide = (decision: Decision, response: NextResponse, answer?: EntitlementAnswer) => {
      response.headers.set("cache-control", "private, no-store");
      response.headers.set("x-llmxt-decision", decision);
      return withSetCookie(response, answer);
    };

    const proCookie = hasProCookie(cookie);
    if (!proCookie && !cookieValues(cookie, PASS_COOKIE).length) return decide("none", redirect());
    const pass = await readPass(cookie, options, request.nextUrl.origin);
    if (pass?.fresh) return decide("pass", pass.entitlement.pro ? NextResponse.next() : redirect());
    try {
      const answer = await client().entitlement({ cookie }, { timeoutMs });
      return decide("origin", answer.pro ? nextWithCookies(request, answer.setCookie) : redirect(), answer);
    } catch (error) {
      console.error("@llmxt/pro: entitlement check failed:", error);
      // The API answered, with a non-2xx below 500 (401 wrong secret, 400, 403…): not unavailable.
      const e = error as EntitlementError;
      if (e?.kind === "status" && e.status! < 500) return decide("none", redirect());
    }
    if (pass?.stale) return decide("stale", NextResponse.next());
    if (!proCookie) return decide("none", redirect());
    return decide(
      "unavailable",
      unavailableTo
        ? NextResponse.rewrite(new URL(unavailableTo, request.url))
        : new NextResponse(UNAVAILABLE, {
            status: 503,
            headers: { "content-type": "text/html; charset=utf-8", "retry-after": "60" },
          }),
    );
  };
}

/**
 * `NextResponse.next()` whose request, the one the page renders with, carries the cookies the
 * API just set (the new pass, a refreshed cookie) instead of the old ones, and not those it
 * removed: the page's `getEntitlement` then decides from the new pass, with no second call.
 */
function nextWithCookies(request: NextRequest, setCookie: string[]): NextResponse {
  const set = new Map<string, string>();
  for (const line of setCookie) {
    const [pair, ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    // A removal (the API's are `name=; Max-Age=0`) is kept as "": the page sees no such cookie.
    const gone = attributes.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
    if (eq > 0) set.set(pair.slice(0, eq).trim(), gone ? "" : pair.slice(eq + 1).trim());
  }
  if (!set.size) return NextResponse.next();
  const cookies = (request.headers.get("cookie") ?? "").split(";").filter((part) => part.trim() && !set.has(part.split("=")[0].trim()));
  for (const [name, value] of set) if (value) cookies.push(`${name}=${value}`);
  const headers = new Headers(request.headers);
  headers.set("cookie", cookies.map((part) => part.trim()).join("; "));
  return NextResponse.next({ request: { headers } });
}

/** Anything carrying request headers: a `Request`, `await headers()` of `next/headers`, … */
export type HeaderSource = Request | { get(name: string): string | null };

const noAnswer = (): EntitlementAnswer => ({
  pro: false,
  plan: null,
  status: null,
  expires_at: null,
  source: "cookie",
  scope: null,
  features: [],
  billing: null,
  setCookie: [],
});

const fromPass = (pass: VerifiedPass): EntitlementAnswer => ({ ...pass.entitlement, setCookie: [] });

/**
 * The visitor's entitlement, for route handlers (`getEntitlement(request)`) and server
 * components (`getEntitlement(await headers())`). A fresh pass answers without calling the API
 * (`source: "pass"`); no Pro cookie and no pass answers "not Pro" without a call; if the API
 * cannot answer (timeout, network, 5xx), a Pro pass within its stale window answers, else the
 * error is thrown (a 4xx is always thrown). A server
 * component cannot set cookies: gate its path with the middleware, which passes refreshed cookies
 * on; in a route handler, pass `setCookie` on with `withSetCookie(response, answer)`.
 */
export async function getEntitlement(source: HeaderSource, options: Client | PassOptions = {}): Promise<EntitlementAnswer> {
  const opts: PassOptions = typeof (options as Client).entitlement === "function" ? { client: options as Client } : (options as PassOptions);
  const headers = source instanceof Request ? source.headers : source;
  const cookie = headers.get("cookie");
  let api = opts.client;
  const client = () => (api ??= clientFromEnv());
  if (!hasProCookie(cookie) && !cookieValues(cookie, PASS_COOKIE).length) return noAnswer();
  const host = headers.get("x-forwarded-host") ?? headers.get("host");
  const origin =
    source instanceof Request ? new URL(source.url).origin : host ? `${headers.get("x-forwarded-proto") ?? "https"}://${host}` : undefined;
  const pass = await readPass(cookie, opts, origin);
  if (pass?.fresh) return fromPass(pass);
  try {
    return await client().entitlement({ cookie }, { timeoutMs: opts.timeoutMs });
  } catch (error) {
    // Only an API that could not answer (timeout, network, 5xx) lets a stale pass stand in.
    const e = error as EntitlementError;
    if (pass?.stale && !(e?.kind === "status" && e.status! < 500)) return fromPass(pass);
    throw error;
  }
}

/** Appends every `Set-Cookie` of an answer to a response; returns the response. */
export function withSetCookie<R extends Response>(response: R, answer: { setCookie: string[] } | undefined): R {
  for (const cookie of answer?.setCookie ?? []) response.headers.append("set-cookie", cookie);
  return response;
}
