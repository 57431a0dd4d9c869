/**
 * Finding and loading the fabricfile. The fabricfile and every local module it imports are bundled by
 * esbuild into `<root>/.fabric/build/` (source maps beside the bundle, so stacks and diagnostics point at the
 * TypeScript source). A manifest records the content hash and the stat of every input; a warm start
 * hashes only the inputs whose stat changed (or is racy) and imports the cached bundle without loading
 * esbuild at all.
 */
import { existsSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TaskDef } from '../api/types.js';
import { SourceMap } from 'node:module';
import type { CallSite } from '../api/types.js';
import { registry, resetRegistry, userCallSite } from '../api/registry.js';
import { DiagnosticsError } from '../diagnostics/error.js';
import { locationAt } from '../diagnostics/location.js';
import { RACY_WINDOW_MS } from '../util/racy.js';
import type { Diagnostic } from '../diagnostics/types.js';

export const FABRICFILE_NAMES = ['fabricfile.ts', 'fabricfile.mts', 'fabricfile.js', 'fabricfile.mjs'] as const;

/** Walks up from `dir` to find a fabricfile (as Make looks in the current directory, but upwards like git). */
export function findFabricfile(dir: string): string | undefined {
  let cur = resolve(dir);
  for (;;) {
    for (const name of FABRICFILE_NAMES) {
      const p = join(cur, name);
      if (existsSync(p)) return p;
    }
    const up = dirname(cur);
    if (up === cur) return undefined;
    cur = up;
  }
}

export interface LoadOptions {
  readonly fabricfile: string;
  /** Directory for bundles and their manifests (e.g. `<root>/.fabric/build`). */
  readonly buildDir: string;
  /** Absolute path of fabric's public API module, which `import ... from 'fabric'` resolves to. */
  readonly apiModule: string;
  /**
   * `eager`: every stack trace formatted from the import on (a task function that throws during a
   * run) points at the TypeScript sources (`mapStacks`). `lazy` (default): only the call sites a
   * diagnostic asks for are mapped: what commands that run no task code need. Either way a source map
   * is read only when a frame in its file is mapped.
   */
  readonly sourceMaps?: 'eager' | 'lazy' | undefined;
}

interface BuildManifest {
  /** 6: wide characters in comments narrowed (5: the compiled build's import() rewritten; 4: input stats beside hashes; 3: hashes only; 2: inline maps). */
  readonly version: 6;
  readonly fabricfile: string;
  readonly apiModule: string;
  readonly bundle: string;
  /** Absolute path → sha256 of content. */
  readonly inputs: Readonly<Record<string, string>>;
  /** Absolute path → [size, mtimeMs, ctimeMs, ino] when its hash was taken, and when that was (ms). */
  readonly stats: Readonly<Record<string, InputStat>>;
  readonly statsAt: number;
  /**
   * The same sources as one classic script (CommonJS), for the commands that only read declarations
   * (list, graph, plan, explain, dry runs): loaded through `vm.Script` with a V8 code cache beside it.
   * Null when the sources need ES module semantics (top-level await, a package only `import` can load).
   */
  readonly compiled: string | null;
}

type InputStat = readonly [size: number, mtimeMs: number, ctimeMs: number, ino: number];

const PENDING = 'pending';

// node:crypto is loaded only when a hash is needed: a warm start whose inputs' stats are unchanged
// (the common case: `fabric list`) never needs it.
const requireBuiltin = createRequire(import.meta.url);
const crypto = (): typeof import('node:crypto') => requireBuiltin('node:crypto') as typeof import('node:crypto');
const sha256 = (data: string | Uint8Array): string => crypto().createHash('sha256').update(data).digest('hex');

function statOf(file: string): InputStat | undefined {
  const s = statSync(file, { throwIfNoEntry: false });
  return s ? [s.size, s.mtimeMs, s.ctimeMs, s.ino] : undefined;
}

/**
 * FNV-1a (64 bit) of the fabricfile's path and of fabric's API module, to name its manifest (the
 * manifest itself records both): two fabric installations used on one repository (a global one and
 * the repo's own, or two checkouts compared by the bench) keep a warm build each instead of
 * invalidating each other's at every start.
 */
