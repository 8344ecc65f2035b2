import { headers } from "next/headers";
import { getEntitlement } from "@llmxt/pro/next";
import { llmxt } from "../client";

export const dynamic = "force-dynamic";

// Only reached through the middleware, which lets Pro visitors alone through.
export default async function ProPage() {
  const answer = await getEntitlement(await headers(), llmxt()).catch(() => null);
  return (
    <main>
      <h1>Pro content</h1>
      <p id="pro-content">Welcome to the Pro area{answer?.plan ? ` (${answer.plan})` : ""}.</p>
      {answer?.features.length ? <p id="features">Unlocked: {answer.features.join(", ")}</p> : null}
      <p><a href="/">Home</a> · <a href="/upgrade/billing">Manage billing</a></p>
    </main>
  );
}
