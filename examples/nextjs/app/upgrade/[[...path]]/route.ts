// /upgrade/* (checkout, success, billing, plan, restore: the pages buyers see) forwarded to
// the llmxt API, like the /api/* rewrite in next.config.mjs: same path and query, the
// visitor's headers and body, the API's answer as it is (redirects and every Set-Cookie
// included). The difference: when the API cannot be reached, buyers get this site's own page
// ("Billing is unavailable right now", 502) instead of a bare "Internal Server Error".
import { bodyCss } from "../../site-style";

export const dynamic = "force-dynamic";

// Fixed by `next build` (next.config.mjs, env), the same origin as the /api/* rewrite.
const api = process.env.LLMXT_API_ORIGIN;

// Hop-by-hop headers (RFC 9110, 7.6.1) and those fetch sets itself. (fetch also sends its own
// Sec-Fetch-Mode; the API reads Sec-Fetch-Site and Origin, which pass unchanged.)
const notForwarded = new Set(["host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect"]);
// fetch has already decoded the body, so its encoding and length no longer apply.
const notReturned = new Set(["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-encoding", "content-length"]);

async function forward(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers();
  request.headers.forEach((value, name) => {
    if (!notForwarded.has(name)) headers.append(name, value);
  });
  headers.set("x-forwarded-host", request.headers.get("host") ?? "");
  const method = request.method;
  const body = method === "GET" || method === "HEAD" ? undefined : await request.arrayBuffer();
  let answer: Response;
  try {
    answer = await fetch(`${api}${url.pathname}${url.search}`, {
      method,
      headers,
      body,
      redirect: "manual",
      cache: "no-store",
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    console.error(`/upgrade: no answer from the API at ${api} for ${method} ${url.pathname}:`, error);
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    return unavailable(url, timedOut ? 504 : 502);
  }
  // A gateway's own error (API Gateway's JSON "Service Unavailable", a proxy's 502) is no page
  // for a browser; the API's pages are HTML and pass through.
  const wantsPage = request.headers.get("accept")?.includes("text/html") ?? false;
  const isPage = answer.headers.get("content-type")?.startsWith("text/html") ?? false;
  if (answer.status >= 500 && wantsPage && !isPage) {
    console.error(`/upgrade: the API at ${api} answered ${answer.status} for ${method} ${url.pathname}`);
    await answer.body?.cancel();
    return unavailable(url, 502);
  }
  const returned = new Headers();
  answer.headers.forEach((value, name) => {
    if (!notReturned.has(name)) returned.append(name, value); // each Set-Cookie on its own
  });
  const noBody = [204, 205, 304].includes(answer.status);
  return new Response(noBody ? null : answer.body, { status: answer.status, statusText: answer.statusText, headers: returned });
}

export { forward as GET, forward as HEAD, forward as POST, forward as PUT, forward as PATCH, forward as DELETE, forward as OPTIONS };

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The site's own page for "the API did not answer": what happened, try again, home. */
function unavailable(url: URL, status: number): Response {
  const again = escapeHtml(url.pathname + url.search);
  const justPaid =
    url.pathname === "/upgrade/success"
      ? "<p>If you have just paid, nothing is lost: open this page again in a minute, or sign in with your email later.</p>"
      : "";
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Billing is unavailable right now · Example site</title>
</head>
<body style="${bodyCss}">
<main>
<h1>Billing is unavailable right now</h1>
<p id="unavailable">We could not reach our billing service. Please try again in a minute.</p>
${justPaid}<p><a id="again" href="${again}">Try again</a> · <a id="home" href="/">Back to the home page</a></p>
</main>
</body>
</html>
`;
  return new Response(html, {
    status,
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
  });
}
