// What the browser tests share: free ports, waiting for a server, and signed webhook
// deliveries (signed by llmxt-admin, our one signing code).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const bin = (name) => join(root, "target", "debug", name);

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

export async function waitForServer(url) {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`no answer at ${url}`);
}

// Sends a payment.succeeded for `paymentId` to `site`'s webhook, changed by `edit(data)`.
export async function deliverPayment({ site, env }, paymentId, email, edit = () => {}) {
  const fixture = JSON.parse(readFileSync(join(root, "fixtures/dodo/payment.succeeded.cli-generator.json"), "utf8"));
  fixture.data.payment_id = paymentId;
  fixture.data.customer.email = email;
  fixture.timestamp = new Date().toISOString();
  edit(fixture.data);
  const body = JSON.stringify(fixture);
  const file = join(mkdtempSync(join(tmpdir(), "llmxt-e2e-")), "body.json");
  writeFileSync(file, body);
  const id = `msg_e2e_${paymentId}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = execFileSync(bin("llmxt-admin"), ["sign-webhook", "--id", id, "--timestamp", timestamp, "--body-file", file], { env })
    .toString()
    .trim();
  const response = await fetch(`${site}/api/webhooks/dodo`, {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature },
    body,
  });
  assert.equal(response.status, 200, await response.text());
}
