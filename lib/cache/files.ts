/**
 * Declared input and output globs → files. Globs are relative to the node's cwd (fast-glob syntax,
 * `!pattern` excludes); a pattern without glob characters that names a directory means everything
 * under it. Dotfiles match; `.git` and the cache directory itself are never inputs.
 */
import type FastGlobModule from 'fast-glob';
import { spawn } from 'node:child_process';
import { readdirSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { nativeHelper } from '../util/native.js';
import { absolutePath } from '../util/paths.js';

const ALWAYS_IGNORED = ['**/.git/**'];

type FastGlob = typeof FastGlobModule;
let loaded: FastGlob | undefined;

/** fast-glob, loaded on first use (~25 ms): a run whose patterns are all literal paths never needs it. */
async function fastGlob(): Promise<FastGlob> {
  return (loaded ??= (await import('fast-glob')).default);
}

/**
 * No character that any glob syntax uses (`* ? [ ] ( ) { } !` or an escape): fast-glob's
 * `isDynamicPattern` is false for such a pattern, so it can be decided without loading fast-glob.
 */
const PLAIN = /^[^*?[\](){}!\\]*$/;
export const isPlainPattern = (p: string): boolean => PLAIN.test(p);
const notDynamic = (): boolean => false;

/** The fields of a regular file's stat that the stat cache compares (size, times, inode) and its mode. */
export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly mode: number;
}

/**
 * The stat of a regular file taken while expanding a pattern (a literal path, or a tree walked by the
 * native walker), with `Date.now()` just before it: the stat cache reuses it instead of taking it
 * again (`StatCache.hashFiles`), keyed by absolute path.
 */
export interface SeenStat {
  readonly stat: FileStat;
  readonly at: number;
}

export function toFileStat(s: Stats): FileStat {
  return { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, mode: s.mode };
}

/**
 * The stat of the regular file `abs`: the one `seen` holds, else one taken now, with the time just
 * before it was taken (`now`); undefined when there is no regular file there.
 */
export function regularFileStat(abs: string, seen: ReadonlyMap<string, SeenStat> | undefined, now: () => number = Date.now): SeenStat | undefined {
  const pre = seen?.get(abs);
  if (pre) return pre;
  const at = now();
  let st: Stats | undefined;
  try {
    st = statSync(abs, { throwIfNoEntry: false });
  } catch {
    st = undefined;
  }
  return st?.isFile() ? { stat: toFileStat(st), at } : undefined;
}

function isNegated(p: string): boolean {
  return p.startsWith('!');
}

/** `dir` → `dir/**` when `dir` is a literal path naming an existing directory. */
function expandDirectory(fg: FastGlob, pattern: string, cwd: string): string {
  if (isNegated(pattern) || fg.isDynamicPattern(pattern)) return pattern;
  try {
    if (statSync(resolve(cwd, pattern), { throwIfNoEntry: false })?.isDirectory()) {
      return `${fg.escapePath(pattern.replace(/\/+$/, ''))}/**`;
    }
  } catch {
    /* unreadable: leave it as a file pattern */
  }
  return pattern;
}

/** Ignore globs (relative to `cwd`) for absolute directories that lie under `cwd`. */
export function ignoresFor(fg: FastGlob, cwd: string, dirs: readonly string[]): string[] {
  const out = [...ALWAYS_IGNORED];
  for (const d of dirs) {
    const rel = relative(cwd, d);
    if (rel === '' ) continue; // the cwd itself is the cache dir: nothing sensible to ignore
    if (rel.startsWith('..') || isAbsolute(rel)) continue;
    out.push(`${fg.escapePath(rel.split(sep).join('/'))}/**`);
  }
  return out;
}

/** A literal path (no glob syntax, no escapes), as fast-glob would report it: `./a//b` → `a/b`. */
function literal(p: string, isDynamic: (p: string) => boolean): string | undefined {
  if (isNegated(p) || p.includes('\\') || isDynamic(p)) return undefined;
  const n = posix.normalize(p);
  return n === '.' || n.endsWith('/') || isAbsolute(n) ? undefined : n;
}

