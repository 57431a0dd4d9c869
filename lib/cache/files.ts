/**
 * Declared input and output globs → files. Globs are relative to the node's cwd (fast-glob syntax,
 * `!pattern` excludes); a pattern without glob characters that names a directory means everything
 * under it. Dotfiles match; `.git` and the cache directory itself are never inputs.
 */
import fg from 'fast-glob';
import { statSync } from 'node:fs';
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';

const ALWAYS_IGNORED = ['**/.git/**'];

function isNegated(p: string): boolean {
  return p.startsWith('!');
}

/** `dir` → `dir/**` when `dir` is a literal path naming an existing directory. */
function expandDirectory(pattern: string, cwd: string): string {
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
export function ignoresFor(cwd: string, dirs: readonly string[]): string[] {
  const out = [...ALWAYS_IGNORED];
  for (const d of dirs) {
    const rel = relative(cwd, d);
    if (rel === '' ) continue; // the cwd itself is the cache dir: nothing sensible to ignore
    if (rel.startsWith('..') || isAbsolute(rel)) continue;
    out.push(`${fg.escapePath(rel.split(sep).join('/'))}/**`);
  }
  return out;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A literal path (no glob syntax, no escapes), as fast-glob would report it: `./a//b` → `a/b`. */
function literal(p: string): string | undefined {
  if (isNegated(p) || p.includes('\\') || fg.isDynamicPattern(p)) return undefined;
  const n = posix.normalize(p);
  return n === '.' || n.endsWith('/') || isAbsolute(n) ? undefined : n;
}

function isIgnored(rel: string, abs: string, ignoreDirs: readonly string[]): boolean {
  if (rel === '.git' || rel.startsWith('.git/') || rel.includes('/.git/')) return true;
  return ignoreDirs.some((d) => abs === d || abs.startsWith(d + sep));
}

/**
 * The common case without a directory walk: every pattern is a literal path. Files are taken as they
 * are; a literal naming a directory needs the walk (undefined).
 */
function expandLiterals(patterns: readonly string[], cwd: string, ignoreDirs: readonly string[]): string[] | undefined {
  const out: string[] = [];
  for (const p of patterns) {
    const rel = literal(p);
    if (rel === undefined) return undefined;
    const abs = resolve(cwd, rel);
    let st;
    try {
      st = statSync(abs, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (!st) continue;
    if (st.isDirectory()) return undefined;
    if (st.isFile() && !isIgnored(rel, abs, ignoreDirs)) out.push(rel);
  }
  return [...new Set(out)].sort(byCodeUnit);
}

/** Files matched by `patterns` under `cwd`: relative paths with `/`, sorted, without duplicates. */
export async function expandGlobs(patterns: readonly string[], cwd: string, ignoreDirs: readonly string[] = []): Promise<string[]> {
  if (patterns.length === 0) return [];
  // One fast-glob call costs about a millisecond; a no-op over 1000 single-file tasks must not pay it.
  const direct = expandLiterals(patterns, cwd, ignoreDirs);
  if (direct) return direct;
  const positive = patterns.filter((p) => !isNegated(p)).map((p) => expandDirectory(p, cwd));
  if (positive.length === 0) return [];
  const negative = patterns.filter(isNegated).map((p) => p.slice(1));
  const found = await fg(positive, {
    cwd,
    dot: true,
    onlyFiles: true,
    followSymbolicLinks: true,
    unique: true,
    suppressErrors: true,
    ignore: [...ignoresFor(cwd, ignoreDirs), ...negative],
  });
  return found.sort(byCodeUnit);
}

/**
 * Declared output patterns that match nothing: a literal path that does not exist (file or
 * directory), or a glob with no file match.
 */
export async function unmatchedPatterns(patterns: readonly string[], cwd: string): Promise<string[]> {
  const missing: string[] = [];
  for (const p of patterns) {
    if (isNegated(p)) continue;
    if (!fg.isDynamicPattern(p)) {
      let exists = false;
      try {
        exists = statSync(resolve(cwd, p), { throwIfNoEntry: false }) !== undefined;
      } catch {
        exists = false;
      }
      if (!exists) missing.push(p);
      continue;
    }
    const hits = await fg(p, { cwd, dot: true, onlyFiles: true, followSymbolicLinks: true, suppressErrors: true, ignore: ALWAYS_IGNORED });
    if (hits.length === 0) missing.push(p);
  }
  return missing;
}
