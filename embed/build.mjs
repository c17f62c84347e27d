// Builds the loader (embed.js), the framed page's script (frame.js) and the direct
// placement's (direct.js, which the loader loads by its content-hashed name: built first)
// into ../platform/kithost/visitor/loader/dist/, each also under a content-hashed name, with a
// manifest.json for the server, and the browser tests' ChatKit stand-in into
// ../tests/browser/dist/. Prints raw/gzip/brotli sizes; fails when embed.js passes its
// gzip budget.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const OUT = new URL('../platform/kithost/visitor/loader/dist/', import.meta.url);
const BUDGET_GZIP = 5000;
const ENTRIES = { frame: 'src/frame.ts', direct: 'src/direct.ts', embed: 'src/embed.ts' };
const STANDIN = new URL('../tests/browser/dist/chatkit-standin.js', import.meta.url);
const bundle = async (entry, define = {}) =>
  (
    await build({
      entryPoints: [entry],
      bundle: true,
      minify: true,
      format: 'iife',
      target: 'es2020',
      legalComments: 'none',
      define,
      write: false,
    })
  ).outputFiles[0].contents;

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const manifest = {};
let failed = false;
for (const [name, entry] of Object.entries(ENTRIES)) {
  const code = await bundle(entry, manifest.direct ? { __DIRECT__: JSON.stringify(manifest.direct.file) } : {});
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 12);
  const file = `${name}.${hash}.js`;
  writeFileSync(new URL(`${name}.js`, OUT), code);
  writeFileSync(new URL(file, OUT), code);
  const sizes = {
    raw: code.length,
    gzip: gzipSync(code, { level: 9 }).length,
    brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
  manifest[name] = { file, hash, ...sizes };
  const over = name === 'embed' && sizes.gzip > BUDGET_GZIP;
  failed ||= over;
  console.log(
    `${`${name}.js`.padEnd(22)} raw ${String(sizes.raw).padStart(6)} B  gzip ${String(sizes.gzip).padStart(5)} B  brotli ${String(sizes.brotli).padStart(5)} B` +
      (name === 'embed' ? `  (budget ${BUDGET_GZIP} B gzip${over ? ': OVER' : ''})` : ''),
  );
}
mkdirSync(new URL('.', STANDIN), { recursive: true });
writeFileSync(STANDIN, await bundle('test/chatkit-standin.ts'));
writeFileSync(new URL('manifest.json', OUT), `${JSON.stringify(manifest, null, 2)}\n`);
if (failed) {
  console.error(`embed.js is over its budget of ${BUDGET_GZIP} bytes gzipped`);
  process.exit(1);
}
