/** `fabric graph [task...] [VAR=value] [--format ascii|dot|mermaid|json]`: the dependency graph. */
import type { NodeId } from '../../engine/events.js';
import type { Graph } from '../../engine/graph.js';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { buildGraph, loadProject } from '../project.js';

const FLAGS: readonly FlagSpec[] = [{ name: 'format', type: 'string', value: 'ascii|dot|mermaid|json', description: 'output format (default ascii)' }];
const FORMATS = ['ascii', 'dot', 'mermaid', 'json'] as const;
type Format = (typeof FORMATS)[number];

export interface SimpleGraph {
  readonly roots: readonly string[];
  readonly nodes: ReadonlyMap<string, { readonly label: string; readonly deps: readonly string[]; readonly effect: string; readonly conditional: readonly string[] }>;
}

export function fromGraph(g: Graph): SimpleGraph {
  const nodes = new Map<string, { label: string; deps: readonly string[]; effect: string; conditional: readonly string[] }>();
  for (const id of g.order) {
    const n = g.nodes.get(id)!;
    nodes.set(id, { label: id, deps: n.deps, effect: n.effect, conditional: n.skippedDeps.map((s) => `${s.task} (when ${s.condition})`) });
  }
  return { roots: g.targets, nodes };
}

export function ascii(g: SimpleGraph): string {
  const printed = new Set<string>();
  let out = '';
  const walk = (id: string, prefix: string, last: boolean, top: boolean) => {
    const n = g.nodes.get(id);
    const mark = n?.effect === 'mutating' ? ' !' : '';
    const seen = printed.has(id) && (n?.deps.length ?? 0) > 0;
    out += top ? `${id}${mark}\n` : `${prefix}${last ? '└── ' : '├── '}${id}${mark}${seen ? ' (see above)' : ''}\n`;
    if (seen || !n) return;
    printed.add(id);
    const childPrefix = top ? '' : prefix + (last ? '    ' : '│   ');
    const kids = [...n.deps];
    n.deps.forEach((d, i) => walk(d, childPrefix, i === kids.length - 1 && n.conditional.length === 0, false));
    n.conditional.forEach((c, i) => (out += `${childPrefix}${i === n.conditional.length - 1 ? '└╌╌ ' : '├╌╌ '}${c} [skipped]\n`));
  };
  for (const r of g.roots) walk(r, '', true, true);
  return out;
}

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function dot(g: SimpleGraph): string {
  let out = 'digraph fabric {\n  rankdir=LR;\n  node [shape=box, fontname="monospace"];\n';
  for (const [id, n] of g.nodes) out += `  ${q(id)}${n.effect === 'mutating' ? ' [style=bold, color=firebrick]' : ''};\n`;
  for (const [id, n] of g.nodes) for (const d of n.deps) out += `  ${q(id)} -> ${q(d)};\n`;
  return out + '}\n';
}

export function mermaid(g: SimpleGraph): string {
  const ids = new Map<string, string>();
  let i = 0;
  for (const id of g.nodes.keys()) ids.set(id, `n${i++}`);
  let out = 'graph TD\n';
  for (const [id, n] of g.nodes) out += `  ${ids.get(id)}["${id.replace(/"/g, '#quot;')}${n.effect === 'mutating' ? ' !' : ''}"]\n`;
  for (const [id, n] of g.nodes) for (const d of n.deps) if (ids.has(d)) out += `  ${ids.get(id)} --> ${ids.get(d)}\n`;
  return out;
}

export function json(g: SimpleGraph): string {
  return (
    JSON.stringify(
      {
        roots: g.roots,
        nodes: [...g.nodes].map(([id, n]) => ({ id, effect: n.effect, deps: n.deps, ...(n.conditional.length ? { skipped: n.conditional } : {}) })),
        edges: [...g.nodes].flatMap(([id, n]) => n.deps.map((d) => [id, d] as [NodeId, NodeId])),
      },
      null,
      2,
    ) + '\n'
  );
}

const command: CommandModule = {
  name: 'graph',
  summary: 'Show the dependency graph (ascii, dot, mermaid, json)',
  help: () => `Usage: fabric graph [task...] [VAR=value...] [--format ascii|dot|mermaid|json]

Shows the dependency graph of the selected tasks as fabric would run it: one node per task and param
set, shared nodes once ("(see above)"), conditional dependencies that do not apply marked [skipped],
mutating nodes marked '!'. Without tasks, the graph of every task that needs no parameter. Edges point
from a task to what it depends on.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals, vars } = parseArgs(args, FLAGS, { vars: true });
    const format = (flags['format'] as string | undefined) ?? 'ascii';
    if (!FORMATS.includes(format as Format)) throw new UsageError(`unknown graph format "${format}"`, `use one of: ${FORMATS.join(', ')}`);
    const project = await loadProject(ctx, {}, { config: false });
    let targets = positionals;
    if (targets.length === 0) {
      // Every task that is nobody's dependency is a root.
      const depended = new Set(project.tasks.flatMap((t) => (t.spec.deps ?? []).map((d) => (typeof d === 'string' ? d : d.task))));
      targets = project.tasks.filter((t) => !depended.has(t.name)).map((t) => t.name);
    }
    const g = fromGraph(buildGraph(project, targets, vars, ctx.env));
    const text = format === 'dot' ? dot(g) : format === 'mermaid' ? mermaid(g) : format === 'json' ? json(g) : ascii(g);
    ctx.stdout.write(text);
    return 0;
  },
};
export default command;
