/**
 * `fabric explain <task>... [VAR=value...] [--json] [--all]`: fresh / cached / stale / never ran, and
 * exactly what changed since the last recorded run (inputs by path, env vars, params, dependencies,
 * command text). Computes fingerprints like a run would; never runs anything and writes nothing.
 */
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { EXIT } from '../context.js';
import { buildGraph, loadProject } from '../project.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'json', type: 'boolean', description: 'print one JSON document: every node of the selection, with its changes as data' },
  { name: 'all', type: 'boolean', description: 'also show dependencies that are fresh' },
];

const command: CommandModule = {
  name: 'explain',
  summary: 'Say whether a task is cached, fresh or stale, and what changed',
  help: () => `Usage: fabric explain <task>... [VAR=value...] [--json] [--all]

For the selected tasks and their dependencies, says what 'fabric run' with the same arguments would do
with each node, from the content cache's point of view:
  fresh      nothing changed since its last successful run
  cached     this exact state is in the cache: a run restores its outputs instead of running it
  stale      something changed since its last recorded run: it runs
  never ran  no run of this task with these params was recorded (compared with another param set if any)
and lists what changed: input files added, removed or changed (by path), env vars (names only for
secrets), params, dependency fingerprints, command text. Nothing is run. Only declared inputs count.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals, vars } = parseArgs(args, FLAGS, { vars: true });
    if (positionals.length === 0) throw new UsageError('no task given', 'usage: fabric explain <task>... [VAR=value...]');
    const project = await loadProject(ctx);
    const graph = buildGraph(project, positionals, vars, ctx.env);
    const { explainGraph, formatExplanations } = await import('../../cache/explain.js');
    const list = await explainGraph(graph, { dir: project.config.cacheDir, repoRoot: project.repoRoot, secretPatterns: project.config.secretPatterns });
    if (flags['json'] === true) {
      ctx.stdout.write(JSON.stringify({ cacheDir: project.config.cacheDir, cacheEnabled: project.config.cache, nodes: list }, null, 2) + '\n');
    } else {
      if (!project.config.cache) ctx.stdout.write('note: the cache is disabled by the configuration (cache: false): every task runs\n');
      ctx.stdout.write(formatExplanations(list, { all: flags['all'] === true }));
    }
    return EXIT.ok;
  },
};
export default command;
