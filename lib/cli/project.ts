/**
 * The CLI side of loading: find the fabricfile (walking up, or -f), load it, read the config, and build
 * the graph for a selection. Every bad input becomes a DiagnosticsError, printed once by main.ts.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TaskDef } from '../api/types.js';
import { DiagnosticsError } from '../diagnostics/error.js';
import { analyze } from '../engine/analyze.js';
import type { Graph } from '../engine/graph.js';
import { findFabricfile, loadFabricfile } from '../engine/load.js';
// config.js is imported only by commands that read the config file (list and graph never do).
import type { ConfigFlags, EffectiveConfig } from './config.js';
import type { CliContext } from './context.js';

export interface Project {
  readonly fabricfile: string;
  /** The fabricfile's directory: relative paths in tasks resolve from here. */
  readonly repoRoot: string;
  readonly tasks: readonly TaskDef[];
  readonly config: EffectiveConfig;
}

/** dist/api.js of this installation (the module `import ... from 'fabric'` resolves to in fabricfiles). */
export function apiModulePath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'dist', 'api.js');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find dist/api.js: run `npm run build`');
}

export function locateFabricfile(ctx: CliContext): string {
  const cwd = ctx.globals.cwd;
  try {
    if (!statSync(cwd).isDirectory()) throw new Error();
  } catch {
    throw new DiagnosticsError([{ severity: 'error', code: 'bad-directory', message: `cannot use directory ${cwd}: it does not exist or is not a directory` }]);
  }
  if (ctx.globals.file) {
    if (!existsSync(ctx.globals.file)) throw new DiagnosticsError([{ severity: 'error', code: 'no-fabricfile', message: `no such fabricfile: ${ctx.globals.file}` }]);
    return ctx.globals.file;
  }
  let found: string | undefined;
  try {
    found = findFabricfile(cwd);
  } catch (e) {
    throw new DiagnosticsError([{ severity: 'error', code: 'unreadable-directory', message: `cannot search ${cwd} for a fabricfile: ${(e as Error).message}` }]);
  }
  if (!found) {
    throw new DiagnosticsError([{ severity: 'error', code: 'no-fabricfile', message: `no fabricfile.ts found in ${cwd} or any parent directory`, hint: 'create fabricfile.ts, or pass -f FILE / -C DIR' }]);
  }
  return found;
}

export async function loadProject(ctx: CliContext, flags: ConfigFlags = {}, opts: { config?: boolean; sourceMaps?: 'eager' | 'lazy' } = {}): Promise<Project> {
  const fabricfile = locateFabricfile(ctx);
  const repoRoot = dirname(fabricfile);
  const [tasks, config] = await Promise.all([
    loadFabricfile({ fabricfile, buildDir: join(repoRoot, '.fabric', 'build'), apiModule: apiModulePath(), sourceMaps: opts.sourceMaps }),
    opts.config === false ? Promise.resolve(undefined) : import('./config.js').then((m) => m.loadConfig(repoRoot, flags)),
  ]);
  return { fabricfile, repoRoot, tasks, config: config ?? DEFAULT_LIGHT_CONFIG(repoRoot) };
}

/** For commands that never need the config file (list, graph): defaults only, no file read. */
const DEFAULT_LIGHT_CONFIG = (repoRoot: string): EffectiveConfig => ({
  jobs: 1,
  output: undefined,
  evidence: false,
  evidenceDir: join(repoRoot, 'evidence'),
  cache: false,
  cacheDir: join(repoRoot, '.fabric', 'cache'),
  graceMs: 3000,
  secretPatterns: [],
  keyrings: {},
  sources: {},
  file: undefined,
});

export function buildGraph(
  project: Project,
  targets: readonly string[],
  vars: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  opts: { readonly ci?: boolean; readonly memo?: Map<() => string, string> } = {},
): Graph {
  const memo = opts.memo;
  const r = analyze({
    ci: opts.ci ?? false,
    tasks: project.tasks,
    targets,
    vars,
    env,
    repoRoot: project.repoRoot,
    fabricfile: project.fabricfile,
    secretPatterns: project.config.secretPatterns,
    ...(memo ? { defaultsMemo: memo } : {}),
  });
  if (!r.ok) throw new DiagnosticsError(r.error);
  return r.value;
}
