/** The command table. Each command module is imported only when it is the one being run. */
import type { CommandModule } from './context.js';

export const COMMANDS: Readonly<Record<string, { readonly summary: string; readonly load: () => Promise<{ default: CommandModule }> }>> = {
  run: { summary: 'Run tasks and their dependencies', load: () => import('./commands/run.js') },
  list: { summary: 'List tasks, grouped by namespace', load: () => import('./commands/list.js') },
  graph: { summary: 'Show the dependency graph (ascii, dot, mermaid, json)', load: () => import('./commands/graph.js') },
  plan: { summary: 'Print the dry-run plan of a selection and its digest', load: () => import('./commands/plan.js') },
  approve: { summary: 'Write a signed approval for a plan', load: () => import('./commands/approve.js') },
  explain: { summary: 'Say whether a task is cached, fresh or stale, and what changed', load: () => import('./commands/explain.js') },
  cache: { summary: 'Cache statistics, pruning and cleaning', load: () => import('./commands/cache.js') },
  evidence: { summary: 'List, show and verify evidence packets', load: () => import('./commands/evidence.js') },
  config: { summary: 'Print the effective configuration and where each value came from', load: () => import('./commands/config.js') },
};
