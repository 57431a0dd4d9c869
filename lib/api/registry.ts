import type { CallSite, TaskDef, TaskSpec } from './types.js';

/**
 * The task registry is shared through a global symbol so that the CLI bundle and the fabricfile
 * bundle (which imports `fabric` from dist/api.js) see the same list even as two module instances.
 */
const KEY = Symbol.for('fabric.registry.v1');

export interface Registry {
  tasks: TaskDef[];
  /**
   * Maps a call site in the generated bundle back to the source (set by the loader when Node's own
   * source-map support is off; with it on, stacks arrive mapped already).
   */
  mapSite?: ((site: CallSite) => CallSite) | undefined;
}

export function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  let r = g[KEY];
  if (!r) {
    r = { tasks: [] };
    g[KEY] = r;
  }
  return r;
}

export function resetRegistry(): void {
  const r = registry();
  r.tasks = [];
  r.mapSite = undefined;
}

/** The first frame outside fabric, mapped to its source when the loader installed a mapper. */
export function userCallSite(stack: string | undefined): CallSite | undefined {
  const site = callSiteFromStack(stack);
  const map = registry().mapSite;
  return site && map ? map(site) : site;
}

/**
 * fabric's own code: `<pkg>/dist/`, `<pkg>/lib/` (what source maps point at) and `<pkg>/build/lib/`.
 * Frames there are never the user's declaration site.
 */
const OWN_DIRS: readonly string[] = (() => {
  try {
    const here = decodeURIComponent(new URL('.', import.meta.url).pathname);
    const m = /^(.*?)[\\/](?:build[\\/]lib|dist|lib)[\\/]/.exec(here);
    const root = m ? m[1]! : here;
    return [`${root}/dist/`, `${root}/lib/`, `${root}/build/lib/`];
  } catch {
    return [];
  }
})();

function isFabricFrame(file: string): boolean {
  return file.startsWith('node:') || file.includes('/node_modules/') || OWN_DIRS.some((d) => file.startsWith(d));
}

const FRAME = /\(?((?:file:\/\/)?[^\s()]+?):(\d+):(\d+)\)?\s*$/;

/** Parse a V8 stack for the first frame outside fabric (esbuild's extractCallerV8 idea). */
export function callSiteFromStack(stack: string | undefined): CallSite | undefined {
  if (!stack) return undefined;
  for (const raw of stack.split('\n').slice(1)) {
    const m = FRAME.exec(raw.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) file = decodeURIComponent(new URL(file).pathname);
    if (isFabricFrame(file)) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

export function defineTask(name: string, spec: TaskSpec): TaskDef {
  const holder = new Error();
  let parsed: CallSite | undefined | null = null;
  const def: TaskDef = {
    name,
    spec,
    site() {
      if (parsed === null) parsed = userCallSite(holder.stack);
      return parsed;
    },
    __fabricTask: true,
  };
  registry().tasks.push(def);
  return def;
}
