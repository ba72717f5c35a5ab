// Bundles GraphiQL into ../dist for the Go binary to embed (`make graphiql`):
// main-[hash].js and .css (src/main.jsx and what it imports), Monaco's three
// workers, manifest.json (which file is which, read by the Go handler),
// licenses.txt (the license of every npm package in the bundle) and a .gz of
// each text file.
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.join(here, "..", "dist");

// Start from an empty folder but for .keep, which is committed so that the
// Go embed pattern always has its folder.
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(out)) {
  if (f !== ".keep") fs.rmSync(path.join(out, f), { recursive: true, force: true });
}

const entries = {
  main: "src/main.jsx",
  "editor.worker": "monaco-editor/esm/vs/editor/editor.worker.js",
  "json.worker": "monaco-editor/esm/vs/language/json/json.worker.js",
  "graphql.worker": "monaco-graphql/esm/graphql.worker.js",
};

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: entries,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  jsx: "automatic",
  outdir: out,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".ttf": "file", ".woff": "file", ".woff2": "file", ".svg": "file", ".png": "file" },
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none", // licenses.txt has them in full
  metafile: true,
  logLevel: "warning",
});

// manifest.json: entry name → served file names.
const manifest = { js: "", css: "", workers: {}, files: [] };
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  const name = path.basename(file);
  manifest.files.push(name);
  if (!o.entryPoint) continue;
  const entry = Object.keys(entries).find((k) => path.resolve(here, entries[k]) === path.resolve(here, o.entryPoint) || o.entryPoint.endsWith(entries[k]));
  if (entry === "main") {
    manifest.js = name;
    manifest.css = o.cssBundle ? path.basename(o.cssBundle) : "";
  } else if (entry) {
    manifest.workers[entry.replace(/\.worker$/, "")] = name;
  }
}
if (!manifest.js || !manifest.css || Object.keys(manifest.workers).length !== 3) {
  throw new Error("build.mjs: could not map the outputs to entries: " + JSON.stringify(manifest));
}

// licenses.txt: every package that has a file in the bundle, with its
// license text (the package's LICENSE file, or its package.json license).
const pkgs = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/^(?:.*\/)?node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (!m) continue;
  const dir = path.join(here, input.slice(0, m.index + m[0].length - 1));
  if (!pkgs.has(dir)) pkgs.set(dir, m[1]);
}
const sections = [];
for (const [dir, name] of [...pkgs].sort((a, b) => a[1].localeCompare(b[1]))) {
  const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const files = fs.readdirSync(dir).filter((f) => /^(licen[cs]e|copying|notice)(\.|-|$)/i.test(f)).sort();
  let text = files.map((f) => fs.readFileSync(path.join(dir, f), "utf8").trim()).join("\n\n");
  if (!text) text = `License: ${pj.license || "(none stated)"} (the package ships no license file)`;
  sections.push(`${name} ${pj.version} (${pj.license || "no license field"})\n${"-".repeat(60)}\n${text}\n`);
}
fs.writeFileSync(
  path.join(out, "licenses.txt"),
  `Third-party software in mkgraph's GraphiQL bundle (${pkgs.size} npm packages)\n${"=".repeat(60)}\n\n` + sections.join("\n\n"),
);
manifest.files.push("licenses.txt");
manifest.files.sort();

// name.gz beside each text file and font, compressed once here rather than
// by the server on first request; kept only when smaller.
for (const name of manifest.files) {
  if (!/\.(js|css|txt|ttf|svg)$/.test(name)) continue;
  const data = fs.readFileSync(path.join(out, name));
  const gz = zlib.gzipSync(data, { level: 9 });
  if (gz.length < data.length) fs.writeFileSync(path.join(out, name + ".gz"), gz);
}
fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`graphiql: ${manifest.files.length} files in ${path.relative(process.cwd(), out) || "."}, ${pkgs.size} packages in licenses.txt`);
