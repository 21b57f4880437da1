// After `vite build`: precompress the assets (.gz, .br) and record a hash of the sources, which
// tests/console/test_bundle.py recomputes to prove the shipped bundle was built from these sources.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

const here = new URL(".", import.meta.url).pathname;
const out = join(here, "../kiro_gateway/console/static");

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export const SOURCES = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src"];

const files = SOURCES.flatMap((s) => (statSync(join(here, s)).isDirectory() ? walk(join(here, s)) : [join(here, s)]))
  .map((p) => relative(here, p).split(sep).join("/"))
  .sort();
const h = createHash("sha256");
for (const f of files) {
  h.update(f + "\0");
  h.update(readFileSync(join(here, f)));
  h.update("\0");
}
for (const f of walk(out)) {
  if (!/\.(js|css|html|svg|json)$/.test(f)) continue;
  const body = readFileSync(f);
  writeFileSync(f + ".gz", gzipSync(body, { level: 9 }));
  writeFileSync(f + ".br", brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
}
writeFileSync(join(out, "build.json"), JSON.stringify({ sourceHash: h.digest("hex"), files: files.length }) + "\n");
console.log("console built:", out);