function isIgnored(rel: string, abs: string, ignoreDirs: readonly string[]): boolean {
  // Anything named .git, or under it: what fast-glob's `**/.git/**` ignores (a `.git` file included).
  if (rel === '.git' || rel.startsWith('.git/') || rel.includes('/.git/') || rel.endsWith('/.git')) return true;
  return ignoreDirs.some((d) => abs === d || abs.startsWith(d + sep));
}

/**
 * The common case without a directory walk: every pattern is a literal path. Files are taken as they
 * are; a literal naming a directory needs the walk (undefined).
 */
function expandLiterals(
  patterns: readonly string[],
  cwd: string,
  ignoreDirs: readonly string[],
  isDynamic: (p: string) => boolean,
  seen: Map<string, SeenStat> | undefined,
  known: ((abs: string) => SeenStat | undefined) | undefined,
): string[] | undefined {
  const out: string[] = [];
  for (const p of patterns) {
    const rel = literal(p, isDynamic);
    if (rel === undefined) return undefined;
    const abs = absolutePath(cwd, rel);
    // A regular file this run has stat'ed already (the stat cache's memo): no second stat.
    const had = known?.(abs);
    if (had) {
      if (!isIgnored(rel, abs, ignoreDirs)) {
        out.push(rel);
        seen?.set(abs, had);
      }
      continue;
    }
    const at = Date.now();
    let st;
    try {
      st = statSync(abs, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (!st) continue;
    if (st.isDirectory()) return undefined;
    if (st.isFile() && !isIgnored(rel, abs, ignoreDirs)) {
      out.push(rel);
      seen?.set(abs, { stat: toFileStat(st), at });
    }
  }
  return [...new Set(out)].sort();
}

/** `prefix/**` with a plain, normalized, relative prefix: everything under one directory. */
const TREE = /^([^*?[\](){}!\\]+)\/\*\*$/;

function treeRoot(p: string): string | undefined {
  const m = TREE.exec(p);
  const prefix = m?.[1];
  if (prefix === undefined || isAbsolute(prefix) || posix.normalize(prefix) !== prefix || prefix.split('/').some((s) => s === '..' || s === '.' || s === '')) return undefined;
  return prefix;
}

/**
 * The characters a simple pattern may use besides `*`: fast-glob (picomatch) gives some others a
 * meaning even outside classes and braces (`a/x|*` and `a/**` + `/*"*` match nothing there), so
 * anything else is left to it.
 */
const STATIC_SEGMENT = /^[A-Za-z0-9._+@%=,:~ -]+$/;
/** A file-name pattern of those characters and at least one `*` (never `**`). */
const STAR_NAME = /^[A-Za-z0-9._+@%=,:~ -]*\*[A-Za-z0-9._+@%=,:~ *-]*$/;

/**
 * A name pattern under a static directory: `dir/NAME`, or `dir/` + `**` + `/NAME` for NAME at any depth
 * (`envs/*.yml`, `contracts/` + `**` + `/*.json`, `proposals/` + `**` + `/decision.json`), where `dir` is one
 * or more static segments and NAME a file name whose only glob character is `*`. Returns the root,
 * whether the name is matched at any depth, and the name as a regular expression: `*` is any run of
 * characters but `/`, empty included, a leading dot included, as fast-glob has it with `dot: true`.
 */
function simpleGlob(p: string): { readonly root: string; readonly deep: boolean; readonly name: RegExp } | undefined {
  const parts = p.split('/');
  const name = parts.pop()!;
  const deep = parts.at(-1) === '**';
  if (deep) parts.pop();
  if (parts.length === 0 || !parts.every((s) => STATIC_SEGMENT.test(s) && s !== '.' && s !== '..')) return undefined;
  if (!(STAR_NAME.test(name) || (deep && STATIC_SEGMENT.test(name) && name !== '.' && name !== '..')) || name.includes('**')) return undefined;
  const source = name.split('*').map((t) => t.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  return { root: parts.join('/'), deep, name: new RegExp(`^${source}$`) };
}

/** File names the fast path leaves to fast-glob when it matches names: control characters (line ends included) and backslashes. */
const ODD_NAME = /[\u0000-\u001f\u007f\\]/;
/**
 * Line ends (what a regular expression's `.` does not match): fast-glob's `**` never lists a path with
 * one, and how it treats them depends on the pattern's shape (`dir/*` lists `dir/a\nb`, `dir/**` does
 * not). A walk that meets one leaves the whole tree to fast-glob, so that the same pattern over the
 * same tree gives the same files whichever way it is expanded (docs/cache.md).
 */
const LINE_END = /[\n\r\u2028\u2029]/;

/**
 * A walk that meets more entries than this hands the tree to the native walker (when it was built):
 * below it, a walk in JavaScript costs less than starting a process.
 */
const NATIVE_WALK_ABOVE = 1000;
const WALKER_NAME = 'fabric-walk';
let walkerPath: string | null | undefined;

/** The native walker (lib/cache/walker.c), or null without one. `setNativeWalker` replaces it (tests). */
function walker(): string | null {
  if (walkerPath === undefined) walkerPath = nativeHelper(WALKER_NAME) ?? null;
  return walkerPath;
}

let nativeAbove = NATIVE_WALK_ABOVE;

/** Tests: use this walker (null: none, undefined: the built one) above this many entries, and count its uses. */
export function setNativeWalker(path: string | null | undefined, above = NATIVE_WALK_ABOVE): void {
  walkerPath = path;
  nativeAbove = above;
  nativeWalks.count = 0;
}
export const nativeWalks = { count: 0 };

/** What the native walker lists: paths relative to the walked directory, and their stat fields. */
interface NativeListing {
  readonly rels: string[];
  /** Per file; undefined when the walker could not take it (the caller stats the file itself). */
  readonly stats: (FileStat | undefined)[];
  /** Some path has a line end (see LINE_END). */
  readonly lineEnds: boolean;
}

/** At most this much output is read from the walker (some 1.4 million files); past it, the walk is JavaScript's. */
const MAX_LISTING = 1 << 30;

/**
 * The regular files under the directory `abs` as the native walker lists them. 'link': a symbolic
 * link lies under it; undefined: no walker, or it failed (walk in JavaScript). `skip`: absolute paths
 * it neither enters nor lists. The walker runs as a child process while this process goes on (the
 * stat cache is loaded meanwhile, see `hashInputs`).
 */
function nativeWalk(abs: string, skip: readonly string[]): Promise<NativeListing | 'link' | undefined> {
  const file = walker();
  if (!file) return Promise.resolve(undefined);
  nativeWalks.count++;
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(file, [abs, ...skip], { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout!.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_LISTING) chunks.push(c);
      else child.kill('SIGKILL');
    });
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve(code === 3 ? 'link' : code === 0 && size <= MAX_LISTING ? parseListing(Buffer.concat(chunks, size)) : undefined));
  });
}

