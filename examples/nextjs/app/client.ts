import { createClient } from "@llmxt/pro";

/** The API client, on the server only: HMAC_SECRET never reaches the browser. */
export function llmxt() {
  return createClient({ apiUrl: process.env.LLMXT_API_URL!, hmacSecret: process.env.HMAC_SECRET! });
}
