import { proMiddleware } from "@llmxt/pro/next";

// Visitors without Pro who open /pro (or anything under it) go back home. The check forwards
// their Cookie header to the API (signed with HMAC_SECRET) and passes a refreshed cookie on.
export const middleware = proMiddleware({ matcher: "/pro/:path*", redirectTo: "/?upgrade=required" });

export const config = { matcher: ["/pro/:path*"] };