const RECORD = 8;
const HEADER = 8;

/** The walker's output (walker.c): "FWK1", a count, the records' doubles, then the NUL-terminated paths. */
function parseListing(out: Buffer): NativeListing | undefined {
  if (out.length < HEADER || out.toString('latin1', 0, 4) !== 'FWK1') return undefined;
  const n = new Uint32Array(out.buffer.slice(out.byteOffset + 4, out.byteOffset + 8))[0]!; // the machine's byte order
  const numsEnd = HEADER + n * RECORD * 8;
  if (out.length < numsEnd) return undefined;
  // The doubles in the machine's byte order, copied to an aligned buffer.
  const nums = new Float64Array(out.buffer.slice(out.byteOffset + HEADER, out.byteOffset + numsEnd));
  const joined = n === 0 ? '' : out.toString('utf8', numsEnd, out.length - 1);
  const rels = n === 0 ? [] : joined.split('\0');
  if (rels.length !== n) return undefined;
  const stats: (FileStat | undefined)[] = new Array(n);
  for (let i = 0, o = 0; i < n; i++, o += RECORD) {
    const mode = nums[o + 6]!;
    // Milliseconds exactly as Node computes them from the seconds and nanoseconds (msFromTimeSpec).
    stats[i] = mode < 0 ? undefined : { size: nums[o]!, mtimeMs: nums[o + 1]! * 1e3 + nums[o + 2]! / 1e6, ctimeMs: nums[o + 3]! * 1e3 + nums[o + 4]! / 1e6, ino: nums[o + 5]!, mode };
  }
  return { rels, stats, lineEnds: LINE_END.test(joined) };
}

