// Builds the CLI and the public API into dist/ with esbuild (run by `npm ci` through `prepare`).
// One build with code splitting: dist/cli.js and dist/api.js share chunks, and every dynamic
// import() in lib/ (listr2 renderer, ajv-backed commands, zx) stays a separate lazily loaded chunk.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('..', import.meta.url));
await rm(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { cli: 'lib/cli/main.ts', api: 'lib/api/index.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  legalComments: 'none',
  define: { __FABRIC_VERSION__: JSON.stringify(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version) },
});
