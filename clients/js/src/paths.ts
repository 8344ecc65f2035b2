// Which request paths a middleware gates (no Next.js import, so it is testable anywhere).

/**
 * Paths to gate: `/pro` (that path only), `/pro/:path*` (it and everything under it), or a
 * RegExp tested against the pathname.
 */
export type PathMatcher = string | RegExp | Array<string | RegExp>;

/** Does `pathname` fall under `matcher`? */
export function matchesPath(pathname: string, matcher: PathMatcher): boolean {
  return [matcher].flat().some((pattern) => {
    // A copy without `g`/`y`: those make `test` start at a `lastIndex` left by the last call.
    if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, "")).test(pathname);
    if (pattern.endsWith("/:path*")) {
      const prefix = pattern.slice(0, -"/:path*".length);
      return pathname === prefix || pathname.startsWith(prefix + "/");
    }
    return pathname === pattern;
  });
}

