// Builds the CLI and the public API into dist/ with esbuild (run by `npm ci` through `prepare`).
// One build with code splitting: dist/cli.js and dist/api.js share chunks, and every dynamic
// import() in lib/ (listr2 renderer, ajv-backed commands, zx) stays a separate lazily loaded chunk.
// The build goes to a temp dir that replaces dist/ by rename, so a test run using dist/ never sees it
// half-written or missing.
import { build } from 'esbuild';
import { rm, rename } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import nodeFs, { readFileSync } from 'node:fs';

// node:fs as the built-in module itself, not its ES module facade. Node builds the facade on the first
// `import ... from 'node:fs'` by reading every export, getters included: `fs.promises`,
// `fs.ReadStream` and the rest load fs/promises, readline and the whole streams stack (some 30
// internal modules), which a command such as `list` never uses. The bundle's imports of node:fs
// resolve to a module that re-exports the plain properties of the built-in one (a getter is not
// exported: importing one fails the build). process.getBuiltinModule is Node 20.16; before it,
// require through createRequire (node:module is in Node's start-up snapshot).
const FS_EXPORTS = Object.entries(Object.getOwnPropertyDescriptors(nodeFs))
  .filter(([name, d]) => 'value' in d && /^[A-Za-z_$][\w$]*$/.test(name))
  .map(([name]) => name);
const nodeFsModule = {
  name: 'node-fs-without-facade',
  setup(b) {
    b.onResolve({ filter: /^node:fs$/ }, () => ({ path: 'node:fs', namespace: 'fabric-node-fs' }));
    b.onLoad({ filter: /.*/, namespace: 'fabric-node-fs' }, () => ({
      loader: 'js',
      contents: [
        "import { createRequire } from 'node:module';",
        "const fs = process.getBuiltinModule ? process.getBuiltinModule('node:fs') : createRequire(import.meta.url)('node:fs');",
        'export default fs;',
        ...FS_EXPORTS.map((n) => `export const ${n} = fs.${n};`),
      ].join('\n'),
    }));
  },
};

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = join(root, `.dist-${process.pid}`);
const old = join(root, `.dist-old-${process.pid}`);
await rm(tmp, { recursive: true, force: true });
try {
  await build({
    absWorkingDir: root,
    entryPoints: { cli: 'lib/cli/main.ts', api: 'lib/api/index.ts' },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
    plugins: [nodeFsModule],
    legalComments: 'none',
    define: { __FABRIC_VERSION__: JSON.stringify(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version) },
  });
} catch (e) {
  await rm(tmp, { recursive: true, force: true });
  throw e;
}
// The native helpers: the fork server (lib/engine/forkserver.c), with which commands start in about
// half the time of the Perl server's, and the tree walker (lib/cache/walker.c), which lists and stats
// large input trees. Without a C compiler fabric uses the Perl server and walks in JavaScript, so a
// failed compile is a warning.
for (const [src, name, without] of [
  ['lib/engine/forkserver.c', 'fabric-forkserver', 'commands will start through the Perl server'],
  ['lib/cache/walker.c', 'fabric-walk', 'input trees will be walked in JavaScript'],
]) {
  const out = join(tmp, name);
  const tried = [];
  let built = false;
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-o', out, join(root, src)], { cwd: root, encoding: 'utf8' });
    if (r.status === 0) {
      built = true;
      break;
    }
    tried.push(`${cc}: ${r.error ? r.error.code : (r.stderr || `exit ${r.status}`).trim()}`);
    if (!r.error) break; // a compiler that ran and failed: the others would fail alike
  }
  if (!built) console.warn(`fabric build: ${name} was not built, ${without} (${tried.join('; ')})`);
}
const dist = join(root, 'dist');
await rename(dist, old).catch((e) => {
  if (e.code !== 'ENOENT') throw e;
});
await rename(tmp, dist);
await rm(old, { recursive: true, force: true });
