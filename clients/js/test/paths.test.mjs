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
