import { test } from "node:test";
import assert from "node:assert/strict";
import { matchesPath } from "../dist/paths.js";

test("matcher forms: exact, subtree, RegExp, list", () => {
  assert.equal(matchesPath("/pro", "/pro"), true);
  assert.equal(matchesPath("/pro/x", "/pro"), false);
  assert.equal(matchesPath("/pro", "/pro/:path*"), true);
  assert.equal(matchesPath("/pro/a/b", "/pro/:path*"), true);
  assert.equal(matchesPath("/profile", "/pro/:path*"), false);
  assert.equal(matchesPath("/", "/pro/:path*"), false);
  assert.equal(matchesPath("/reports/9", /^\/reports\/\d+$/), true);
  assert.equal(matchesPath("/docs", ["/pro/:path*", "/docs"]), true);
  assert.equal(matchesPath("/other", ["/pro/:path*", "/docs"]), false);
});

test("a RegExp with the g or y flag matches every time, not every other time", () => {
  for (const flags of ["g", "y", "gy", "gi"]) {
    const gate = new RegExp("^/pro(/|$)", flags);
    for (let i = 0; i < 4; i++) assert.equal(matchesPath("/pro/report", gate), true, `${flags} #${i}`);
    assert.equal(matchesPath("/pro/report", [gate, "/other"]), true, flags);
    assert.equal(gate.lastIndex, 0, "the caller's RegExp is left as it was");
  }
  assert.equal(matchesPath("/PRO", /^\/pro$/gi), true, "other flags are kept");
  assert.equal(matchesPath("/public", /^\/pro/g), false);
});
