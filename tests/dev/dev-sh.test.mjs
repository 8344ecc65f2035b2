// scripts/dev.sh as a newcomer runs it: on the four port variables only, every service on
// loopback, the banner once the site answers, and Ctrl-C (SIGINT to its process group, as a
// terminal sends it) stopping everything it started within 5 s, every port free again.
// Needs Java, Node and the debug binaries (scripts/test.sh builds them before this runs).
// Linux: processes and sockets are read from /proc.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const devSh = join(root, "scripts", "dev.sh");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Ports below the kernel's ephemeral range (32768 and up), so that no outgoing connection of
// another program on this machine takes one between our pick and dev.sh's start.
async function freePorts(count) {
  const ports = new Set();
  while (ports.size < count) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await portIsFree(port)) ports.add(port);
  }
  return [...ports];
}

/** Whether nothing listens on 127.0.0.1:port (we can listen there ourselves). */
function portIsFree(port) {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** The live processes of session `sid` (exited ones nobody reaped are not counted). */
function sessionProcesses(sid) {
  const found = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const [state, , , session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(session) === sid && state !== "Z") found.push({ pid: Number(entry), comm });
  }
  return found;
}

/** Local addresses listening on `port`, from /proc/net/tcp and tcp6, as hex. */
function listeners(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const found = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "0A") continue; // LISTEN
      const [address, portHex] = fields[1].split(":");
      if (portHex === hexPort) found.push(address);
    }
  }
  return found;
}

// 127.0.0.1 in /proc/net/tcp, and as ::ffff:127.0.0.1 or ::1 in tcp6.
const LOOPBACK = new Set([
  "0100007F",
  "0000000000000000FFFF00000100007F",
  "00000000000000000000000001000000",
]);

function environment(extra) {
  const env = { DEV_ENV_FILE: extra.DEV_ENV_FILE };
  for (const name of ["PATH", "HOME", "USER", "LANG", "TMPDIR", "CARGO_HOME", "RUSTUP_HOME", "JAVA_HOME"]) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return { ...env, ...extra };
}

/** Starts dev.sh in its own session (as a terminal's foreground job); collects stderr. */
function startDev(env) {
  const child = spawn(devSh, [], { cwd: root, env, detached: true, stdio: ["ignore", "ignore", "pipe"] });
  child.stderrText = "";
  child.stderr.on("data", (chunk) => (child.stderrText += chunk));
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return child;
}

function settingsFile() {
  const dir = mkdtempSync(join(tmpdir(), "llmxt-dev-"));
  const file = join(dir, "env");
  copyFileSync(join(root, ".env.example"), file);
  return { dir, file };
}

test("dev.sh refuses, in one line, a port another program holds, conflicting settings and a silent endpoint", async () => {
  const settings = settingsFile();
  const [port, ddbPort, sesPort, dodoPort] = await freePorts(4);
  const squatter = net.createServer().listen(dodoPort, "127.0.0.1");
  try {
    const ports = {
      DEV_ENV_FILE: settings.file,
      PORT: String(port),
      DYNAMODB_LOCAL_PORT: String(ddbPort),
      SES_LOCAL_PORT: String(sesPort),
      DODO_LOCAL_PORT: String(dodoPort),
    };
    const refused = startDev(environment(ports));
    const { code } = await refused.exited;
    assert.equal(code, 1);
    const lines = refused.stderrText.trim().split("\n");
    assert.equal(lines.length, 1, refused.stderrText);
    assert.match(lines[0], new RegExp(`^dev\\.sh: port ${dodoPort} \\(DODO_LOCAL_PORT, for dodo-local\\) is in use by another program`));
    assert.ok(await portIsFree(ddbPort), "nothing was started before the refusal");

    const conflicting = startDev(environment({ ...ports, DYNAMODB_ENDPOINT: "http://127.0.0.1:1" }));
    assert.equal((await conflicting.exited).code, 1);
    assert.equal(
      conflicting.stderrText.trim(),
      `dev.sh: both DYNAMODB_ENDPOINT=http://127.0.0.1:1 and DYNAMODB_LOCAL_PORT=${ddbPort} are set (in .env or the environment): remove one`,
    );

    // A DynamoDB of your own (an explicit endpoint) that does not answer: one line, not a dump.
    const { DYNAMODB_LOCAL_PORT, ...others } = ports;
    const unreachable = startDev(environment({ ...others, DODO_LOCAL_PORT: String(ddbPort), DYNAMODB_ENDPOINT: "http://127.0.0.1:1" }));
    assert.equal((await unreachable.exited).code, 1);
    assert.match(unreachable.stderrText, /^dev\.sh: nothing answers at DYNAMODB_ENDPOINT=http:\/\/127\.0\.0\.1:1: [^\n]*\n$/);
  } finally {
    squatter.close();
    rmSync(settings.dir, { recursive: true, force: true });
  }
});

