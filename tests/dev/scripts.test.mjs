// The small shell pieces the two commands stand on: scripts/lib.sh reads .env the way a shell
// does (quoted values whole), and scripts/test.sh announces and times each phase. Needs bash
// only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Runs a bash snippet at the repository root with an empty environment; its stdout. */
function bash(script) {
  // stdin from /dev/null: on a socket (node's default pipe) bash would read ~/.bashrc.
  return execFileSync("bash", ["-c", script], { cwd: root, env: { PATH: process.env.PATH }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** KEY=value lines printed by `env -0`, as a Map (values may hold newlines). */
function envMap(output) {
  return new Map(
    output
      .split("\0")
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
}

test(".env.example reads the same through a shell (set -a; . ./.env.example) and load_env_file", () => {
  const shell = envMap(bash("set -a; . ./.env.example; set +a; env -0"));
  const loaded = envMap(bash(". scripts/lib.sh; load_env_file .env.example; env -0"));
  assert.equal(shell.get("PLAN_FEATURES"), "professional=export,api;enterprise=export,api,sso");
  assert.equal(loaded.get("PLAN_FEATURES"), shell.get("PLAN_FEATURES"));
  const keys = readFileSync(join(root, ".env.example"), "utf8")
    .split("\n")
    .filter((line) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(line))
    .map((line) => line.slice(0, line.indexOf("=")));
  assert.ok(keys.length >= 10, `keys found: ${keys}`);
  for (const key of keys) assert.equal(loaded.get(key), shell.get(key), key);
});

test("load_env_file removes one pair of matching quotes and nothing else; the environment wins", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmxt-env-"));
  const file = join(dir, "env");
  writeFileSync(
    file,
    [
      `DOUBLE="a=x;b=y z"`,
      `SINGLE='two words'`,
      `NESTED="'kept'"`,
      `UNMATCHED="left`,
      `LONE="`,
      `EMPTY=""`,
      `LITERAL=$HOME\\n#not-a-comment`,
      `PRESET="from the file"`,
    ].join("\n") + "\n",
  );
  try {
    const env = envMap(bash(`. scripts/lib.sh; PRESET=mine; export PRESET; load_env_file '${file}'; env -0`));
    assert.equal(env.get("DOUBLE"), "a=x;b=y z");
    assert.equal(env.get("SINGLE"), "two words");
    assert.equal(env.get("NESTED"), "'kept'");
    assert.equal(env.get("UNMATCHED"), '"left');
    assert.equal(env.get("LONE"), '"');
    assert.equal(env.get("EMPTY"), "");
    assert.equal(env.get("LITERAL"), "$HOME\\n#not-a-comment");
    assert.equal(env.get("PRESET"), "mine");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("phase announces each phase and ends it with its time; a failure says FAILED", () => {
  const out = bash(". scripts/lib.sh; phase_end; phase 'one'; phase 'two thing'; phase_end; phase_end; phase three; phase_end failed");
  assert.equal(out, "== one\n-- one: 0 s\n== two thing\n-- two thing: 0 s\n== three\n-- three: FAILED after 0 s\n");
});

test("scripts/test.sh: every header is a phase, the first before any tool runs, pip not silenced", () => {
  const script = readFileSync(join(root, "scripts", "test.sh"), "utf8");
  const lines = script.split("\n");
  assert.deepEqual(lines.filter((l) => /^\s*echo "== (?!all passed)/.test(l)), [], "headers printed without phase (no time at the end)");
  const firstPhase = lines.findIndex((l) => /^phase "/.test(l));
  const venv = lines.findIndex((l) => /python3 -m venv|pip" install/.test(l));
  assert.ok(firstPhase > 0 && firstPhase < venv, `the first phase (line ${firstPhase + 1}) comes after the Python tools (line ${venv + 1})`);
  const pip = lines.find((l) => /pip" install/.test(l));
  assert.ok(pip && !/--quiet|\s-q\b/.test(pip), pip);
  assert.ok(lines.filter((l) => /^phase "/.test(l)).length >= 8);
});
