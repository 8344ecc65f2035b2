// Bundle size of each entry point as a site ships it: bundled, minified (esbuild), gzipped.
// `next/server` is the site's own Next.js, so it is not counted.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

for (const entry of ["dist/index.js", "dist/next.js"]) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    external: ["next/server"],
    write: false,
  });
  const code = result.outputFiles[0].contents;
  const note = entry.endsWith("next.js") ? " (next/server not counted: the site has it)" : "";
  console.log(`${entry}: ${code.length} B minified, ${gzipSync(code, { level: 9 }).length} B min+gzip${note}`);
}
