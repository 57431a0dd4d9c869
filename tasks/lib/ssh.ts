/**
 * ssh reachability probes, jump-host selection and the staged first-boot bootstrap of the *.up targets:
 * a stage's hosts are probed as root (directly on the LAN, or on the VLAN through the jump host); if any
 * still accepts root, ansible.bootstrap runs for that stage with `--limit`. Addresses come from envs/*.yml.
 */
import { ansibleBootstrap } from './ansible.js';
import { type EnvFile, type EnvHost, jumpHosts, loadEnv, stageHosts } from './envs.js';
import { runnerEnv } from './runner.js';
import { capture, GlueError, type GlueContext, getVar } from './vars.js';

/** The options every Samakia ssh probe uses. */
export const SSH_PROBE_OPTIONS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', '-o', 'StrictHostKeyChecking=accept-new'] as const;

/** argv of one probe: `ssh <options> [-o ProxyJump=<jump>] <user@host> true`. */
export function sshProbeArgv(target: string, jump?: string): string[] {
  if (!/^[A-Za-z0-9_.-]+@[A-Za-z0-9_.:-]+$/.test(target)) throw new Error(`invalid ssh target: ${target}`);
  if (jump !== undefined && !/^[A-Za-z0-9_.-]+@[A-Za-z0-9_.:-]+$/.test(jump)) throw new Error(`invalid jump host: ${jump}`);
  return ['ssh', ...SSH_PROBE_OPTIONS, ...(jump !== undefined ? ['-o', `ProxyJump=${jump}`] : []), target, 'true'];
}

/**
 * Runs one probe (output discarded, as the Makefile's `>/dev/null 2>&1`); true when ssh exits 0.
 * `env`: extra variables (the runner env file's, which the *.up recipes sourced before probing).
 */
export async function sshProbe(ctx: GlueContext, target: string, jump?: string, env: Record<string, string> = {}): Promise<boolean> {
  // ConnectTimeout bounds the connect; the overall cap only guards against a hung remote `true`.
  const r = await capture(ctx, sshProbeArgv(target, jump), { timeoutMs: 60_000, env });
  ctx.log(`ssh probe ${target}${jump ? ` via ${jump}` : ''}: ${r.code === 0 ? 'accepts login' : `no (exit ${r.code})`}`);
  return r.code === 0;
}

/** Probes every host in order (all of them, as the Makefile loops do) and returns those that answered. */
export async function probeHosts(ctx: GlueContext, hosts: readonly EnvHost[], user: string, jump?: string, env: Record<string, string> = {}): Promise<EnvHost[]> {
  const ok: EnvHost[] = [];
  for (const h of hosts) if (await sshProbe(ctx, `${user}@${h.address}`, jump, env)) ok.push(h);
  return ok;
}

/** `192.168.11.102/103`: the first address, then the last octet of the others (the Makefile's message form). */
export function hostListLabel(hosts: readonly EnvHost[]): string {
  const [first, ...rest] = hosts.map((h) => h.address);
  if (first === undefined) return '';
  return [first, ...rest.map((a) => a.split('.').pop() ?? a)].join('/');
}

/**
 * Picks the jump host: the first candidate that accepts `<user>@<lan>` (probing stops there).
 * None → GlueError exit 1: `ERROR: cannot reach any <label> as <user> (<addresses>)`.
 */
export async function selectJumpHost(ctx: GlueContext, env: EnvFile, probeEnv: Record<string, string> = {}): Promise<string> {
  const j = jumpHosts(env);
  if (!j) throw new GlueError(`ERROR: env ${env.name} has no jump hosts (bootstrap.jump in envs/${env.name}.yml)`, 1);
  for (const h of j.hosts) {
    const target = `${j.user}@${h.address}`;
    if (await sshProbe(ctx, target, undefined, probeEnv)) {
      ctx.log(`jump host: ${target}`);
      return target;
    }
  }
  throw new GlueError(`ERROR: cannot reach any ${j.label} as ${j.user} (${hostListLabel(j.hosts)})`, 1);
}

export interface StageResult {
  readonly stage: string;
  readonly reachable: readonly EnvHost[];
  /** The `--limit` used, when ansible.bootstrap ran for this stage. */
  readonly limit?: string | undefined;
}

/** Runs ansible.bootstrap with `${ANSIBLE_FLAGS} --limit <limit>` (the default bootstrap action). */
export type BootstrapAction = (ctx: GlueContext, limit: string) => Promise<void>;
export const defaultBootstrap: BootstrapAction = (ctx, limit) => ansibleBootstrap(ctx, { extraFlags: ['--limit', limit] });

/**
 * The staged bootstrap of an env (minio.up: `edges`, `nodes`; dns.up: `edges`, `auth`; shared.up: `edges`,
 * `services`; postgres.internal.apply: `postgres`): for each stage in order, probe its hosts as root
 * (through the jump host, chosen once before the first jump stage); if any answers, bootstrap that stage.
 */
export async function stagedBootstrap(
  ctx: GlueContext,
  env: EnvFile,
  stages: readonly string[],
  bootstrap: BootstrapAction = defaultBootstrap,
): Promise<StageResult[]> {
  const results: StageResult[] = [];
  // the recipes sourced ${RUNNER_ENV_FILE} before probing (it may set SSH_AUTH_SOCK and the like)
  const { sourced } = await runnerEnv(ctx);
  let jump: string | undefined;
  for (const name of stages) {
    const { stage, hosts } = stageHosts(env, name);
    if (stage.via === 'jump' && jump === undefined) jump = await selectJumpHost(ctx, env, sourced);
    const reachable = await probeHosts(ctx, hosts, 'root', stage.via === 'jump' ? jump : undefined, sourced);
    if (reachable.length === 0) {
      ctx.log(`stage ${name}: no host accepts root ssh, bootstrap not needed`);
      results.push({ stage: name, reachable });
      continue;
    }
    const limit = stage.limit === 'reachable' ? reachable.map((h) => h.name ?? h.address).join(',') : stage.limit;
    ctx.log(`stage ${name}: ${reachable.length} host(s) accept root ssh, running ansible.bootstrap --limit ${limit}`);
    await bootstrap(ctx, limit);
    results.push({ stage: name, reachable, limit });
  }
  return results;
}

/** A task function for a staged bootstrap of the node's ENV (loads envs/<ENV>.yml). */
export function stagedBootstrapTask(stages: readonly string[]): (ctx: GlueContext) => Promise<number> {
  const fn = async (ctx: GlueContext): Promise<number> => {
    const env = await loadEnv(ctx.repoRoot, getVar(ctx, 'ENV') || 'samakia-prod');
    await stagedBootstrap(ctx, env, stages);
    return 0;
  };
  Object.defineProperty(fn, 'name', { value: `stagedBootstrap(${stages.join(',')})` });
  return fn;
}
