// The API is served under this site's own origin, so its cookie is first-party: /api/* and
// /upgrade/* go to the llmxt API (local-api here; the deployed API Gateway in production).
// /api/* is a rewrite; /upgrade/* (pages buyers see) goes through app/upgrade/[[...path]],
// which forwards the same way and shows this site's own page when the API cannot be reached.
// Both are fixed at build time: LLMXT_API_ORIGIN is read by `next build`.
const api = (process.env.LLMXT_API_ORIGIN ?? "http://127.0.0.1:3001").replace(/\/+$/, "");

/** @type {import('next').NextConfig} */
const nextConfig = {
  poweredByHeader: false,
  env: { LLMXT_API_ORIGIN: api },
  async rewrites() {
    return [{ source: "/api/:path*", destination: `${api}/api/:path*` }];
  },
};

export default nextConfig;
