/**
 * Text for the dry-run plan, guard decisions and denials. Pure functions from event data to lines,
 * shared by the plain and listr renderers (and usable by `fabric plan`).
 */
import type { NodeId, PlannedNode } from '../engine/events.js';
import type { GuardDecision, GuardOutcome } from '../guards/types.js';
import { unreachable } from '../util/unreachable.js';
import { makeStyle, type Style } from './style.js';

const PLAIN = makeStyle(false);

function indentBlock(text: string, first: string, rest: string): string[] {
  return text.split('\n').map((l, i) => (i === 0 ? first : rest) + l);
}

/**
 * The exact plan: nodes in the given (topological) order, numbered, with everything that decides what
 * they do. Commands are printed as planned (already expanded and redacted by the engine).
 */
export function formatPlan(nodes: readonly PlannedNode[], targets: readonly NodeId[], style: Style = PLAIN): string[] {
  const lines: string[] = [];
  lines.push(style.bold(`Plan: ${nodes.length} node${nodes.length === 1 ? '' : 's'}${targets.length ? ` for ${targets.join(', ')}` : ''} (dry run: nothing will be started)`));
  const width = String(nodes.length).length;
  nodes.forEach((n, i) => {
    const num = `${String(i + 1).padStart(width)}. `;
    const pad = ' '.repeat(num.length + 2);
    lines.push('');
    lines.push(`${num}${style.bold(n.id)}${n.effect === 'mutating' ? style.yellow('  [mutating]') : style.dim('  [read-only]')}`);
    const field = (name: string, value: string) => lines.push(`${pad}${style.dim(name.padEnd(8))} ${value}`);
    field('task', n.task);
    const params = Object.entries(n.params);
    field('params', params.length ? params.map(([k, v]) => `${k}=${v}`).join(' ') : '(none)');
    field('effect', n.effect);
    if (n.variant !== undefined) field('variant', n.variant);
    if (n.gate !== undefined) field('gate', n.gate);
    if (n.mutex.length) field('mutex', n.mutex.join(', '));
    if (n.tags.length) field('tags', n.tags.join(', '));
    field('deps', n.deps.length ? n.deps.join(', ') : '(none)');
    for (const s of n.skippedDeps) field('skipped', `${s.task} (condition false: ${s.condition})`);
    field('cwd', n.cwd);
    if (n.commands.length === 0) field('run', '(nothing: grouping task)');
    for (const c of n.commands) lines.push(...indentBlock(c, `${pad}$ `, `${pad}  `));
  });
  return lines;
}

const LABEL_WIDTH = 12;

function outcomeMark(outcome: GuardOutcome, style: Style): string {
  const label = (mark: string, name: string) => `${mark} ${name}`.padEnd(LABEL_WIDTH);
  switch (outcome) {
    case 'allow':
      return style.green(label('✓', 'allow'));
    case 'deny':
      return style.red(label('✗', 'deny'));
    case 'overridden':
      return style.yellow(label('!', 'overridden'));
    case 'skip':
      return style.dim(label('-', 'skip'));
    default:
      return unreachable(outcome);
  }
}

/** Lines describing one decision (outcome, guard, reason, remedy, override record), indented by `pad`. */
export function formatDecision(d: GuardDecision, pad: string, style: Style = PLAIN): string[] {
  const lines = [`${pad}${outcomeMark(d.outcome, style)} ${d.guard}: ${d.reason}`];
  const sub = pad + ' '.repeat(LABEL_WIDTH + 1);
  if (d.remedy) lines.push(`${sub}remedy: ${d.remedy}`);
  if (d.override) {
    const o = d.override;
    lines.push(`${sub}override: ${o.variable} by ${o.operator} at ${o.at}, ${o.reasonVariable}="${o.reason}"`);
    lines.push(`${sub}overrode: ${o.overrode}: ${o.overrodeReason}`);
  }
  return lines;
}

/** Guard decisions grouped by node, nodes in plan order (nodes without any decision are listed once at the end). */
export function formatGuardDecisions(
  order: readonly NodeId[],
  decisions: ReadonlyMap<NodeId, readonly GuardDecision[]>,
  style: Style = PLAIN,
): string[] {
  const lines: string[] = [style.bold('Guard decisions:')];
  const seen = new Set<NodeId>();
  const without: NodeId[] = [];
  const ids = [...order, ...[...decisions.keys()].filter((k) => !order.includes(k))];
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    const ds = decisions.get(id);
    if (!ds || ds.length === 0) {
      without.push(id);
      continue;
    }
    lines.push(`  ${id}`);
    for (const d of ds) lines.push(...formatDecision(d, '    ', style));
  }
  if (lines.length === 1) lines.push('  (no node has guards)');
  else if (without.length) lines.push(style.dim(`  no guards: ${without.join(', ')}`));
  return lines;
}

export interface Denial {
  readonly node: NodeId;
  readonly decision: GuardDecision;
  readonly path: readonly NodeId[];
}

/** Every denial together: node, guard, reason, remedy and the dependency path that pulls the node in. */
export function formatDenials(denials: readonly Denial[], style: Style = PLAIN): string[] {
  const n = denials.length;
  const lines = [style.red(style.bold(`✗ Denied: ${n} guard decision${n === 1 ? '' : 's'} refused the run; nothing was started.`))];
  for (const d of denials) {
    lines.push('');
    lines.push(`  ${style.bold(d.node)}`);
    lines.push(`    guard:  ${d.decision.guard}${d.decision.outcome !== 'deny' ? ` (${d.decision.outcome})` : ''}`);
    lines.push(...indentBlock(d.decision.reason, '    reason: ', '            '));
    if (d.decision.remedy) lines.push(...indentBlock(d.decision.remedy, '    remedy: ', '            '));
    lines.push(`    path:   ${d.path.length ? d.path.join(' -> ') : d.node}`);
  }
  return lines;
}
