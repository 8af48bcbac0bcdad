// Builds faro's viewer into a folder (default `web/dist`): the page, its script and style under
// content-hashed names in `assets/`, MapLibre's worker (hashed too), and the label font in
// `fonts/`. `build.rs` runs it into Cargo's OUT_DIR and embeds the result in the binary.
//
//   node web/build.mjs [OUT_DIR]

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, 'dist'));
const modules = path.join(here, 'node_modules');

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'assets'), { recursive: true });
fs.mkdirSync(path.join(out, 'fonts'), { recursive: true });

const hash = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 12);

// The worker is loaded by URL, so it is copied (without its source-map comment, which would
// make browser tools ask for a file faro does not serve).
const worker = fs
  .readFileSync(path.join(modules, 'maplibre-gl/dist/maplibre-gl-worker.mjs'), 'utf8')
  .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
const workerName = `maplibre-gl-worker-${hash(worker)}.mjs`;
fs.writeFileSync(path.join(out, 'assets', workerName), worker);

const result = await esbuild.build({
  entryPoints: [path.join(here, 'src/main.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  entryNames: '[name]-[hash]',
  outdir: path.join(out, 'assets'),
  define: { FARO_WORKER_URL: JSON.stringify(`/assets/${workerName}`) },
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.relative(path.join(out, 'assets'), p));
const script = outputs.find((p) => p.endsWith('.js'));
const style = outputs.find((p) => p.endsWith('.css'));
if (!script || !style) throw new Error(`esbuild gave no script or style: ${outputs.join(', ')}`);

const html = fs
  .readFileSync(path.join(here, 'src/index.html'), 'utf8')
  .replace('%SCRIPT%', `/assets/${script}`)
  .replace('%STYLE%', `/assets/${style}`);
fs.writeFileSync(path.join(out, 'index.html'), html);

// Noto Sans (SIL OFL 1.1) for map labels, drawn in the browser (the style's `font-faces`).
for (const subset of ['latin', 'latin-ext']) {
  const name = `noto-sans-${subset}-400-normal.woff2`;
  fs.copyFileSync(path.join(modules, '@fontsource/noto-sans/files', name), path.join(out, 'fonts', name));
}
fs.copyFileSync(path.join(modules, '@fontsource/noto-sans/LICENSE'), path.join(out, 'fonts', 'LICENSE-noto-sans.txt'));

// Gzipped once here, so faro need not compress the 1 MB script on every request.
for (const name of fs.readdirSync(path.join(out, 'assets'))) {
  if (!/\.(m?js|css)$/.test(name)) continue;
  const file = path.join(out, 'assets', name);
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file), { level: 9 }));
}

console.log(`faro viewer built in ${out}: ${script}, ${style}, ${workerName}`);
