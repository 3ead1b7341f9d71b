// Builds the web client into one directory the server embeds: content-hashed
// assets, each beside its gzip and brotli forms, an index.html naming them,
// and manifest.json listing every file with its type.
//
//   node build.mjs OUT_DIR
//
// Offline: esbuild and preact come from node_modules (package-lock.json).
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const out = process.argv[2];
if (!out) {
  console.error("usage: node build.mjs OUT_DIR");
  process.exit(2);
}
const here = new URL(".", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await build({
  entryPoints: [join(here, "src/main.jsx"), join(here, "src/style.css")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".svg": "file" },
  outdir: join(out, "assets"),
  metafile: true,
  legalComments: "none",
  write: true,
  logLevel: "warning",
});

const types = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
};
const typeOf = (name) => types[name.slice(name.lastIndexOf("."))] ?? "application/octet-stream";

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((n) => n.startsWith("main-") && n.endsWith(".js"));
const style = outputs.find((n) => n.startsWith("style-") && n.endsWith(".css"));
if (!script || !style) throw new Error(`missing outputs in ${outputs}`);

// No inline script or style: the page's Content-Security-Policy forbids both.
const index = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Entente</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="app"><noscript>Entente needs JavaScript.</noscript></div>
</body>
</html>
`;
writeFileSync(join(out, "index.html"), index);

const files = [{ path: "index.html", url: "/", type: typeOf("index.html"), immutable: false }];
for (const name of outputs) {
  files.push({ path: `assets/${name}`, url: `/assets/${name}`, type: typeOf(name), immutable: true });
}
let total = { raw: 0, gzip: 0, brotli: 0 };
for (const file of files) {
  const bytes = readFileSync(join(out, file.path));
  const gz = gzipSync(bytes, { level: 9 });
  const br = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  writeFileSync(join(out, `${file.path}.gz`), gz);
  writeFileSync(join(out, `${file.path}.br`), br);
  file.etag = createHash("sha256").update(bytes).digest("hex").slice(0, 20);
  file.sizes = { raw: bytes.length, gzip: gz.length, brotli: br.length };
  for (const k of Object.keys(total)) total[k] += file.sizes[k];
}
writeFileSync(join(out, "manifest.json"), JSON.stringify({ files, total }, null, 2));
console.log(
  `web client: ${files.length} files, first visit ${total.raw} bytes, ${total.gzip} gzip, ${total.brotli} brotli`,
);
