import { NextResponse, type NextRequest } from "next/server";
import { proMiddleware } from "@llmxt/pro/next";

// Two steps, in this order, for every request:
// 1. One host only. A visitor on another name of this server (127.0.0.1 instead of localhost,
//    www.example.com instead of example.com) is sent to the host of NEXT_PUBLIC_SITE_URL
//    before anything else: the API's cookie belongs to that host alone, and the API sends
//    buyers back there, so a visit elsewhere would look signed out.
// 2. The Pro gate: visitors without Pro who open /pro (or anything under it) go back home. The
//    check forwards their Cookie header to the API (signed with HMAC_SECRET) and passes a
//    refreshed cookie on. Other paths go through untouched (the gate checks its own matcher).
const proGate = proMiddleware({ matcher: "/pro/:path*", redirectTo: "/?upgrade=required" });

export async function middleware(request: NextRequest) {
  return toSiteHost(request) ?? proGate(request);
}

// Everything except Next's build files (content-hashed, the same on every host).
export const config = { matcher: ["/((?!_next/static/|_next/image).*)"] };

let site: URL | undefined;
const LOOPBACK_IP = /^(127(\.\d{1,3}){3}|\[::1\])$/;
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** NEXT_PUBLIC_SITE_URL, read once: the only origin visitors are sent to. */
function siteUrl(): URL {
  if (site) return site;
  const value = process.env.NEXT_PUBLIC_SITE_URL;
  let parsed: URL | undefined;
  try {
    parsed = value ? new URL(value) : undefined;
  } catch {}
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:")) {
    throw new Error(`NEXT_PUBLIC_SITE_URL must be the site's origin, like https://example.com (got ${JSON.stringify(value ?? null)})`);
  }
  return (site = parsed);
}

/**
 * A redirect to the same path and query on the site's host when the visitor used another
 * host, else undefined. The Host header only tells whether this is the site's host; the
 * target is always NEXT_PUBLIC_SITE_URL's origin. (Next.js builds request.url from the
 * address it listens on, not from the Host header, so request.url cannot tell.) A proxy in
 * front of this server must pass the visitor's Host header through.
 */
function toSiteHost(request: NextRequest): NextResponse | undefined {
  const canonical = siteUrl();
  const host = request.headers.get("host")?.toLowerCase();
  if (host === canonical.host) return undefined;
  const target = new URL(canonical.origin);
  const requested = new URL(request.url);
  target.pathname = requested.pathname; // set, not resolved: "//other.example" stays a path
  target.search = requested.search;
  if (LOOPBACK_IP.test(canonical.hostname)) {
    // Next.js shortens a redirect to the address it listens on into a relative one ("/path"),
    // which would bring the visitor straight back here; this site listens on 127.0.0.1
    // (package.json). So a site URL on a loopback address gets a page that moves on instead.
    const href = escapeHtml(target.href);
    const page = `<!doctype html><html lang="en"><head><meta http-equiv="refresh" content="0; url=${href}"><title>Moved</title></head><body><p>This site is at <a href="${href}">${href}</a>.</p></body></html>`;
    return new NextResponse(page, { status: 421, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" } });
  }
  // Permanent for a real site (search engines keep one host); temporary on http:// (local),
  // so that a browser does not remember it for whatever runs on that port next.
  const response = NextResponse.redirect(target, canonical.protocol === "https:" ? 308 : 307);
  response.headers.set("cache-control", "no-store");
  return response;
}
