/** The native helpers built beside the bundle (scripts/build.mjs): the fork server and the tree walker. */
import { accessSync, constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Whether `p` is a file this process may execute. */
export function executable(p: string): boolean {
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of the native helper `name`, or undefined when the build made none (no C compiler). dist/
 * holds the helpers; this module runs from dist/ or dist/chunks/ (the CLI), or from build/lib/util/
 * (the compiled tests, beside dist/ in the package).
 */
export function nativeHelper(name: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    for (const p of [join(dir, name), join(dir, 'dist', name)]) if (executable(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}
