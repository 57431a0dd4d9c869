/**
 * Environment allowlists, inline or from a YAML policy file (e.g. Samakia's execute-policy.yml with
 * `allowed_envs: [samakia-dev, samakia-staging]`). A malformed policy gives a located reason and denies.
 */
import type { Diagnostic } from '../diagnostics/types.js';
import type { Guard, GuardFacts } from './types.js';
import { diagnosticLine, displayPath, loadDataFile, locate, resolveIn } from './files.js';
import { decision, fill, quoted, readVar, shown, type MessageOptions } from './util.js';

export interface PolicySource {
  /** Path of the YAML/JSON policy, relative to the repository root. */
  readonly policyFile: string;
  /** Entry holding the allowlist; dots reach into nested maps (`tenants.allowed_envs`). */
  readonly key: string;
}

export interface AllowlistOptions extends MessageOptions {
  /** Values that must never be allowlisted (e.g. `samakia-prod`): a policy listing one is invalid and denies. */
  readonly never?: readonly string[];
}

type Loaded = { ok: true; values: readonly string[]; source: string } | { ok: false; reason: string; diagnostics: Diagnostic[] };

async function loadAllowlist(src: PolicySource, facts: GuardFacts, never: readonly string[]): Promise<Loaded> {
  const file = resolveIn(facts.repoRoot, src.policyFile);
  const shownFile = displayPath(file, facts.repoRoot);
  const fail = (diagnostics: Diagnostic[]): Loaded => ({
    ok: false,
    reason: `invalid policy file: ${diagnostics.map((d) => diagnosticLine(d, facts.repoRoot)).join('; ')}`,
    diagnostics,
  });
  const r = await loadDataFile(file, 'policy.schema.json', 'policy');
  if (!r.ok) {
    if (r.error.length === 1 && r.error[0]!.code === 'missing-file') return { ok: false, reason: `policy file not found: ${shownFile}`, diagnostics: [] };
    return fail(r.error);
  }
  const path = src.key.split('.');
  let cur: unknown = r.value.value;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (!cur || typeof cur !== 'object' || Array.isArray(cur) || !(seg in (cur as Record<string, unknown>))) {
      const at = await locate(r.value, path.slice(0, i));
      return fail([{ severity: 'error', code: 'policy-missing-key', message: `policy has no entry "${path.slice(0, i + 1).join('.')}"`, location: at }]);
    }
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (!Array.isArray(cur)) {
    return fail([{ severity: 'error', code: 'policy-not-a-list', message: `policy entry "${src.key}" must be a list of strings`, location: await locate(r.value, path) }]);
  }
  const seen = new Set<string>();
  const diags: Diagnostic[] = [];
  for (let i = 0; i < cur.length; i++) {
    const v: unknown = cur[i];
    if (typeof v !== 'string' || v.trim() === '') diags.push({ severity: 'error', code: 'policy-bad-item', message: `policy entry "${src.key}" item ${i} must be a non-empty string`, location: await locate(r.value, [...path, i]) });
    else if (seen.has(v)) diags.push({ severity: 'error', code: 'policy-duplicate', message: `policy entry "${src.key}" lists "${v}" twice`, location: await locate(r.value, [...path, i]) });
    else if (never.includes(v)) diags.push({ severity: 'error', code: 'policy-forbidden', message: `"${v}" must never be allowlisted in "${src.key}"`, location: await locate(r.value, [...path, i]) });
    else seen.add(v);
  }
  if (diags.length) return fail(diags);
  return { ok: true, values: [...seen], source: `${shownFile}#${src.key}` };
}

/**
 * The variable's value must be in the allowlist.
 * allow: `ENV "samakia-dev" is allowlisted (ops/execute-policy.yml#allowed_envs)`;
 * deny: `ENV "samakia-prod" is not allowlisted (allowed: samakia-dev, samakia-staging)`;
 * a malformed policy: `invalid policy file: ops/execute-policy.yml:2:15: ...`.
 */
export function envAllowlist(param: string, allow: readonly string[] | PolicySource, opts?: AllowlistOptions): Guard {
  const inline = Array.isArray(allow) ? (allow as readonly string[]) : undefined;
  const src = inline ? undefined : (allow as PolicySource);
  const never = opts?.never ?? [];
  const label = inline ? inline.join('|') : `${src!.policyFile}#${src!.key}`;
  const guard: Guard = {
    kind: 'env-allowlist',
    name: `env-allowlist(${param} in ${label})`,
    description: `${param} must be allowlisted (${inline ? inline.join(', ') : `${src!.policyFile}, entry ${src!.key}`})`,
    async evaluate(facts) {
      const value = readVar(facts, param);
      const seen: Record<string, unknown> = { [param]: shown(facts, param, value) };
      let values: readonly string[];
      let source: string;
      if (inline) {
        const bad = inline.filter((v) => never.includes(v));
        if (bad.length) return decision(guard, 'deny', `${bad.join(', ')} must never be allowlisted (task definition of ${facts.task})`, seen, 'fix the allowlist in the task definition');
        values = inline;
        source = 'inline';
      } else {
        seen['policy'] = src!.policyFile;
        const loaded = await loadAllowlist(src!, facts, never);
        if (!loaded.ok) return { ...decision(guard, 'deny', loaded.reason, seen, `fix ${src!.policyFile}`), diagnostics: loaded.diagnostics };
        values = loaded.values;
        source = loaded.source;
      }
      seen['allowed'] = values;
      if (value !== undefined && values.includes(value)) return decision(guard, 'allow', `${param} ${quoted(facts, param, value)} is allowlisted (${source})`, seen);
      const reason = opts?.message !== undefined ? fill(opts.message, facts, param, value) : `${param} ${quoted(facts, param, value)} is not allowlisted (allowed: ${values.join(', ') || 'none'})`;
      const remedy = opts?.remedy !== undefined ? fill(opts.remedy, facts, param, value) : values.length ? `use ${param}=${values.join(' or ')}` : `add the value to ${source}`;
      return decision(guard, 'deny', reason, seen, remedy);
    },
  };
  return guard;
}