function pathTag(path: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < path.length; i++) h = ((h ^ BigInt(path.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

function manifestPath(opts: LoadOptions): string {
  return join(opts.buildDir, `${pathTag(`${opts.fabricfile}\0${opts.apiModule}`)}.json`);
}

/**
 * The cached bundle if every input is as it was bundled. An input whose size, mtime, ctime and inode
 * are those recorded (and not racy) is taken as unchanged without reading it; any other is hashed and
 * compared. When only stats had changed (a touched file, a checkout that rewrote it unchanged), the
 * manifest gets the new stats so that the next start reads nothing again.
 */
function warmBundle(opts: LoadOptions): BuildManifest | undefined {
  let m: BuildManifest;
  try {
    m = JSON.parse(readFileSync(manifestPath(opts), 'utf8')) as BuildManifest;
  } catch {
    return undefined;
  }
  if (m.version !== 6 || m.fabricfile !== opts.fabricfile || m.apiModule !== opts.apiModule || !existsSync(m.bundle)) return undefined;
  if (m.compiled !== null && !existsSync(m.compiled)) return undefined;
  // Taken before any stat: the new stats are recorded as of this moment (never later than they were
  // taken), as the cold build does.
  const checkedAt = Date.now();
  const fresh: Record<string, InputStat> = {};
  let restat = false;
  for (const [file, hash] of Object.entries(m.inputs)) {
    const now = statOf(file);
    if (!now) return undefined;
    const was = m.stats?.[file];
    if (was && was[0] === now[0] && was[1] === now[1] && was[2] === now[2] && was[3] === now[3] && now[1] + RACY_WINDOW_MS <= m.statsAt) {
      fresh[file] = was;
      continue;
    }
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch {
      return undefined;
    }
    if (sha256(text) !== hash) return undefined;
    fresh[file] = now;
    restat = true;
  }
  if (restat) writeManifest(opts, { ...m, stats: fresh, statsAt: checkedAt });
  return m;
}

/** Writes the manifest atomically (temp file, rename); best effort when it only refreshes stats. */
function writeManifest(opts: LoadOptions, m: BuildManifest, mustSucceed = false): void {
  const mp = manifestPath(opts);
  const tmp = `${mp}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(m));
    renameSync(tmp, mp);
  } catch (e) {
    if (mustSucceed) throw e;
  }
}

interface EsbuildMessage {
  text: string;
  location: { file: string; line: number; column: number; length: number } | null;
  notes?: { text: string; location: { file: string; line: number; column: number; length: number } | null }[];
}

/** esbuild's resolution of `fabric` (fabric's API module) and of packages (external: node_modules at run time). */
function fabricResolvePlugin(apiModule: string): import('esbuild').Plugin {
  return {
    name: 'fabric-api',
    setup(build) {
      build.onResolve({ filter: /^fabric$/ }, () => ({ path: apiModule, external: true }));
      // Packages stay external: they resolve from the repo's node_modules at run time.
      build.onResolve({ filter: /^[^./]/ }, (args) => (isAbsolute(args.path) ? undefined : { path: args.path, external: true }));
    },
  };
}

/** What both builds of the fabricfile (ES module bundle, compiled build) share. */
function bundleOptions(opts: LoadOptions) {
  return {
    absWorkingDir: dirname(opts.fabricfile),
    entryPoints: [opts.fabricfile],
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node20',
    // Maps in their own files: the module text V8 compiles at every start stays small (an inline map
    // was two thirds of the Samakia bundle), and they are read only when something maps a frame.
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [fabricResolvePlugin(opts.apiModule)],
  } as const satisfies import('esbuild').BuildOptions;
}

/** The names the compiled build gives `import.meta` properties; loadCompiled passes their values. */
const META = { 'import.meta.url': '__fabric_meta_url', 'import.meta.filename': '__fabric_meta_filename', 'import.meta.dirname': '__fabric_meta_dirname' } as const;
/**
 * In the compiled build, `import("pkg")` (a package or built-in the sources import dynamically) is
 * rewritten to `__fimp("pkg")`, an identifier of the same length (the source map stays exact), which
 * loadCompiled provides: an import() made from an ES module beside the bundle, so it resolves as the
 * ES module bundle's own would. A classic script compiled by vm has no working import() of its own on
 * Node 20 (vm's main-context loader is experimental, warns, and is lost when the script comes from a
 * code cache).
 */
const COMPILED_IMPORT = '__fimp';
const IMPORT_HELPER = 'fabric-import.mjs';
const COMPILED_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname', ...Object.values(META), COMPILED_IMPORT];

/**
 * Whether `require(spec)` from the fabricfile's directory loads (a CommonJS file: `.cjs`, or `.js`
 * in a package that is not `"type": "module"`). Node 20 cannot require an ES module.
 */
function requireable(spec: string, from: string): boolean {
  let file: string;
  try {
    file = createRequire(from).resolve(spec);
  } catch {
    return false;
  }
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        return (JSON.parse(readFileSync(pj, 'utf8')) as { type?: unknown }).type !== 'module';
      } catch {
        return false;
      }
    }
    if (dirname(dir) === dir) return true;
  }
}

/**
 * The classic-script build of the same sources (see BuildManifest.compiled), or undefined when the
 * sources need ES module semantics: esbuild refuses or warns (top-level await, an `import.meta`
 * property other than url/filename/dirname), or a package they import statically cannot be required.
 * Dynamic `import()` of a package becomes `__fimp()` (COMPILED_IMPORT).
 */
async function compiledBuild(esbuild: typeof import('esbuild'), opts: LoadOptions, pending: string): Promise<{ path: string; contents: Uint8Array }[] | undefined> {
  let result;
  try {
    result = await esbuild.build({ ...bundleOptions(opts), format: 'cjs', outfile: join(pending, 'fabricfile.cjs'), define: META });
  } catch {
    return undefined;
  }
  if (result.warnings.length > 0) return undefined;
  const dynamic = new Set<string>();
  for (const out of Object.values(result.metafile.outputs)) {
    for (const imp of out.imports) {
      if (imp.external && imp.kind === 'dynamic-import') dynamic.add(imp.path);
      if (!imp.external || imp.kind !== 'require-call' || imp.path === opts.apiModule || isBuiltin(imp.path)) continue;
      if (!requireable(imp.path, opts.fabricfile)) return undefined;
    }
  }
  const files: { path: string; contents: Uint8Array }[] = [];
  for (const f of result.outputFiles) {
    if (!f.path.endsWith('.cjs')) {
      files.push(f);
      continue;
    }
    // A hashbang (kept by esbuild from the fabricfile) cannot stand inside loadCompiled's function
    // wrapper: it becomes a comment of the same length.
    let text = f.text.startsWith('#!') ? `//${f.text.slice(2)}` : f.text;
    for (const spec of dynamic) text = text.split(`import(${JSON.stringify(spec)})`).join(`${COMPILED_IMPORT}(${JSON.stringify(spec)})`);
    // Any import( left (a computed specifier; or the word in a string, to be safe): ES module bundle only.
    if (/\bimport\s*\(/.test(text)) return undefined;
    files.push({ path: f.path, contents: Buffer.from(text, 'utf8') });
  }
  files.push({ path: join(pending, IMPORT_HELPER), contents: Buffer.from('export default (specifier) => import(specifier);\n', 'utf8') });
  return files;
}

/** A character V8 cannot keep in a one-byte (Latin-1) string. */
const WIDE = /[^\u0000-\u00ff]/;

/**
 * `text` with every character above U+00FF replaced by '?', one per UTF-16 unit (columns, and so the
 * source map, stay as they were), when all of them stand in comments; otherwise undefined. esbuild
 * escapes such characters in code (its default charset is ASCII) but not in comments, and one of them
 * makes V8 keep the whole module as two bytes per character: one arrow in a comment cost ~5 ms of
 * every start of the 450 KB Samakia bundle (bench/RESULTS.md, thirteenth pass). Only comments changed
 * when both texts are the same once esbuild drops whitespace and comments; a character esbuild could
 * not escape (a raw template string, a regular expression) makes them differ, and the text is kept.
 */
async function narrowComments(esbuild: typeof import('esbuild'), text: string): Promise<string | undefined> {
  if (!WIDE.test(text)) return undefined;
  const narrowed = text.replace(new RegExp(WIDE.source, 'g'), '?');
  const bare = async (t: string) => (await esbuild.transform(t, { loader: 'js', minifyWhitespace: true, legalComments: 'none' })).code;
  try {
    return (await bare(text)) === (await bare(narrowed)) ? narrowed : undefined;
  } catch {
    return undefined;
  }
}

async function coldBundle(opts: LoadOptions): Promise<BuildManifest> {
  const esbuild = await import('esbuild');
  const root = dirname(opts.fabricfile);
  let result;
  try {
    result = await esbuild.build({
      ...bundleOptions(opts),
      format: 'esm',
      // Splitting keeps a task module's dynamic import() (e.g. of a YAML parser) a separate chunk that
      // loads only when the task runs, so `fabric list` imports no more than the declarations.
      splitting: true,
      outdir: join(opts.buildDir, PENDING),
      entryNames: 'fabricfile',
      chunkNames: 'chunk-[hash]',
      outExtension: { '.js': '.mjs' },
    });
  } catch (e) {
    const errors = ((e as { errors?: EsbuildMessage[] }).errors ?? []) as EsbuildMessage[];
    if (errors.length === 0) throw e;
    throw new DiagnosticsError(
      errors.map((m): Diagnostic => ({
        severity: 'error',
        code: 'syntax',
        message: m.text,
        location: m.location ? locationAt(resolve(root, m.location.file), m.location.line, m.location.column + 1, Math.max(1, m.location.length)) : undefined,
        related: (m.notes ?? []).filter((n) => n.location).map((n) => ({ message: n.text, location: locationAt(resolve(root, n.location!.file), n.location!.line, n.location!.column + 1, Math.max(1, n.location!.length)) })),
      })),
    );
  }
  const inputs: Record<string, string> = {};
  const stats: Record<string, InputStat> = {};
  // Stat before reading: a write between the two leaves a stat older than the content, which the
  // next start then hashes again (never the other way round).
  const statsAt = Date.now();
  for (const rel of Object.keys(result.metafile!.inputs)) {
    const abs = resolve(root, rel);
    const st = statOf(abs);
    if (st) stats[abs] = st;
    inputs[abs] = sha256(readFileSync(abs));
  }
  // The bundle and its chunks go into a directory named by their content, at the same depth as the
  // outdir esbuild computed relative paths (source maps, chunk imports) for.
  const pending = join(opts.buildDir, PENDING);
  const compiled = await compiledBuild(esbuild, opts, pending);
  const files = await Promise.all(
    [...result.outputFiles!, ...(compiled ?? [])].map(async (f) => {
      if (!/\.[mc]js$/.test(f.path)) return f;
      const narrowed = await narrowComments(esbuild, Buffer.from(f.contents).toString('utf8'));
      return narrowed === undefined ? f : { path: f.path, contents: Buffer.from(narrowed, 'utf8') };
    }),
  );
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  const h = crypto().createHash('sha256');
  for (const f of files) h.update(relative(pending, f.path)).update('\0').update(f.contents);
  const dir = join(opts.buildDir, h.digest('hex').slice(0, 16));
  if (!existsSync(dir)) {
    const tmp = `${dir}.${process.pid}.tmp`;
    for (const f of files) {
      const target = join(tmp, relative(pending, f.path));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, f.contents);
    }
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another fabric process wrote the same content first.
      if (!existsSync(dir)) throw e;
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const bundle = join(dir, 'fabricfile.mjs');
  const manifest: BuildManifest = { version: 6, fabricfile: opts.fabricfile, apiModule: opts.apiModule, bundle, inputs, stats, statsAt, compiled: compiled ? join(dir, 'fabricfile.cjs') : null };
  writeManifest(opts, manifest, true);
  await pruneBundles(opts.buildDir);
  return manifest;
}

/**
 * Runs the compiled build (a classic script) with a V8 code cache beside it: V8 then deserializes the
 * compiled code (functions that ran included) instead of parsing the sources again, which is most of
 * loading a large fabricfile. A missing or stale cache (another Node version) is rewritten after the
 * run; a build directory that cannot be written only costs the cache.
 */
function loadCompiled(file: string, api: unknown, apiModule: string, esmBundle: string): void {
  const vm = requireBuiltin('node:vm') as typeof import('node:vm');
  const cacheFile = `${file}.v8cache`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // The wrapper stays on the first line, so line numbers (and source-map lookups) are the file's own.
  const script = new vm.Script(`(function (${COMPILED_PARAMS.join(', ')}) {${readFileSync(file, 'utf8')}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  const req = createRequire(file);
  // `import ... from 'fabric'` became require(<the API module's path>): the module already loaded.
  const requireShim = Object.assign((id: string) => (id === apiModule ? api : req(id)), req);
  const module = { exports: {} };
  // import.meta is the ES module bundle's (beside this file), so declarations that use it come out as
  // they do under `run` (a plan digest must not depend on which build computed it).
  const helper = pathToFileURL(join(dirname(file), IMPORT_HELPER)).href;
  const dynamicImport = (spec: string): Promise<unknown> => import(helper).then((m: { default: (s: string) => Promise<unknown> }) => m.default(spec));
  fn(module.exports, requireShim, module, file, dirname(file), pathToFileURL(esmBundle).href, esmBundle, dirname(esmBundle), dynamicImport);
  if (!cachedData || script.cachedDataRejected) {
    try {
      writeFileSync(`${cacheFile}.${process.pid}.tmp`, script.createCachedData());
      renameSync(`${cacheFile}.${process.pid}.tmp`, cacheFile);
    } catch {
      /* a read-only build directory: no cache */
    }
  }
}

/**
 * After a cold build: removes bundle directories that no manifest names any more and that are older than
 * a day (a process started before the rebuild may still be importing an older one). Best effort.
 */
async function pruneBundles(buildDir: string): Promise<void> {
  try {
    const entries = await readdir(buildDir, { withFileTypes: true });
    const live = new Set<string>();
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.json')) continue;
      try {
        live.add(dirname((JSON.parse(await readFile(join(buildDir, e.name), 'utf8')) as BuildManifest).bundle));
      } catch {
        /* a manifest being written: keep everything it could name */
        return;
      }
    }
    const dayAgo = Date.now() - 86_400_000;
    for (const e of entries) {
      const dir = join(buildDir, e.name);
      if (!e.isDirectory() || e.name === PENDING || live.has(dir)) continue;
      if (statSync(dir).mtimeMs < dayAgo) await rm(dir, { recursive: true, force: true });
    }
  } catch {
    /* pruning never fails a load */
  }
}

/** Loads the fabricfile and returns the tasks it declared (in declaration order). Throws DiagnosticsError. */
export async function loadFabricfile(opts: LoadOptions): Promise<readonly TaskDef[]> {
  try {
    if (!statSync(opts.fabricfile).isFile()) throw new Error('not a file');
  } catch {
    throw new DiagnosticsError([{ severity: 'error', code: 'no-fabricfile', message: `cannot read fabricfile ${opts.fabricfile}` }]);
  }
  const built = warmBundle(opts) ?? (await coldBundle(opts));
  // fabric's API module (what the bundle's `import 'fabric'` resolves to) is loaded first, while
  // source maps are still off: Node would otherwise read and parse the source maps of fabric's own
  // dist files, which no user-facing location needs (registry.ts skips fabric's frames anyway).
  const api = await import(pathToFileURL(opts.apiModule).href).catch(() => undefined);
  // Commands that run no task code load the compiled build (same sources, with a code cache); `run`
  // loads the ES module bundle, so task code runs with exactly the semantics it was written for.
  const compiled = opts.sourceMaps !== 'eager' && built.compiled !== null && api !== undefined ? built.compiled : undefined;
  const bundle = built.bundle;
  // Stack traces and call sites of tasks map back to the TypeScript sources: all of them (eager), or
  // only the call sites a diagnostic asks for (lazy).
  resetRegistry();
  const mapper = bundleSiteMapper(dirname(bundle));
  if (opts.sourceMaps === 'eager') mapStacks([mapper, bundleSiteMapper(dirname(opts.apiModule))]);
  else registry().mapSite = mapper;
  try {
    if (compiled) loadCompiled(compiled, api, opts.apiModule, bundle);
    else await import(pathToFileURL(bundle).href);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const site = userCallSite(err.stack);
    const inUser = site && !site.file.includes('/node_modules/') && existsSync(site.file) && !site.file.endsWith('.mjs') && !site.file.endsWith('.cjs');
    throw new DiagnosticsError([
      {
        severity: 'error',
        code: 'load-error',
        message: `loading the fabricfile failed: ${err.message}`,
        location: inUser ? locationAt(site.file, site.line, site.column) : undefined,
        hint: inUser ? undefined : `while importing ${opts.fabricfile}`,
      },
    ]);
  }
  return [...registry().tasks];
}

/**
 * Every stack formatted from now on shows the sources of the frames in the bundle's files and in
 * fabric's own (`mappers`), through their source maps, each read and parsed the first time a stack
 * needs it. The lines are what Node's own source maps (`process.setSourceMapsEnabled`) print, but
 * those parse the map of every module loaded after they are turned on, whether or not a stack ever
 * needs it: in a run of this repository's Samakia graph, the bundle's 227 KB map and the line lengths
 * of its 400 KB, plus the maps of fabric's modules loaded later (bench/RESULTS.md, eighth pass).
 */
export function mapStacks(mappers: readonly ((site: CallSite) => CallSite)[]): void {
  const frame = (s: NodeJS.CallSite): string => {
    const text = String(s);
    try {
      const name = s.getFileName();
      const line = s.getLineNumber();
      const column = s.getColumnNumber();
      if (!name || line === null || column === null) return text;
      const file = name.startsWith('file://') ? fileURLToPath(name) : name;
      for (const map of mappers) {
        const m = map({ file, line, column });
        if (m.file === file && m.line === line && m.column === column) continue;
        const at = `${name}:${line}:${column}`;
        const i = text.lastIndexOf(at);
        return i < 0 ? text : `${text.slice(0, i)}${m.file}:${m.line}:${m.column}${text.slice(i + at.length)}`;
      }
    } catch {
      // An unreadable map or an odd frame: the frame as V8 gives it.
    }
    return text;
  };
  // Node's own format without source maps: the error's toString, then one `at` line per frame.
  Error.prepareStackTrace = (error: Error, sites: NodeJS.CallSite[]): string => {
    let head: string;
    try {
      head = Error.prototype.toString.call(error);
    } catch {
      head = '<error>';
    }
    let out = head;
    for (const s of sites) out += `\n    at ${frame(s)}`;
    return out;
  };
}

const MAP_URL = /\n\/\/# sourceMappingURL=(\S+)\s*$/;
const DATA_URL = /^data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)$/;

/** The parsed source map a generated file names (inline data URL or a file beside it), or null. */
function readSourceMap(file: string): SourceMap | null {
  try {
    const text = readFileSync(file, 'utf8');
    const url = MAP_URL.exec(text.slice(-4096))?.[1];
    if (!url) return null;
    const data = DATA_URL.exec(url);
    const json = data ? Buffer.from(data[1]!, 'base64').toString('utf8') : readFileSync(resolve(dirname(file), decodeURIComponent(url)), 'utf8');
    return new SourceMap(JSON.parse(json) as ConstructorParameters<typeof SourceMap>[0]);
  } catch {
    return null;
  }
}

/**
 * Maps call sites in the bundle's files (under `dir`) to the sources through each file's source map,
 * read and parsed on first use; what Node's own source-map support would print for the
 * frame. Sites elsewhere, or without a mapping, are returned as they are.
 */
export function bundleSiteMapper(dir: string): (site: CallSite) => CallSite {
  const maps = new Map<string, SourceMap | null>();
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return (site) => {
    if (!site.file.startsWith(prefix)) return site;
    let map = maps.get(site.file);
    if (map === undefined) {
      map = readSourceMap(site.file);
      maps.set(site.file, map);
    }
    if (!map) return site;
    const e = map.findEntry(site.line - 1, site.column - 1) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
    if (!e.originalSource || e.originalLine === undefined || e.originalColumn === undefined) return site;
    const src = e.originalSource.startsWith('file://') ? decodeURIComponent(new URL(e.originalSource).pathname) : resolve(dirname(site.file), e.originalSource);
    return { file: src, line: e.originalLine + 1, column: e.originalColumn + 1 };
  };
}
