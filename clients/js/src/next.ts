/**
 * `@llmxt/pro/next`: Next.js helpers. `proMiddleware` gates paths in `middleware.ts` (edge
 * runtime); `getEntitlement` answers in route handlers and server components.
 */
import { NextResponse, type NextRequest } from "next/server";
import { createClient, type Client, type EntitlementAnswer } from "./index.js";
import { matchesPath, type PathMatcher } from "./paths.js";

export { matchesPath, type PathMatcher };

export interface ProMiddlewareOptions {
  matcher: PathMatcher;
  /** Where visitors without Pro go, e.g. `/?upgrade=required`. */
  redirectTo: string;
  /** Defaults to a client of `LLMXT_API_URL` signed with `HMAC_SECRET`. */
  client?: Client;
}

function clientFromEnv(): Client {
  const apiUrl = process.env.LLMXT_API_URL;
  const hmacSecret = process.env.HMAC_SECRET;
  if (!apiUrl || !hmacSecret) {
    throw new Error("@llmxt/pro: set LLMXT_API_URL and HMAC_SECRET, or pass a client");
  }
  return createClient({ apiUrl, hmacSecret });
}

/**
 * Middleware letting visitors with Pro through the matched paths and redirecting the others to
 * `redirectTo`. The visitor's whole Cookie header is forwarded, and every cookie the API sets
 * (a refreshed one) is passed back on the response. A failed check counts as not Pro.
 */
export function proMiddleware({ matcher, redirectTo, client }: ProMiddlewareOptions) {
  let api = client;
  return async function middleware(request: NextRequest): Promise<NextResponse> {
    if (!matchesPath(request.nextUrl.pathname, matcher)) return NextResponse.next();
    api ??= clientFromEnv();
    let answer: EntitlementAnswer | undefined;
    try {
      answer = await api.entitlement({ cookie: request.headers.get("cookie") });
    } catch (error) {
      console.error("@llmxt/pro: entitlement check failed, treating the visitor as not Pro:", error);
    }
    const response = answer?.pro
      ? NextResponse.next()
      : NextResponse.redirect(new URL(redirectTo, request.url));
    response.headers.set("cache-control", "private, no-store");
    withSetCookie(response, answer);
    return response;
  };
}

/** Anything carrying request headers: a `Request`, `await headers()` of `next/headers`, … */
export type HeaderSource = Request | { get(name: string): string | null };

/**
 * The visitor's entitlement, for route handlers (`getEntitlement(request)`) and server
 * components (`getEntitlement(await headers())`). A server component cannot set cookies: gate
 * its path with the middleware, which passes refreshed cookies on; in a route handler, pass
 * `setCookie` on with `withSetCookie(response, answer)`.
 */
export function getEntitlement(source: HeaderSource, client: Client = clientFromEnv()): Promise<EntitlementAnswer> {
  const headers = source instanceof Request ? source.headers : source;
  return client.entitlement({ cookie: headers.get("cookie") });
}

/** Appends every `Set-Cookie` of an answer to a response; returns the response. */
export function withSetCookie<R extends Response>(response: R, answer: { setCookie: string[] } | undefined): R {
  for (const cookie of answer?.setCookie ?? []) response.headers.append("set-cookie", cookie);
  return response;
}
