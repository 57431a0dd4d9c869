/**
 * What changed between two cache keys, as data (for `fabric explain --json` and a miss's `detail`)
 * and as one line of text per change. Secret values are never shown: only their names.
 */
import { createHash } from 'node:crypto';
import type { NodeId } from '../engine/events.js';
import { canonicalJson } from '../util/canonical-json.js';
import { isSecretDigest, type CacheKey, type KeyStep, type KeyValue } from './fingerprint.js';

export type DefinitionField = 'version' | 'platform' | 'arch' | 'task' | 'effect' | 'variant' | 'cwd' | 'inputGlobs' | 'outputs';

export type KeyChange =
  | { readonly kind: 'input-added' | 'input-removed' | 'input-changed'; readonly path: string }
  /** `before`/`after` are absent for secrets; `null` means unset. */
  | { readonly kind: 'env' | 'param'; readonly name: string; readonly secret: boolean; readonly before?: string | null; readonly after?: string | null }
  | { readonly kind: 'dependency-added' | 'dependency-removed' | 'dependency-changed'; readonly dependency: NodeId; readonly before?: string; readonly after?: string }
  /** Step numbers count from 1; `null`: the step does not exist on that side. */
  | { readonly kind: 'command'; readonly step: number; readonly before: string | null; readonly after: string | null }
  | { readonly kind: 'definition'; readonly field: DefinitionField; readonly before: string; readonly after: string };

function shellWord(a: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** A step as one line of text (secrets appear as `[SECRET:…]` markers, as in the key). */
export function stepText(s: KeyStep): string {
  if (s.kind === 'function') return `${s.name} (source ${createHash('sha256').update(s.source).digest('hex').slice(0, 8)})`;
  const env = Object.entries(s.env).map(([k, v]) => `${k}=${shellWord(v)} `).join('');
  const cmd = typeof s.cmd === 'string' ? s.cmd : s.cmd.map(shellWord).join(' ');
  const flags = [s.okCodes.length ? ` (ok codes: ${s.okCodes.join(',')})` : '', s.ignoreFailure ? ' (failure ignored)' : ''].join('');
  return `${env}${cmd}${flags}`;
}

function show(v: KeyValue | undefined): string | null {
  if (v === undefined || v === null) return null;
  return isSecretDigest(v) ? null : v;
}

function diffValues(kind: 'env' | 'param', before: Readonly<Record<string, KeyValue>>, after: Readonly<Record<string, KeyValue>>): KeyChange[] {
  const out: KeyChange[] = [];
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const name of names) {
    const b = before[name];
    const a = after[name];
    if (canonicalJson(b ?? null) === canonicalJson(a ?? null)) continue;
    const secret = isSecretDigest(b) || isSecretDigest(a);
    if (secret) out.push({ kind, name, secret });
    else out.push({ kind, name, secret, before: show(b), after: show(a) });
  }
  return out;
}

export function diffKeys(before: CacheKey, after: CacheKey): KeyChange[] {
  const out: KeyChange[] = [];
  const def = (field: DefinitionField, b: unknown, a: unknown) => {
    const bs = typeof b === 'string' ? b : canonicalJson(b);
    const as = typeof a === 'string' ? a : canonicalJson(a);
    if (bs !== as) out.push({ kind: 'definition', field, before: bs, after: as });
  };
  def('version', String(before.version), String(after.version));
  def('platform', before.platform, after.platform);
  def('arch', before.arch, after.arch);
  def('task', before.task, after.task);
  def('effect', before.effect, after.effect);
  def('variant', before.variant ?? '(none)', after.variant ?? '(none)');
  def('cwd', before.cwd, after.cwd);
  def('inputGlobs', before.inputGlobs, after.inputGlobs);
  def('outputs', before.outputs, after.outputs);

  const steps = Math.max(before.steps.length, after.steps.length);
  for (let i = 0; i < steps; i++) {
    const b = before.steps[i];
    const a = after.steps[i];
    if (b && a && canonicalJson(b) === canonicalJson(a)) continue;
    out.push({ kind: 'command', step: i + 1, before: b ? stepText(b) : null, after: a ? stepText(a) : null });
  }

  out.push(...diffValues('param', before.params, after.params));
  out.push(...diffValues('env', before.env, after.env));

  const depIds = [...new Set([...Object.keys(before.deps), ...Object.keys(after.deps)])].sort();
  for (const dependency of depIds) {
    const b = before.deps[dependency];
    const a = after.deps[dependency];
    if (b === a) continue;
    if (b === undefined) out.push({ kind: 'dependency-added', dependency, after: a! });
    else if (a === undefined) out.push({ kind: 'dependency-removed', dependency, before: b });
    else out.push({ kind: 'dependency-changed', dependency, before: b, after: a });
  }

  const paths = [...new Set([...Object.keys(before.inputs), ...Object.keys(after.inputs)])].sort();
  for (const path of paths) {
    const b = before.inputs[path];
    const a = after.inputs[path];
    if (b === a) continue;
    out.push({ kind: b === undefined ? 'input-added' : a === undefined ? 'input-removed' : 'input-changed', path });
  }
  return out;
}

const short = (fp: string | undefined) => (fp ? fp.slice(0, 12) : '?');
const val = (v: string | null | undefined) => (v === null || v === undefined ? '(unset)' : JSON.stringify(v));

/** One line, e.g. `input changed: src/a.txt`, `env FOO: "a" → "b"`, `env API_TOKEN changed (secret)`. */
export function describeChange(c: KeyChange): string {
  switch (c.kind) {
    case 'input-added':
      return `input added: ${c.path}`;
    case 'input-removed':
      return `input removed: ${c.path}`;
    case 'input-changed':
      return `input changed: ${c.path}`;
    case 'env':
    case 'param':
      return c.secret ? `${c.kind} ${c.name} changed (secret, value not shown)` : `${c.kind} ${c.name}: ${val(c.before)} → ${val(c.after)}`;
    case 'dependency-added':
      return `dependency added: ${c.dependency}`;
    case 'dependency-removed':
      return `dependency removed: ${c.dependency}`;
    case 'dependency-changed':
      return `dependency changed: ${c.dependency} (${short(c.before)} → ${short(c.after)})`;
    case 'command':
      if (c.before === null) return `command added (step ${c.step}): ${c.after}`;
      if (c.after === null) return `command removed (step ${c.step}): ${c.before}`;
      return `command changed (step ${c.step}): ${c.before} → ${c.after}`;
    case 'definition':
      return `${c.field} changed: ${c.before} → ${c.after}`;
  }
}

/** A short summary for a cache miss's `detail`: the first few changes. */
export function summarizeChanges(changes: readonly KeyChange[], max = 3): string {
  if (changes.length === 0) return 'no recorded difference';
  const head = changes.slice(0, max).map(describeChange).join('; ');
  return changes.length > max ? `${head}; and ${changes.length - max} more` : head;
}
