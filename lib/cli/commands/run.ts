/**
 * `fabric run <task|glob>... [VAR=value...]`: analyze → guards (whole selection, before anything starts)
 * → schedule, with the renderer, the evidence writer and the cache picked here and passed in.
 */
import type { LocalCache } from '../../cache/local.js';
import type { EventSink } from '../../engine/events.js';
import { graphDigest } from '../../engine/plan.js';
import { runGraph } from '../../engine/run.js';
import { isCiMode } from '../../guards/ci.js';
import { defaultOperator, linePrompt, makeFactsProvider } from '../../guards/facts.js';
import { FanoutSink } from '../../render/fanout.js';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CliContext, CommandModule } from '../context.js';
import { EXIT } from '../context.js';
import { GIT_TIMEOUT_MS, gitCommit, gitFactsAsync, type GitRunner } from '../git.js';
import { groupSpawner } from '../../engine/spawn.js';
import { pickRenderer } from '../pick-renderer.js';
import { buildGraph, loadProject } from '../project.js';
import { tuneTiering } from '../tiering.js';
import { VERSION } from '../version.js';

export const RUN_FLAGS: readonly FlagSpec[] = [
  { name: 'jobs', short: 'j', type: 'number', value: 'N', description: 'run up to N tasks at once (default: number of CPUs)' },
  { name: 'keep-going', short: 'k', type: 'boolean', description: 'after a failure, run everything not downstream of it' },
  { name: 'dry-run', short: 'n', type: 'boolean', description: 'print the plan (nodes, params, commands, guard decisions) and run nothing' },
  { name: 'output', short: 'o', type: 'string', value: 'tty|plain|grouped|json', description: 'renderer (default: tty on a terminal, plain otherwise)' },
  { name: 'events', type: 'string', value: 'FILE', description: 'also write the JSON event stream to FILE (or set FABRIC_EVENT_LOG)' },
  { name: 'ci', type: 'boolean', description: 'CI mode: refuse any selection that could mutate (also on when CI is set, except empty/0/false)' },
  { name: 'cache', type: 'boolean', description: 'use the content cache (--no-cache: neither read nor write it)' },
  { name: 'force', type: 'boolean', description: 'run every task even when the cache has a hit (results are still recorded)' },
  { name: 'evidence', type: 'boolean', description: 'write an evidence packet (--no-evidence to skip)' },
];

const OUTPUTS = ['tty', 'plain', 'grouped', 'json'] as const;

