// Helpers shared by the browser tests and clients/js's tests: free ports, waiting for a
// server, signed webhook deliveries (signed by llmxt-admin, our one signing code) and
// HS256 cookies signed independently of the Rust code.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

/** The repository root. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Path of a debug binary built by cargo. */
export const bin = (name) => join(root, "target", "debug", name);

/** A loopback port nobody listens on right now. */
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

/** Is this loopback port free? */
export function portIsFree(port) {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** Resolves once `url` answers anything; fails after `seconds`. */
export async function waitForServer(url, name, seconds = 15) {
  for (let i = 0; i < seconds * 10; i++) {
    try {
      await fetch(url, { redirect: "manual" });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${name} did not answer at ${url} within ${seconds} s`);
}

/**
 * POSTs `fixtures/dodo/<fixtureName>` with `payment_id` and the customer's email replaced
 * (and `edit(data)` applied), signed by `llmxt-admin sign-webhook` with env's
 * DODO_WEBHOOK_SECRET, and expects 200.
 */
export async function deliverEvent({ url, env }, fixtureName, paymentId, email, edit = () => {}) {
  const fixture = JSON.parse(readFileSync(join(root, "fixtures/dodo", fixtureName), "utf8"));
  fixture.data.payment_id = paymentId;
  fixture.data.customer.email = email;
  fixture.timestamp = new Date().toISOString();
  edit(fixture.data);
  const body = JSON.stringify(fixture);
  const file = join(mkdtempSync(join(tmpdir(), "llmxt-event-")), "body.json");
  writeFileSync(file, body);
  const id = `msg_${fixture.type}_${paymentId}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = execFileSync(bin("llmxt-admin"), ["sign-webhook", "--id", id, "--timestamp", timestamp, "--body-file", file], { env })
    .toString()
    .trim();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature },
    body,
  });
  assert.equal(response.status, 200, await response.text());
}

/** An HS256 JWT as jsonwebtoken expects it. */
export function hs256(claims, key) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

/**
 * An account cookie's token (no `grants`: it covers every grant of the email) issued
 * `daysAgo` days ago with a 30-day lifetime, for the site origin `aud`.
 */
export function accountToken({ email, aud, key, daysAgo, plan = "professional" }) {
  const iat = Math.floor(Date.now() / 1000) - daysAgo * 86400;
  return hs256({ sub: email, plan, iat, auth_time: iat, exp: iat + 30 * 86400, aud }, key);
}

/** Stops a child process started by a test and waits for it. */
export async function stop(child) {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill("SIGINT");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}

/**
 * The local addresses listening on TCP `port`, from /proc/net/tcp and tcp6 (Linux), as
 * printable addresses: "127.0.0.1", "::1", "::" …
 */
export function listenAddresses(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const found = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "0A") continue; // LISTEN
      const [hex, portHex] = fields[1].split(":");
      if (portHex !== hexPort) continue;
      // The kernel prints each 32-bit word in host (little-endian) byte order.
      const bytes = hex.match(/.{8}/g).flatMap((word) => word.match(/../g).reverse().map((b) => parseInt(b, 16)));
      found.push(bytes.length === 4 ? bytes.join(".") : ipv6(bytes));
    }
  }
  return found;
}

function ipv6(bytes) {
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.slice(12).join(".")}`;
  }
  const words = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return words.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::");
}
