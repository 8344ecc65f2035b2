import { headers } from "next/headers";
import { getEntitlement } from "@llmxt/pro/next";
import { llmxt } from "./client";

export const dynamic = "force-dynamic";

// What ?upgrade=… means when the API (or the middleware) sends a visitor home, in this site's
// words. Anything else is ignored: the query is the visitor's to edit.
const notices: Record<string, string> = {
  success: "Thank you: Pro is yours on this browser.",
  restored: "You are signed in on this device.",
  required: "That page needs Pro.",
  plan_changed: "Your plan has changed. If the new plan does not show below yet, reload in a moment.",
  plan_scheduled: "Your plan change is booked: it starts on your next billing date, and your current plan stays until then.",
};

export default async function Home({ searchParams }: { searchParams: Promise<{ upgrade?: string }> }) {
  const { upgrade } = await searchParams;
  const client = llmxt();
  const [answer, buyUrl] = await Promise.all([
    getEntitlement(await headers(), client).catch(() => null),
    client.checkoutUrl({ product: process.env.LLMXT_PRODUCT ?? "pdt_test" }),
  ]);
  return (
    <main>
      <h1>Example site</h1>
      {upgrade && Object.hasOwn(notices, upgrade) ? <p id="notice" role="status">{notices[upgrade]}</p> : null}
      <p id="status">{answer === null ? "Could not check Pro right now" : answer.pro ? `Pro (${answer.plan})` : "Not Pro"}</p>
      <ul>
        <li><a id="buy" href={buyUrl}>Buy Pro</a></li>
        <li><a id="pro" href="/pro">Pro content</a></li>
        <li><a id="billing" href="/upgrade/billing">Manage billing</a></li>
        <li><a id="sign-in" href="/upgrade/restore">Sign in on this device</a></li>
      </ul>
    </main>
  );
}
