/** Preflight checks: required variables, tools on PATH, files in the repository. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Guard, GuardFacts } from './types.js';
import { decision, readVar, shown } from './util.js';

const list = (names: readonly string[]): string => names.join(', ');

/**
 * Every variable must be set and not blank.
 * allow: `TF_VAR_pm_api_url, TF_VAR_pm_api_token_id are set`; deny: `missing required env var: TF_VAR_pm_api_url` (or `vars: A, B`).
 */
export function requireVars(names: readonly string[]): Guard {
  const guard: Guard = {
    kind: 'require-vars',
    name: `require-vars(${list(names)})`,
    description: `${list(names)} must be set`,
    evaluate(facts) {
      const seen: Record<string, unknown> = {};
      const missing: string[] = [];
      for (const n of names) {
        const v = readVar(facts, n);
        seen[n] = shown(facts, n, v);
        if (v === undefined || v.trim() === '') missing.push(n);
      }
      if (missing.length === 0) return decision(guard, 'allow', `${list(names)} ${names.length === 1 ? 'is' : 'are'} set`, seen);
      return decision(guard, 'deny', `missing required env var${missing.length === 1 ? '' : 's'}: ${list(missing)}`, seen, `set ${missing.map((n) => `${n}=<value>`).join(' ')}`);
    },
  };
  return guard;
}

/** The first executable file called `name` on `path` (a PATH string), if any. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every tool must be an executable on PATH (the PATH of `facts.vars`, so `PATH=...` on the CLI counts).
 * allow: `packer, ansible found on PATH`; deny: `packer not found in PATH`.
 */
export function requireTools(names: readonly string[]): Guard {
  const guard: Guard = {
    kind: 'require-tools',
    name: `require-tools(${list(names)})`,
    description: `${list(names)} must be on PATH`,
    evaluate(facts: GuardFacts) {
      const seen: Record<string, unknown> = {};
      const missing: string[] = [];
      const path = readVar(facts, 'PATH') ?? facts.env['PATH'];
      for (const n of names) {
        const found = findOnPath(n, path);
        seen[n] = found ?? null;
        if (!found) missing.push(n);
      }
      if (missing.length === 0) return decision(guard, 'allow', `${list(names)} found on PATH`, seen);
      return decision(guard, 'deny', `${list(missing)} not found in PATH`, seen, `install ${list(missing)} or add ${missing.length === 1 ? 'it' : 'them'} to PATH`);
    },
  };
  return guard;
}

/**
 * Every path (relative to the repository root) must exist.
 * allow: `ops/ca/proxmox-root-ca.crt exists`; deny: `required file not found: ops/ca/proxmox-root-ca.crt`.
 */
export function requireFiles(paths: readonly string[]): Guard {
  const guard: Guard = {
    kind: 'require-files',
    name: `require-files(${list(paths)})`,
    description: `${list(paths)} must exist`,
    evaluate(facts) {
      const seen: Record<string, unknown> = {};
      const missing: string[] = [];
      for (const p of paths) {
        const abs = isAbsolute(p) ? p : resolve(facts.repoRoot, p);
        let ok = false;
        try {
          statSync(abs);
          ok = true;
        } catch {
          ok = false;
        }
        seen[p] = ok;
        if (!ok) missing.push(p);
      }
      if (missing.length === 0) return decision(guard, 'allow', `${list(paths)} ${paths.length === 1 ? 'exists' : 'exist'}`, seen);
      return decision(guard, 'deny', `required file${missing.length === 1 ? '' : 's'} not found: ${list(missing)}`, seen, `create ${list(missing)} (paths are relative to the repository root)`);
    },
  };
  return guard;
}
