/**
 * Environment files (`envs/<name>.yml`): read, validated against `contracts/env.schema.json` with ajv
 * (loaded lazily), then checked for cross-references (container names, addresses in the subnet, ...).
 * Every problem is a located Diagnostic pointing at the YAML line; tasks take addresses from here.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Diagnostic, Result } from '../../lib/diagnostics/types.js';
import type { Guard } from '../../lib/guards/types.js';
import { DiagnosticsError } from '../../lib/diagnostics/error.js';
import { formatDiagnostics } from '../../lib/diagnostics/print.js';

export type HostRef = string | { readonly address: string; readonly name?: string };

export interface EnvContainer {
  readonly name: string;
  readonly role?: string;
  readonly node?: string;
  readonly lan?: string;
  readonly vlan?: string;
}

export interface BootstrapStage {
  readonly name: string;
  /** `direct`: probe root@<lan>; `jump`: probe root@<vlan> through the jump host. */
  readonly via: 'direct' | 'jump';
  readonly hosts: readonly HostRef[];
  /** A fixed `--limit` pattern, or `reachable` (the names of the hosts that answered, comma-joined). */
  readonly limit: string;
}

export interface EnvFile {
  readonly name: string;
  readonly description?: string;
  readonly production?: boolean;
  readonly terraform: { readonly dir: string; readonly backend: 's3' | 'bootstrap-local' };
  readonly sdn?: { readonly zone?: string; readonly vnet?: string; readonly vlan?: number; readonly subnet?: string; readonly gatewayVip?: string };
  readonly lan?: { readonly vip?: string };
  readonly containers?: readonly EnvContainer[];
  readonly tags?: { readonly required?: readonly string[]; readonly values?: Readonly<Record<string, string>> };
  readonly bootstrap?: {
    readonly jump?: { readonly user: string; readonly hosts: readonly HostRef[]; readonly label: string };
    readonly stages: readonly BootstrapStage[];
  };
}

/** A host with the address to use for a probe, and its inventory name when known. */
export interface EnvHost {
  readonly address: string;
  readonly name?: string | undefined;
}

/** A validated env file and where it came from. */
export interface LoadedEnv {
  readonly file: string;
  readonly env: EnvFile;
}

export const ENV_DIR = 'envs';
export const ENV_SCHEMA = join('contracts', 'env.schema.json');

export function envFilePath(repoRoot: string, name: string): string {
  return join(repoRoot, ENV_DIR, `${name}.yml`);
}

/** Names of the env files under `<repoRoot>/envs` (sorted). */
export function listEnvNames(repoRoot: string): string[] {
  const dir = join(repoRoot, ENV_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => f.slice(0, -'.yml'.length))
    .sort();
}

/** Thrown by loadEnv: carries the located diagnostics; its message is the printed form (file:line:col + frame). */
export class EnvFileError extends DiagnosticsError {
  constructor(diagnostics: readonly Diagnostic[], cwd?: string) {
    super(diagnostics);
    this.name = 'EnvFileError';
    this.message = formatDiagnostics(diagnostics, cwd ? { cwd } : {}).trimEnd();
  }
}

type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }[] | null };
const validators = new Map<string, Promise<Validate>>();

