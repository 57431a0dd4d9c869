/**
 * `fabric plan [task...] [VAR=value] [--json]`: the dry-run plan of a selection (every node with its
 * params, effect, variant, commands and guards) and its digest, the value approvals bind to.
 * Nothing runs and no guard is evaluated (that is `fabric run --dry-run`).
 */
import type { PlannedNode } from '../../engine/events.js';
import type { Graph } from '../../engine/graph.js';
import { graphDigest, plannedNodes } from '../../engine/plan.js';
import { REDACTED, redactText } from '../../util/redact.js';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { EXIT } from '../context.js';
import { gitFacts } from '../git.js';
import { buildGraph, loadProject } from '../project.js';

const FLAGS: readonly FlagSpec[] = [{ name: 'json', type: 'boolean', description: 'print the plan and its digest as JSON' }];

export interface PlanOutput {
  readonly targets: readonly string[];
  /** `sha256:<hex>` over the canonical plan (see lib/engine/plan.ts); what `fabric approve` binds. */
  readonly digest: string;
  readonly gitCommit: string | null;
  readonly dirty: boolean | null;
  /** The planned nodes in topological order (secret values shown as [REDACTED]). */
  readonly nodes: readonly PlannedNode[];
  /** The guards each node carries (evaluated by `fabric run`, shown by `fabric run --dry-run`). */
  readonly guards: Readonly<Record<string, readonly { readonly name: string; readonly kind: string; readonly description: string }[]>>;
}

/** The plan of a graph, with secret param values replaced (the digest is computed on the real plan). */
export function planOutput(graph: Graph, git: { commit: string | undefined; dirty: boolean | undefined }): PlanOutput {
  const raw = plannedNodes(graph);
  const digest = graphDigest(graph);
  const secrets = [...new Set([...graph.nodes.values()].flatMap((n) => n.secrets))];
  const nodes = raw.map((p) => {
    const node = graph.nodes.get(p.id)!;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.params)) params[k] = node.task.spec.params?.[k]?.secret || (v !== '' && node.secrets.includes(v)) ? REDACTED : v;
    return { ...p, params };
  });
  const guards: Record<string, { name: string; kind: string; description: string }[]> = {};
  for (const id of graph.order) {
    const n = graph.nodes.get(id)!;
    if (n.guards.length) guards[id] = n.guards.map((g) => ({ name: String(g.name), kind: String(g.kind), description: String(g.description ?? '') }));
  }
  const out: PlanOutput = { targets: graph.targets, digest, gitCommit: git.commit ?? null, dirty: git.dirty ?? null, nodes, guards };
  // Belt and braces: no secret value in clear anywhere in the printed plan.
  return JSON.parse(redactText(JSON.stringify(out), secrets)) as PlanOutput;
}

export function planText(p: PlanOutput): string {
  const lines: string[] = [];
  lines.push(`Plan for ${p.targets.join(' ')} (${p.nodes.length} node${p.nodes.length === 1 ? '' : 's'}, dependencies first)`);
  p.nodes.forEach((n, i) => {
    const tags = [n.effect === 'mutating' ? 'MUTATING' : 'read-only'];
    if (n.variant) tags.push(`variant ${n.variant}`);
    if (n.gate) tags.push(`gate: ${n.gate}`);
    lines.push(`${String(i + 1).padStart(3)}. ${n.id}  [${tags.join(', ')}]`);
    if (n.deps.length) lines.push(`       after: ${n.deps.join(', ')}`);
    for (const s of n.skippedDeps) lines.push(`       skipped dependency ${s.task} (when ${s.condition})`);
    for (const c of n.commands) lines.push(`       $ ${c}`);
    if (n.commands.length === 0) lines.push('       (no commands)');
    for (const g of p.guards[n.id] ?? []) lines.push(`       guard ${g.name}: ${g.description}`);
  });
  lines.push(`digest: ${p.digest}`);
  lines.push(`commit: ${p.gitCommit ?? '(not a git work tree)'}${p.dirty ? ' (uncommitted changes)' : ''}`);
  return lines.join('\n') + '\n';
}

const command: CommandModule = {
  name: 'plan',
  summary: 'Print the dry-run plan of a selection and its digest',
  help: () => `Usage: fabric plan <task|glob>... [VAR=value...] [--json]

Prints what 'fabric run' would do for the same selection, without running or evaluating anything:
every node (task + params) in dependency order with its effect, chosen variant, commands and guards,
then the plan digest. 'fabric approve' binds an approval to this digest, so a changed plan
(other params, other commands, another task in the closure) invalidates the approval.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals, vars } = parseArgs(args, FLAGS, { vars: true });
    if (positionals.length === 0) throw new UsageError('no task given', "usage: fabric plan <task>... [VAR=value] (see 'fabric list')");
    const project = await loadProject(ctx);
    const graph = buildGraph(project, positionals, vars, ctx.env);
    const git = gitFacts(project.repoRoot);
    const out = planOutput(graph, git);
    ctx.stdout.write(flags['json'] === true ? JSON.stringify(out, null, 2) + '\n' : planText(out));
    return EXIT.ok;
  },
};
export default command;