test("a first dev.sh says the build takes minutes before cargo starts, and shows cargo's progress", async () => {
  // A first run: no binaries where cargo puts them; a stand-in cargo that prints what real
  // cargo prints unless told --quiet, and fails at once (so nothing is compiled or started).
  const settings = settingsFile();
  const fake = join(settings.dir, "bin");
  mkdirSync(fake);
  writeFileSync(
    join(fake, "cargo"),
    `#!/bin/sh\necho "cargo $*" >&2\ncase " $* " in *" --quiet "*) ;; *) echo "   Compiling llmxt-core v0.1.0" >&2 ;; esac\nexit 101\n`,
    { mode: 0o755 },
  );
  const [port, ddbPort, sesPort, dodoPort] = await freePorts(4);
  try {
    const dev = startDev(
      environment({
        DEV_ENV_FILE: settings.file,
        PATH: `${fake}:${process.env.PATH}`,
        CARGO_TARGET_DIR: join(settings.dir, "target"),
        PORT: String(port),
        DYNAMODB_LOCAL_PORT: String(ddbPort),
        SES_LOCAL_PORT: String(sesPort),
        DODO_LOCAL_PORT: String(dodoPort),
      }),
    );
    const { code } = await dev.exited;
    assert.equal(code, 101, dev.stderrText);
    const lines = dev.stderrText.trim().split("\n");
    assert.match(lines[0], /^== first run: building local-api, llmxt-admin and dodo-local takes a few minutes/);
    assert.match(lines[1], /^cargo build /);
    assert.doesNotMatch(lines[1], /--quiet/);
    assert.match(lines[2], /Compiling/);
    assert.equal(lines.length, 3, dev.stderrText);
    for (const p of [port, ddbPort, sesPort, dodoPort]) assert.ok(await portIsFree(p), `port ${p} in use: something started`);
  } finally {
    rmSync(settings.dir, { recursive: true, force: true });
  }
});

test("dev.sh on free ports: loopback only, banner once the site answers, Ctrl-C leaves nothing", async () => {
  const settings = settingsFile();
  const [port, ddbPort, sesPort, dodoPort] = await freePorts(4);
  const ports = [port, ddbPort, sesPort, dodoPort];
  // An SES emulator an earlier run left on the port: stopped, not reused.
  execFileSync(join(root, "scripts", "ses-local.sh"), ["start", String(sesPort)], { stdio: "ignore" });
  const leftover = Number(readFileSync(join(root, ".cache", "ses-local", `ses-${sesPort}.pid`), "utf8"));
  const dev = startDev(
    environment({
      DEV_ENV_FILE: settings.file,
      PORT: String(port),
      DYNAMODB_LOCAL_PORT: String(ddbPort),
      SES_LOCAL_PORT: String(sesPort),
      DODO_LOCAL_PORT: String(dodoPort),
    }),
  );
  try {
    const deadline = Date.now() + 180_000;
    while (!dev.stderrText.includes("Open the site") && dev.exitCode === null && Date.now() < deadline) {
      await sleep(100);
    }
    assert.ok(dev.stderrText.includes("Open the site"), `no banner:\n${dev.stderrText}`);
    // Built with cargo's own output (its "Finished" line) before the banner.
    const building = dev.stderrText.indexOf("== building local-api, llmxt-admin and dodo-local (only what changed)");
    assert.ok(building >= 0 && building < dev.stderrText.indexOf("Open the site"), dev.stderrText);
    assert.match(dev.stderrText.slice(building), /^\s+Finished /m);

    // The banner came only once local-api answered; its hints carry the real ports.
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
    assert.ok(dev.stderrText.includes(`http://localhost:${port}/`), dev.stderrText);
    assert.ok(dev.stderrText.includes(`--url http://127.0.0.1:${port}/api/webhooks/dodo`), dev.stderrText);
    assert.ok(dev.stderrText.includes(`DYNAMODB_ENDPOINT=http://127.0.0.1:${ddbPort} `), dev.stderrText);
    assert.ok(dev.stderrText.includes(`http://127.0.0.1:${dodoPort}`), dev.stderrText);
    assert.ok(dev.stderrText.includes(`http://127.0.0.1:${sesPort}/`), dev.stderrText);
    assert.match(dev.stderrText, new RegExp(`dev\\.sh: stopping the SES emulator an earlier run left on port ${sesPort}`));
    assert.ok(!sessionProcesses(dev.pid).some((p) => p.pid === leftover) && !isAlive(leftover), "the leftover was reused");

    // Everything it started, each on loopback only.
    const started = sessionProcesses(dev.pid).map((p) => p.comm);
    for (const name of ["java", "node", "dodo-local", "local-api"]) {
      assert.ok(started.includes(name), `${name} not among ${started}`);
    }
    for (const p of ports) {
      const addresses = listeners(p);
      assert.ok(addresses.length > 0, `nothing listens on ${p}`);
      for (const address of addresses) assert.ok(LOOPBACK.has(address), `port ${p} listens on ${address}`);
    }

    const interrupted = Date.now();
    process.kill(-dev.pid, "SIGINT");
    while ((dev.exitCode === null || sessionProcesses(dev.pid).length > 0) && Date.now() - interrupted < 10_000) {
      await sleep(50);
    }
    const took = Date.now() - interrupted;
    console.log(`dev.sh and everything it started stopped ${took} ms after SIGINT`);
    assert.deepEqual(sessionProcesses(dev.pid), [], "processes left after Ctrl-C");
    assert.ok(took <= 5_000, `cleanup took ${took} ms`);
    for (const p of ports) assert.deepEqual(listeners(p), [], `port ${p} still has a listener`);
    assert.match(dev.stderrText, /dev\.sh: stopped\n$/);
  } finally {
    try {
      process.kill(-dev.pid, "SIGKILL");
    } catch {}
    for (const [script, p] of [["dynamodb-local.sh", ddbPort], ["ses-local.sh", sesPort]]) {
      execFileSync(join(root, "scripts", script), ["stop", String(p)], { stdio: "ignore" });
    }
    rmSync(settings.dir, { recursive: true, force: true });
  }
});

function isAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}
