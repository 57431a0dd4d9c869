/**
 * `path.relative` for the hot paths (an evidence record lists every input, 10,000 in a large tree;
 * the cache checks every output path): Node's version resolves both arguments again on every call,
 * ~2 µs each. When both paths are already normalized and absolute and `p` lies under `root`, the
 * answer is a slice; anything else goes to `path.relative`, so the results are the same.
 */
import { relative, resolve, sep } from 'node:path';

/** Roots seen, with whether each is normalized (a handful per run: the repository, task cwds). */
const normalizedRoots = new Map<string, boolean>();

/** A relative path with a segment that `path.resolve` would change: empty, `.` or `..`. */
const NOT_NORMAL = /(?:^|\/)\.\.?(?:\/|$)|\/\/|^\/|\/$/;

function rootIsNormal(root: string): boolean {
  let ok = normalizedRoots.get(root);
  if (ok === undefined) {
    ok = resolve(root) === root;
    if (normalizedRoots.size > 256) normalizedRoots.clear();
    normalizedRoots.set(root, ok);
  }
  return ok;
}

/** `path.relative(root, p)`, with a fast path for a normalized absolute `p` under a normalized `root`. */
export function relativeTo(root: string, p: string): string {
  if (sep === '/' && p.length > root.length && p.charCodeAt(root.length) === 47 && p.startsWith(root) && rootIsNormal(root)) {
    // (root '/' never gets here: p[1] would be a name's first character, not '/'.)
    const rest = p.slice(root.length + 1);
    if (rest !== '' && !NOT_NORMAL.test(rest)) return rest;
  } else if (p === root && rootIsNormal(root)) {
    return '';
  }
  return relative(root, p);
}