/**
 * The other common cases, without fast-glob: every pattern is `dir/**`, a literal naming a file or a
 * directory (which means `dir/**`), or a simple name pattern under a static directory (`simpleGlob`).
 * The directories are walked synchronously with what fast-glob's options below ask for: dotfiles
 * included, `.git` and `ignoreDirs` skipped, unreadable directories skipped (suppressErrors). A
 * symbolic link anywhere in a walked directory, an odd file name, or anything else hands over to
 * fast-glob (undefined), which follows links. test/unit/cache-files-lazy.test.ts checks the results
 * against fast-glob's.
 *
 * A deep walk that meets more than NATIVE_WALK_ABOVE entries starts again in the native walker, which
 * also stats the files: their stats go into `seen` for the stat cache, so a large tree costs one
 * process instead of a Node `Stats` object per file (test/unit/cache-walker.test.ts compares the two).
 */
async function expandTrees(patterns: readonly string[], cwd: string, ignoreDirs: readonly string[], seen?: Map<string, SeenStat>): Promise<string[] | undefined> {
  const out = new Set<string>();
  const TOO_MANY = 'native';
  /**
   * Adds the files under `rel` (at any depth when `deep`) whose name `match` accepts (all without one)
   * to `found`; false: hand over to fast-glob; TOO_MANY: more than `budget.left` entries.
   */
  const walk = (rel: string, abs: string, found: string[], budget: { left: number }, match?: RegExp, deep = true): boolean | typeof TOO_MANY => {
    if (isIgnored(rel, abs, ignoreDirs)) return true;
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return true;
    }
    if ((budget.left -= entries.length) < 0) return TOO_MANY;
    // Paths are built by concatenation (abs is normalized), not path.resolve: 10,000 files cost ~10 ms
    // of resolve. An entry can only be an ignored directory, or lie under one, when one of them lies
    // under this directory; otherwise no entry is checked.
    const prefix = abs.endsWith(sep) ? abs : abs + sep;
    const inner = ignoreDirs.some((d) => d.startsWith(prefix));
    for (const e of entries) {
      const name = e.name;
      if (e.isSymbolicLink()) return false;
      if (name === '.git') continue;
      if (LINE_END.test(name) || (match && ODD_NAME.test(name))) return false;
      const child = `${rel}/${name}`;
      if (e.isDirectory()) {
        if (deep) {
          const r = walk(child, prefix + name, found, budget, match, deep);
          if (r !== true) return r;
        }
      } else if (e.isFile() && (!match || match.test(name))) {
        if (!inner || !isIgnored(child, prefix + name, ignoreDirs)) found.push(child);
      }
    }
    return true;
  };
  /** The walk of one root: in JavaScript, or natively once it proves large. */
  const walkRoot = async (rel: string, abs: string, match?: RegExp, deep = true): Promise<boolean> => {
    const found: string[] = [];
    const budget = { left: deep && walker() ? nativeAbove : Infinity };
    const r = walk(rel, abs, found, budget, match, deep);
    if (r === false) return false;
    if (r === true) {
      for (const f of found) out.add(f);
      return true;
    }
    const at = Date.now();
    const prefix = abs.endsWith(sep) ? abs : abs + sep;
    const native = await nativeWalk(abs, ignoreDirs.filter((d) => d.startsWith(prefix)));
    if (native === 'link' || native?.lineEnds) return false;
    if (native === undefined) {
      // The walker failed: walk in JavaScript after all.
      const again: string[] = [];
      if (walk(rel, abs, again, { left: Infinity }, match, deep) !== true) return false;
      for (const f of again) out.add(f);
      return true;
    }
    const { rels, stats } = native;
    for (let i = 0; i < rels.length; i++) {
      const p = rels[i]!;
      if (match) {
        if (ODD_NAME.test(p)) return false;
        if (!match.test(p.slice(p.lastIndexOf('/') + 1))) continue;
      }
      out.add(`${rel}/${p}`);
      const st = stats[i];
      if (seen && st) seen.set(prefix + p, { stat: st, at });
    }
    return true;
  };
  for (const p of patterns) {
    let root = treeRoot(p);
    if (root === undefined && !isPlainPattern(p)) {
      const g = simpleGlob(p);
      if (!g) return undefined;
      const abs = absolutePath(cwd, g.root);
      let st;
      try {
        st = statSync(abs, { throwIfNoEntry: false });
      } catch {
        st = undefined;
      }
      if (st?.isDirectory() && !(await walkRoot(g.root, abs, g.name, g.deep))) return undefined;
      continue;
    }
    if (root === undefined) {
      const rel = literal(p, notDynamic);
      if (rel === undefined || !isPlainPattern(p)) return undefined;
      let st;
      try {
        st = statSync(resolve(cwd, rel), { throwIfNoEntry: false });
      } catch {
        return undefined;
      }
      if (!st) continue;
      if (st.isFile()) {
        if (!isIgnored(rel, resolve(cwd, rel), ignoreDirs)) out.add(rel);
        continue;
      }
      if (!st.isDirectory()) continue;
      root = rel;
    }
    let st;
    try {
      st = statSync(resolve(cwd, root), { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (!st?.isDirectory()) continue;
    // A link on the way to the root (fast-glob resolves it) is fine; inside the tree it is not.
    if (!(await walkRoot(root, resolve(cwd, root)))) return undefined;
  }
  return [...out].sort();
}

/**
 * Files matched by `patterns` under `cwd`: relative paths with `/`, sorted by UTF-16 code units (the
 * default sort, without a callback per comparison), without duplicates. With `seen`, the stats taken
 * on the way (literal paths) are added to it. With `known`, a literal path that it says is a regular
 * file (a stat this run took already) is not stat'ed again.
 */
export async function expandGlobs(
  patterns: readonly string[],
  cwd: string,
  ignoreDirs: readonly string[] = [],
  seen?: Map<string, SeenStat>,
  known?: (abs: string) => SeenStat | undefined,
): Promise<string[]> {
  if (patterns.length === 0) return [];
  // One fast-glob call costs about a millisecond; a no-op over 1000 single-file tasks must not pay it,
  // nor loading fast-glob at all when every pattern is plain.
  const plain = patterns.every(isPlainPattern);
  if (plain) {
    const direct = expandLiterals(patterns, cwd, ignoreDirs, notDynamic, seen, known);
    if (direct) return direct;
  }
  const trees = await expandTrees(patterns, cwd, ignoreDirs, seen);
  if (trees) return trees;
  const fg = await fastGlob();
  if (!plain) {
    const direct = expandLiterals(patterns, cwd, ignoreDirs, (p) => fg.isDynamicPattern(p), seen, known);
    if (direct) return direct;
  }
  const positive = patterns.filter((p) => !isNegated(p)).map((p) => expandDirectory(fg, p, cwd));
  if (positive.length === 0) return [];
  const negative = patterns.filter(isNegated).map((p) => p.slice(1));
  const found = await fg(positive, {
    cwd,
    dot: true,
    onlyFiles: true,
    followSymbolicLinks: true,
    unique: true,
    suppressErrors: true,
    ignore: [...ignoresFor(fg, cwd, ignoreDirs), ...negative],
  });
  return found.sort();
}

/**
 * Declared output patterns that match nothing: a literal path that does not exist (file or
 * directory), or a glob with no file match. `present`: absolute paths already known to exist (stat'ed
 * by the caller just before), which are not stat'ed again.
 */
export async function unmatchedPatterns(patterns: readonly string[], cwd: string, present?: (abs: string) => boolean): Promise<string[]> {
  const missing: string[] = [];
  for (const p of patterns) {
    if (isNegated(p)) continue;
    if (isPlainPattern(p) || !(await fastGlob()).isDynamicPattern(p)) {
      const abs = resolve(cwd, p);
      if (present?.(abs)) continue;
      let exists = false;
      try {
        exists = statSync(abs, { throwIfNoEntry: false }) !== undefined;
      } catch {
        exists = false;
      }
      if (!exists) missing.push(p);
      continue;
    }
    const fg = await fastGlob();
    const hits = await fg(p, { cwd, dot: true, onlyFiles: true, followSymbolicLinks: true, suppressErrors: true, ignore: ALWAYS_IGNORED });
    if (hits.length === 0) missing.push(p);
  }
  return missing;
}
