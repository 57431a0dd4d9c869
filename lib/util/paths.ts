/**
 * `path.resolve` and `path.relative` for the hot paths, where Node's versions normalize their
 * arguments again on every call (~1-2 µs each): the cache joins every input and output path to its
 * cwd, and an evidence record lists every input relative to the repository root (10,000 in a large
 * tree). When the paths are already normalized, the answer is a concatenation or a slice; anything
 * else goes to Node's function, so the results are the same (test/unit/paths.test.ts checks both
 * against Node's on tables and random paths).
 */
import { relative, resolve, sep } from 'node:path';

/** A relative path with no empty, `.` or `..` segment (conservative: any `..` in it counts). */
const normalizedRelative = (p: string): boolean =>
  p !== '' && p !== '.' && !p.startsWith('/') && !p.startsWith('./') && !p.includes('..') && !p.includes('//') && !p.includes('/./') && !p.endsWith('/') && !p.endsWith('/.');

/** An absolute path that `path.resolve` returns unchanged. */
const normalizedAbsolute = (p: string): boolean =>
  p === '/' || (p.startsWith('/') && !p.endsWith('/') && !p.includes('//') && !p.includes('/./') && !p.includes('/../') && !p.endsWith('/.') && !p.endsWith('/..'));

/** normalizedAbsolute of the last directory asked about (the calls come in runs of one cwd or root). */
let lastDir: string | undefined;
let lastDirNormalized = false;
function normalizedDir(dir: string): boolean {
  if (dir !== lastDir) {
    lastDir = dir;
    lastDirNormalized = normalizedAbsolute(dir);
  }
  return lastDirNormalized;
}

/** `path.resolve(cwd, rel)`, by concatenation when both are already normalized. */
export function absolutePath(cwd: string, rel: string): string {
  if (sep !== '/' || !normalizedRelative(rel) || !normalizedDir(cwd)) return resolve(cwd, rel);
  return cwd === '/' ? cwd + rel : cwd + '/' + rel;
}

/** `path.relative(root, p)`, by a slice when both are normalized and `p` lies under `root`. */
export function relativeTo(root: string, p: string): string {
  if (sep === '/' && p.length > root.length + 1 && p.charCodeAt(root.length) === 47 && p.startsWith(root) && normalizedDir(root)) {
    // (root '/' never gets here: p[1] would be a name's first character, not '/'.)
    const rest = p.slice(root.length + 1);
    if (normalizedRelative(rest)) return rest;
  } else if (p === root && normalizedDir(root)) {
    return '';
  }
  return relative(root, p);
}

/** `relativeTo` as keys and evidence record paths: `/` between segments, and `.` for the root itself. */
export function relativePosix(root: string, p: string): string {
  const r = relativeTo(root, p);
  return r === '' ? '.' : sep === '/' ? r : r.split(sep).join('/');
}