/** Compiles a JSON Schema 2020-12 file with ajv (lazily imported; cached per path). */
export function compileSchemaFile(schemaFile: string): Promise<Validate> {
  let v = validators.get(schemaFile);
  if (!v) {
    v = (async () => {
      const { Ajv2020 } = await import('ajv/dist/2020.js');
      const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as object;
      const ajv = new Ajv2020({ allErrors: true, strict: true });
      return ajv.compile(schema) as unknown as Validate;
    })();
    validators.set(schemaFile, v);
    v.catch(() => validators.delete(schemaFile));
  }
  return v;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Whether an IPv4 address lies in a CIDR subnet. */
export function inSubnet(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (base === undefined || !Number.isInteger(bits)) return false;
  const size = 2 ** (32 - bits);
  const start = Math.floor(ipToInt(base) / size) * size;
  const n = ipToInt(ip);
  return n >= start && n < start + size;
}

/**
 * Parses and validates one env file's text. `expectedName` (the file's base name) must equal `name`.
 * Collects every problem: YAML syntax, schema, then cross-references.
 */
export async function validateEnvText(file: string, text: string, schemaFile: string, expectedName?: string): Promise<Result<EnvFile>> {
  const { parseYamlFile, ajvErrorsToDiagnostics, locationOfPath } = await import('../../lib/diagnostics/from-yaml.js');
  const parsed = parseYamlFile(file, text);
  if (!parsed.ok) return parsed;
  const { doc, value } = parsed.value;
  let validate: Validate;
  try {
    validate = await compileSchemaFile(schemaFile);
  } catch (e) {
    return { ok: false, error: [{ severity: 'error', code: 'schema-compile', message: `the env schema does not compile: ${(e as Error).message}`, location: { file: schemaFile, offset: 0, length: 1 } }] };
  }
  if (!validate(value)) {
    return { ok: false, error: ajvErrorsToDiagnostics(validate.errors ?? [], doc, file, 'env') };
  }
  const env = value as EnvFile;
  const diags: Diagnostic[] = [];
  const at = (path: (string | number)[], message: string, hint?: string): void => {
    diags.push({ severity: 'error', code: 'env', message, location: locationOfPath(doc, file, path), ...(hint ? { hint } : {}) });
  };
  if (expectedName !== undefined && env.name !== expectedName) {
    at(['name'], `env name "${env.name}" does not match the file name "${expectedName}.yml"`);
  }
  if (env.terraform.dir !== `fabric-core/terraform/envs/${env.name}`) {
    at(['terraform', 'dir'], `terraform.dir must be fabric-core/terraform/envs/${env.name} (TERRAFORM_ENV_DIR of ENV=${env.name})`);
  }
  const byName = new Map<string, EnvContainer>();
  const seenAddr = new Map<string, string>();
  (env.containers ?? []).forEach((c, i) => {
    if (byName.has(c.name)) at(['containers', i, 'name'], `duplicate container "${c.name}"`);
    byName.set(c.name, c);
    for (const k of ['lan', 'vlan'] as const) {
      const a = c[k];
      if (a === undefined) continue;
      const other = seenAddr.get(a);
      if (other !== undefined) at(['containers', i, k], `address ${a} is also used by ${other}`);
      seenAddr.set(a, c.name);
    }
    if (c.vlan !== undefined && env.sdn?.subnet !== undefined && !inSubnet(c.vlan, env.sdn.subnet)) {
      at(['containers', i, 'vlan'], `VLAN address ${c.vlan} of ${c.name} is outside the env's subnet ${env.sdn.subnet}`);
    }
  });
  if (env.sdn?.gatewayVip !== undefined && env.sdn.subnet !== undefined && !inSubnet(env.sdn.gatewayVip, env.sdn.subnet)) {
    at(['sdn', 'gatewayVip'], `gateway VIP ${env.sdn.gatewayVip} is outside the subnet ${env.sdn.subnet}`);
  }
  const checkRef = (path: (string | number)[], ref: HostRef, need: 'lan' | 'vlan'): void => {
    if (typeof ref !== 'string') return;
    const c = byName.get(ref);
    if (!c) {
      const names = [...byName.keys()];
      at(path, `unknown container "${ref}"`, names.length ? `containers: ${names.join(', ')}` : undefined);
    } else if (c[need] === undefined) {
      at(path, `container "${ref}" has no ${need} address, which this ${need === 'lan' ? 'direct probe / jump host' : 'probe through the jump host'} needs`);
    }
  };
  const b = env.bootstrap;
  if (b) {
    b.jump?.hosts.forEach((h, i) => checkRef(['bootstrap', 'jump', 'hosts', i], h, 'lan'));
    const stageNames = new Set<string>();
    b.stages.forEach((s, i) => {
      if (stageNames.has(s.name)) at(['bootstrap', 'stages', i, 'name'], `duplicate stage "${s.name}"`);
      stageNames.add(s.name);
      s.hosts.forEach((h, j) => checkRef(['bootstrap', 'stages', i, 'hosts', j], h, s.via === 'direct' ? 'lan' : 'vlan'));
      if (s.via === 'jump' && !b.jump) at(['bootstrap', 'stages', i, 'via'], `stage "${s.name}" goes through a jump host, but bootstrap.jump is not set`);
      if (s.limit === 'reachable') {
        s.hosts.forEach((h, j) => {
          if (typeof h !== 'string' && h.name === undefined) at(['bootstrap', 'stages', i, 'hosts', j], `limit "reachable" needs an inventory name for every host (add name:)`);
        });
      }
    });
  }
  return diags.length ? { ok: false, error: diags } : { ok: true, value: env };
}

/** Reads and validates `<repoRoot>/envs/<name>.yml`; never throws for bad input (returns diagnostics). */
export async function loadEnvResult(repoRoot: string, name: string): Promise<Result<LoadedEnv>> {
  const file = envFilePath(repoRoot, name);
  if (!/^[a-z0-9-]+$/.test(name) || !existsSync(file)) {
    const known = listEnvNames(repoRoot);
    return {
      ok: false,
      error: [{ severity: 'error', code: 'unknown-env', message: `no environment file for ENV=${name} (${file})`, hint: known.length ? `known environments: ${known.join(', ')}` : undefined }],
    };
  }
  const text = await readFile(file, 'utf8');
  const r = await validateEnvText(file, text, join(repoRoot, ENV_SCHEMA), basename(file, '.yml'));
  return r.ok ? { ok: true, value: { file, env: r.value } } : r;
}

/** Reads and validates an env file; throws EnvFileError (located diagnostics, printed message) when invalid. */
export async function loadEnv(repoRoot: string, name: string): Promise<EnvFile> {
  const r = await loadEnvResult(repoRoot, name);
  if (!r.ok) throw new EnvFileError(r.error, repoRoot);
  return r.value.env;
}

/** The address of a host reference for a probe (`lan` for direct/jump hosts, `vlan` behind the jump host). */
export function resolveHost(env: EnvFile, ref: HostRef, address: 'lan' | 'vlan'): EnvHost {
  if (typeof ref !== 'string') return { address: ref.address, name: ref.name };
  const c = env.containers?.find((x) => x.name === ref);
  const a = c?.[address];
  if (!c || a === undefined) throw new Error(`env ${env.name}: host "${ref}" has no ${address} address`);
  return { address: a, name: c.name };
}

/** A bootstrap stage with its hosts resolved to probe addresses. */
export function stageHosts(env: EnvFile, stage: string): { stage: BootstrapStage; hosts: EnvHost[] } {
  const s = env.bootstrap?.stages.find((x) => x.name === stage);
  if (!s) {
    const known = env.bootstrap?.stages.map((x) => x.name) ?? [];
    throw new Error(`env ${env.name} has no bootstrap stage "${stage}"${known.length ? ` (stages: ${known.join(', ')})` : ''}`);
  }
  return { stage: s, hosts: s.hosts.map((h) => resolveHost(env, h, s.via === 'direct' ? 'lan' : 'vlan')) };
}

/** The jump-host candidates (LAN addresses, in order), their login user and the label for the error message. */
export function jumpHosts(env: EnvFile): { user: string; label: string; hosts: EnvHost[] } | undefined {
  const j = env.bootstrap?.jump;
  if (!j) return undefined;
  return { user: j.user, label: j.label, hosts: j.hosts.map((h) => resolveHost(env, h, 'lan')) };
}

/** A container by name (throws when the env has no such container). */
export function container(env: EnvFile, name: string): EnvContainer {
  const c = env.containers?.find((x) => x.name === name);
  if (!c) throw new Error(`env ${env.name} has no container "${name}"`);
  return c;
}

/**
 * A guard (evaluated for the whole selection before anything starts) that denies when `envs/<ENV>.yml`
 * is missing or invalid, with the located diagnostics; so a broken env file stops `minio.up` before the
 * first mutating step instead of in the middle of the chain. `when` limits it to some envs (e.g. only
 * those whose tasks read addresses from the file). A plain Guard object: no runtime import of 'fabric'.
 */
export function validEnvFile(param = 'ENV', opts: { only?: readonly string[] } = {}): Guard {
  const guard: Guard = {
    kind: 'env-file',
    name: `env-file(${param})`,
    description: `envs/<${param}>.yml exists and validates against contracts/env.schema.json`,
    async evaluate(facts) {
      const name = facts.vars[param] ?? facts.params[param] ?? '';
      const base = { guard: guard.name, kind: guard.kind, facts: { [param]: name } };
      if (opts.only && !opts.only.includes(name)) return { ...base, outcome: 'skip', reason: `${param}=${name} does not read an env file here` };
      const r = await loadEnvResult(facts.repoRoot, name);
      if (r.ok) return { ...base, outcome: 'allow', reason: `envs/${name}.yml is valid` };
      const first = r.error[0];
      return {
        ...base,
        outcome: 'deny',
        reason: `envs/${name}.yml is invalid: ${first?.message ?? 'unknown error'}${r.error.length > 1 ? ` (+${r.error.length - 1} more)` : ''}`,
        remedy: first?.code === 'unknown-env' ? first.hint ?? 'create the env file' : `fix envs/${name}.yml (fabric run validate.envs shows every problem)`,
        diagnostics: r.error,
      };
    },
  };
  return guard;
}
