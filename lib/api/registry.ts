import type { CallSite, TaskDef, TaskSpec } from './types.js';

/**
 * The task registry is shared through a global symbol so that the CLI bundle and the fabricfile
 * bundle (which imports `fabric` from dist/api.js) see the same list even as two module instances.
 */
const KEY = Symbol.for('fabric.registry.v1');

export interface Registry {
  tasks: TaskDef[];
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
  registry().tasks = [];
}

/** Frames from these files are fabric's own, never the user's declaration site. */
function isFabricFrame(file: string): boolean {
  return /[\\/](?:dist|lib)[\\/](?:api|cli|engine)[^\\/]*\.[cm]?[jt]s$/.test(file) || file.startsWith('node:') || /[\\/]dist[\\/](?:api|cli)\.js$/.test(file);
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
      if (parsed === null) parsed = callSiteFromStack(holder.stack);
      return parsed;
    },
    __fabricTask: true,
  };
  registry().tasks.push(def);
  return def;
}