const command: CommandModule = {
  name: 'run',
  summary: 'Run tasks and their dependencies',
  help: () => `Usage: fabric run <task|glob>... [VAR=value...] [flags]

Runs the selected tasks and everything they depend on, each (task, params) node once, in parallel.
Every guard of every selected node is evaluated before anything starts; in CI mode a selection that
could mutate is refused with the dependency path. VAR=value sets params as on a make command line;
params also come from the environment.

${flagHelp(RUN_FLAGS)}

Exit codes: 0 ok, 1 a task failed, 2 usage or definition error or refused by a guard, 130 interrupted.
`,
  async run(ctx, args) {
    tuneTiering(process.execArgv, ctx.env['NODE_OPTIONS']);
    const { flags, positionals, vars } = parseArgs(args, RUN_FLAGS, { vars: true });
    if (positionals.length === 0) throw new UsageError('no task given', "usage: fabric run <task>... (see 'fabric list')");
    const output = flags['output'] as string | undefined;
    if (output !== undefined && !OUTPUTS.includes(output as (typeof OUTPUTS)[number])) throw new UsageError(`unknown output "${output}"`, `use one of: ${OUTPUTS.join(', ')}`);
    const jobsFlag = flags['jobs'] as number | undefined;
    if (jobsFlag !== undefined && (!Number.isInteger(jobsFlag) || jobsFlag < 1)) throw new UsageError(`-j needs a whole number ≥ 1, got ${jobsFlag}`);
    const dryRun = flags['dry-run'] === true;
    // A run that writes evidence asks git for the commit: the fork server starts now, while the
    // project loads, so that git (and the first commands) need not fork this process.
    if (!dryRun && flags['evidence'] !== false) groupSpawner.prepare?.();
    // The modules the run needs after the project loads are loaded with it.
    const [runIdModule, cacheModule, sinkModule] = await Promise.all([
      import('../../evidence/run-id.js'),
      dryRun ? undefined : import('../../cache/local.js'),
      dryRun || flags['evidence'] === false ? undefined : import('../../evidence/sink.js'),
    ]);
    const project = await loadProject(
      ctx,
      {
        jobs: jobsFlag,
        output: output as 'tty' | 'plain' | 'grouped' | 'json' | undefined,
        cache: flags['cache'] as boolean | undefined,
        evidence: flags['evidence'] as boolean | undefined,
      },
      // Task functions run: their stack traces should point at the TypeScript sources.
      { sourceMaps: dryRun ? 'lazy' : 'eager' },
    );
    const config = project.config;
    // The evidence packet records the commit and the dirty flag; guards read the commit and the plan
    // digest through their facts, which are built only if some node has a guard (or in CI mode). git
    // runs while the graph is built and the run's modules load.
    const gitting = config.evidence && !dryRun ? gitFactsAsync(serverGit(project.repoRoot, ctx.env)) : undefined;
    const ci = isCiMode(ctx.env, flags['ci'] === true);
    let graph;
    try {
      graph = buildGraph(project, positionals, vars, ctx.env, { ci });
    } catch (e) {
      await gitting; // no git process outlives the command
      throw e;
    }
    const op = defaultOperator(ctx.env);
    const runId = runIdModule.newRunId();

    const sinks: EventSink[] = [];
    const eventsFile = (flags['events'] as string | undefined) ?? ctx.env['FABRIC_EVENT_LOG'];
    sinks.push(await pickRenderer({ output: config.output, out: ctx.stdout, env: ctx.env, cwd: ctx.globals.cwd, ...(eventsFile ? { eventsFile } : {}) }));
    let cache: LocalCache | undefined;
    const git = await gitting;
    if (git) {
      // Loaded above unless --no-evidence was given (then evidence is off and this is not reached).
      const { createEvidenceSink, loadSigners } = sinkModule ?? (await import('../../evidence/sink.js'));
      // Signing keys are loaded before anything runs: a missing or unreadable key is a usage error now, not after the run.
      let signers;
      try {
        signers = await loadSigners(config.signing);
      } catch (e) {
        const { EvidenceKeyError } = await import('../../evidence/sign.js');
        if (!(e instanceof EvidenceKeyError)) throw e;
        ctx.stderr.write(`fabric: evidence signing: ${e.file ? `${e.file}: ` : ''}${e.message}\n`);
        return EXIT.usage;
      }
      sinks.push(
        createEvidenceSink({
          dir: config.evidenceDir,
          runId,
          graph,
          argv: ctx.argv,
          version: VERSION,
          repoRoot: project.repoRoot,
          ci,
          operator: op,
          git: { ...(git.commit ? { commit: git.commit } : {}), ...(git.dirty !== undefined ? { dirty: git.dirty } : {}) },
          secretValues: [...new Set([...graph.nodes.values()].flatMap((n) => n.secrets))],
          ...(config.signing ? { signing: config.signing } : {}),
          signers,
          secretPatterns: config.secretPatterns,
          // The cache hashes inputs (and stored outputs) anyway: the packet reuses those digests.
          knownDigests: (n) => cache?.fileDigests?.(n),
        }),
      );
    }
    const sink = sinks.length === 1 ? sinks[0]! : new FanoutSink(sinks);
    // With --no-cache the provider still runs (disabled): it checks declared outputs, it just neither reads nor writes entries.
    if (cacheModule) {
      // Loaded above exactly when this is not a dry run.
      const { createLocalCache } = cacheModule;
      cache = createLocalCache({
        dir: config.cacheDir,
        repoRoot: project.repoRoot,
        secretPatterns: config.secretPatterns,
        enabled: config.cache,
        warn: (message: string) => sink.onEvent({ type: 'warning', message }),
      });
    }
    // A confirmation may be asked only on a terminal outside CI; otherwise confirm guards fail closed.
    const prompt = !ci && ctx.stdin.isTTY && ctx.stdout.isTTY ? linePrompt(ctx.stdin, ctx.stderr, ctx.signal) : undefined;
    const facts = makeFactsProvider({
      graph,
      env: ctx.env,
      ci,
      interactive: prompt !== undefined,
      operator: op,
      gitCommit: git ? git.commit : () => gitCommit(project.repoRoot),
      planDigest: () => graphDigest(graph),
      keyrings: config.keyrings,
      secretPatterns: config.secretPatterns,
      ...(prompt ? { prompt } : {}),
    });
    let outcome;
    let closeError: Error | undefined;
    try {
      outcome = await runGraph({
        graph,
        runId,
        jobs: config.jobs,
        keepGoing: flags['keep-going'] === true,
        dryRun,
        ci,
        emit: (e) => sink.onEvent(e),
        signal: ctx.signal,
        graceMs: config.graceMs,
        ...(cache ? { cache } : {}),
        force: flags['force'] === true,
        guardFacts: facts,
      });
    } finally {
      // Saves the stat cache, so the next no-op run does not re-hash unchanged inputs.
      await cache?.close();
      try {
        await sink.close?.();
      } catch (e) {
        // The evidence writer reports what it could not write without a stack; anything else is a bug.
        if (!(e instanceof Error && e.name === 'EvidenceError')) throw e;
        closeError = e;
      }
    }
    if (closeError) {
      ctx.stderr.write(`fabric: evidence: ${closeError.message}\n`);
      if (outcome.ok) return EXIT.failed;
    }
    if (outcome.interrupted) return EXIT.interrupted;
    if (outcome.denied) return EXIT.usage;
    return outcome.ok ? EXIT.ok : EXIT.failed;
  },
};
export default command;

/** git through the engine's spawner: by the fork server when it is ready (no fork of this process), else child_process. */
function serverGit(cwd: string, env: Readonly<Record<string, string | undefined>>): GitRunner {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  return (args) =>
    new Promise((resolve) => {
      let out = '';
      const h = groupSpawner.spawn({ cmd: ['git', '-C', cwd, ...args], cwd, env: clean, graceMs: 1000, onOutput: (stream, chunk) => void (stream === 'stdout' && (out += chunk)) });
      const timer = setTimeout(() => void h.terminate(1000), GIT_TIMEOUT_MS);
      h.exited.then(
        (x) => {
          clearTimeout(timer);
          resolve(x.code === 0 && !h.terminated ? out.trim() : undefined);
        },
        () => {
          clearTimeout(timer);
          resolve(undefined);
        },
      );
    });
}
