// The API is served under this site's own origin, so its cookie is first-party: /api/* and
// /upgrade/* go to the llmxt API (local-api here; the deployed API Gateway in production).
// Next.js fixes rewrites at build time, so LLMXT_API_ORIGIN is read by `next build`.
const api = (process.env.LLMXT_API_ORIGIN ?? "http://127.0.0.1:3001").replace(/\/+$/, "");

/** @type {import('next').NextConfig} */
const nextConfig = {
  poweredByHeader: false,
  async rewrites() {
    return [
      { source: "/api/:path*", destination: `${api}/api/:path*` },
      { source: "/upgrade/:path*", destination: `${api}/upgrade/:path*` },
    ];
  },
};

export default nextConfig;
