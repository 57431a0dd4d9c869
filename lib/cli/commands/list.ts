/** `fabric list [pattern] [--json]`: what `make help` gives, from typed data, grouped by section. */
import type { TaskDef } from '../../api/types.js';
import { matchTargets, validateDefinitions } from '../../engine/analyze.js';
import { DiagnosticsError } from '../../diagnostics/error.js';
import { parseArgs, flagHelp, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { loadProject } from '../project.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'json', type: 'boolean', description: 'print the tasks as JSON (name, description, section, effect, params, deps, tags)' },
  { name: 'tag', type: 'string', repeat: true, value: 'TAG', description: 'only tasks with this tag' },
  { name: 'all', short: 'a', type: 'boolean', description: "also tasks tagged 'internal' (steps of a chain)" },
];

export function sectionOf(def: TaskDef): string {
  if (def.spec.section) return def.spec.section;
  const dot = def.name.indexOf('.');
  return dot === -1 ? def.name : def.name.slice(0, dot);
}

export function taskSummary(def: TaskDef) {
  return {
    name: def.name,
    description: def.spec.description ?? '',
    section: sectionOf(def),
    effect: def.spec.effect ?? 'mutating',
    tags: [...(def.spec.tags ?? [])],
    params: Object.entries(def.spec.params ?? {}).map(([name, p]) => ({
      name,
      ...(typeof p.default === 'string' ? { default: p.default } : typeof p.default === 'function' ? { default: '<computed once per run>' } : {}),
      ...(p.enum ? { enum: [...p.enum] } : {}),
      ...(p.pattern ? { pattern: p.pattern } : {}),
      ...(p.required ? { required: true } : {}),
      ...(p.secret ? { secret: true } : {}),
      ...(p.description ? { description: p.description } : {}),
    })),
    deps: (def.spec.deps ?? []).map((d) => (typeof d === 'string' ? d : d.task)),
  };
}

const command: CommandModule = {
  name: 'list',
  summary: 'List tasks, grouped by namespace',
  help: () => `Usage: fabric list [pattern...] [--json] [--tag TAG]

Lists every task with its description, grouped by section (the part of the name before the first dot
unless the task sets \`section\`). A pattern is a name or a glob such as 'minio.*'. Tasks tagged
'internal' (the steps of a chain, which run as part of it) are shown with --all.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals } = parseArgs(args, FLAGS);
    const project = await loadProject(ctx, {}, { config: false });
    const problems = validateDefinitions(project.tasks);
    if (problems.some((d) => d.severity === 'error')) throw new DiagnosticsError(problems);
    let tasks = [...project.tasks];
    if (positionals.length) {
      const names = tasks.map((t) => t.name);
      const keep = new Set(positionals.flatMap((p) => matchTargets(p.includes('*') ? p : `${p}*`, names)));
      tasks = tasks.filter((t) => keep.has(t.name));
    }
    if (flags['all'] !== true) tasks = tasks.filter((t) => !t.spec.tags?.includes('internal'));
    const tags = flags['tag'] as string[] | undefined;
    if (tags?.length) tasks = tasks.filter((t) => tags.some((tag) => t.spec.tags?.includes(tag)));
    if (flags['json']) {
      ctx.stdout.write(JSON.stringify(tasks.map(taskSummary), null, 2) + '\n');
      return 0;
    }
    const sections = new Map<string, TaskDef[]>();
    for (const t of tasks) {
      const s = sectionOf(t);
      let list = sections.get(s);
      if (!list) sections.set(s, (list = []));
      list.push(t);
    }
    const width = Math.min(40, Math.max(0, ...tasks.map((t) => t.name.length)));
    const color = ctx.stdout.isTTY === true && !ctx.env['NO_COLOR'];
    const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s);
    const cyan = (s: string) => (color ? `\x1b[36m${s}\x1b[0m` : s);
    let out = '';
    for (const [section, list] of sections) {
      out += `${bold(section)}\n`;
      for (const t of list) {
        const mark = (t.spec.effect ?? 'mutating') === 'mutating' ? '!' : ' ';
        out += `  ${cyan(t.name.padEnd(width))} ${mark} ${t.spec.description ?? ''}\n`;
      }
      out += '\n';
    }
    out += `${tasks.length} tasks ('!' = mutating). Run 'fabric graph <task>' to see dependencies.\n`;
    ctx.stdout.write(out);
    return 0;
  },
};
export default command;
