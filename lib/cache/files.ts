/**
 * Declared input and output globs → files. Globs are relative to the node's cwd (fast-glob syntax,
 * `!pattern` excludes); a pattern without glob characters that names a directory means everything
 * under it. Dotfiles match; `.git` and the cache directory itself are never inputs.
 */
import type FastGlobModule from 'fast-glob';
import { readdirSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
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

/**
 * The stat of a file taken while expanding a literal pattern, with `Date.now()` just before it: the
 * stat cache reuses it instead of taking it again (`StatCache.hashFiles`), keyed by absolute path.
 */
export interface SeenStat {
  readonly stats: Stats;
  readonly at: number;
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
): string[] | undefined {
  const out: string[] = [];
  for (const p of patterns) {
    const rel = literal(p, isDynamic);
    if (rel === undefined) return undefined;
    const abs = absolutePath(cwd, rel);
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
      seen?.set(abs, { stats: st, at });
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

/** File names the fast path leaves to fast-glob: control characters (line ends included) and backslashes. */
const ODD_NAME = /[\u0000-\u001f\u007f\\]/;

/**
 * The other common cases, without fast-glob: every pattern is `dir/**`, a literal naming a file or a
 * directory (which means `dir/**`), or a simple name pattern under a static directory (`simpleGlob`).
 * The directories are walked synchronously with what fast-glob's options below ask for: dotfiles
 * included, `.git` and `ignoreDirs` skipped, unreadable directories skipped (suppressErrors). A
 * symbolic link anywhere in a walked directory, an odd file name, or anything else hands over to
 * fast-glob (undefined), which follows links. test/unit/cache-files-lazy.test.ts checks the results
 * against fast-glob's.
 */
function expandTrees(patterns: readonly string[], cwd: string, ignoreDirs: readonly string[]): string[] | undefined {
  const out = new Set<string>();
  /** Adds the files under `rel` (at any depth when `deep`) whose name `match` accepts (all without one). */
  const walk = (rel: string, abs: string, match?: RegExp, deep = true): boolean => {
    if (isIgnored(rel, abs, ignoreDirs)) return true;
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return true;
    }
    // Paths are built by concatenation (abs is normalized), not path.resolve: 10,000 files cost ~10 ms
    // of resolve. An entry can only be an ignored directory, or lie under one, when one of them lies
    // under this directory; otherwise no entry is checked.
    const prefix = abs.endsWith(sep) ? abs : abs + sep;
    const inner = ignoreDirs.some((d) => d.startsWith(prefix));
    for (const e of entries) {
      const name = e.name;
      if (e.isSymbolicLink()) return false;
      if (name === '.git') continue;
      if (match && ODD_NAME.test(name)) return false;
      const child = `${rel}/${name}`;
      if (e.isDirectory()) {
        if (deep && !walk(child, prefix + name, match, deep)) return false;
      } else if (e.isFile() && (!match || match.test(name))) {
        if (!inner || !isIgnored(child, prefix + name, ignoreDirs)) out.add(child);
      }
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
      if (st?.isDirectory() && !walk(g.root, abs, g.name, g.deep)) return undefined;
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
    if (!walk(root, resolve(cwd, root))) return undefined;
  }
  return [...out].sort();
}

/**
 * Files matched by `patterns` under `cwd`: relative paths with `/`, sorted by UTF-16 code units (the
 * default sort, without a callback per comparison), without duplicates. With `seen`, the stats taken
 * on the way (literal paths) are added to it.
 */
export async function expandGlobs(patterns: readonly string[], cwd: string, ignoreDirs: readonly string[] = [], seen?: Map<string, SeenStat>): Promise<string[]> {
  if (patterns.length === 0) return [];
  // One fast-glob call costs about a millisecond; a no-op over 1000 single-file tasks must not pay it,
  // nor loading fast-glob at all when every pattern is plain.
  const plain = patterns.every(isPlainPattern);
  if (plain) {
    const direct = expandLiterals(patterns, cwd, ignoreDirs, notDynamic, seen);
    if (direct) return direct;
  }
  const trees = expandTrees(patterns, cwd, ignoreDirs);
  if (trees) return trees;
  const fg = await fastGlob();
  if (!plain) {
    const direct = expandLiterals(patterns, cwd, ignoreDirs, (p) => fg.isDynamicPattern(p), seen);
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
 * directory), or a glob with no file match.
 */
export async function unmatchedPatterns(patterns: readonly string[], cwd: string): Promise<string[]> {
  const missing: string[] = [];
  for (const p of patterns) {
    if (isNegated(p)) continue;
    if (isPlainPattern(p) || !(await fastGlob()).isDynamicPattern(p)) {
      let exists = false;
      try {
        exists = statSync(resolve(cwd, p), { throwIfNoEntry: false }) !== undefined;
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
