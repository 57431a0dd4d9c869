// Helpers for the evidence tests: a hand-built Graph (no analyzer), event factories, real keys
// (ed25519 through node:crypto, GPG through a throw-away home), and checks every test repeats:
// schema validation of every written file and the real `sha256sum -c`.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, writeFile, chmod, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FabricEvent, Failure, NodeId } from '../../lib/engine/events.js';
import type { Graph, Node } from '../../lib/engine/graph.js';
import type { GuardDecision } from '../../lib/guards/types.js';
import type { ParamSpec } from '../../lib/api/types.js';
import { loadSchemas } from '../../lib/evidence/schemas.js';
import { walkFiles } from '../../lib/evidence/fsutil.js';
import { decodeBase64 } from '../../lib/evidence/dsse.js';

export interface NodeSpec {
  deps?: string[];
  commands?: string[];
  effect?: 'read-only' | 'mutating';
  params?: Record<string, string>;
  paramSpecs?: Record<string, ParamSpec>;
  env?: Record<string, string>;
  envNames?: string[];
  secrets?: string[];
  inputs?: string[];
  outputs?: string[];
  vars?: Record<string, string>;
  cwd?: string;
  gate?: { description: string; warnCode: number; allowWarnVar: string | undefined };
}

export function graphOf(repoRoot: string, specs: Record<string, NodeSpec>, targets?: string[]): Graph {
  const nodes = new Map<NodeId, Node>();
  for (const [id, s] of Object.entries(specs)) {
    const task = id.replace(/\[.*$/, '');
    nodes.set(id, {
      id,
      task: { name: task, spec: { description: `the ${task} task`, ...(s.paramSpecs ? { params: s.paramSpecs } : {}) }, site: () => undefined, __fabricTask: true },
      params: s.params ?? {},
      vars: s.vars ?? {},
      effect: s.effect ?? 'read-only',
      deps: s.deps ?? [],
      skippedDeps: [],
      steps: (s.commands ?? []).map((c) => ({ kind: 'command' as const, cmd: c, display: c, env: {}, okCodes: [], ignoreFailure: false, secretEnvFiles: [] })),
      cwd: s.cwd ?? repoRoot,
      env: { PATH: '/usr/bin:/bin', ...s.env },
      envNames: s.envNames ?? [],
      secrets: s.secrets ?? [],
      secretPatterns: [],
      timeoutMs: undefined,
      retries: 0,
      retryDelayMs: 250,
      mutex: [],
      tags: [],
      inputs: s.inputs ?? [],
      outputs: s.outputs ?? [],
      cacheable: false,
      guards: [],
      ci: undefined,
      variant: undefined,
      gate: s.gate,
    });
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const d of specs[id]?.deps ?? []) visit(d);
    order.push(id);
  };
  for (const id of Object.keys(specs)) visit(id);
  return { repoRoot, fabricfile: join(repoRoot, 'fabricfile.ts'), nodes, targets: targets ?? [order[order.length - 1]!], order };
}

let clock = Date.parse('2026-11-26T10:00:00.000Z');
export const at = (): string => new Date((clock += 7)).toISOString();

/** Events of one node that runs its commands and succeeds (or fails with `fail`). */
export function ranNode(id: string, opts: { stdout?: string[]; stderr?: string[]; exit?: number; command?: string; fail?: Failure; reason?: 'ran' | 'cached' | 'fresh' } = {}): FabricEvent[] {
  const command = opts.command ?? `run ${id}`;
  const ev: FabricEvent[] = [
    { type: 'cache', node: id, result: opts.reason === 'cached' ? 'hit' : 'miss', fingerprint: 'f'.repeat(64), detail: opts.reason === 'cached' ? undefined : 'never ran' },
  ];
  if (opts.reason === 'cached') {
    for (const c of opts.stdout ?? []) ev.push({ type: 'task-output', node: id, stream: 'stdout', chunk: c, replayed: true });
    ev.push({ type: 'task-success', node: id, reason: 'cached', ms: 1, exitCode: null, at: at() });
    return ev;
  }
  ev.push({ type: 'task-start', node: id, attempt: 1, at: at() }, { type: 'command-start', node: id, command, pid: 4242 });
  for (const c of opts.stdout ?? []) ev.push({ type: 'task-output', node: id, stream: 'stdout', chunk: c });
  for (const c of opts.stderr ?? []) ev.push({ type: 'task-output', node: id, stream: 'stderr', chunk: c });
  const exit = opts.exit ?? 0;
  ev.push({ type: 'command-end', node: id, command, exitCode: exit, signal: null, ms: 5 });
  if (exit === 0 && !opts.fail) ev.push({ type: 'task-success', node: id, reason: opts.reason ?? 'ran', ms: 6, exitCode: 0, at: at() });
  else ev.push({ type: 'task-failure', node: id, failure: opts.fail ?? { reason: 'exit-non-zero', status: exit, command }, ms: 6, at: at() });
  return ev;
}

export function runStart(graph: Graph, runId: string): FabricEvent {
  return {
    type: 'run-start',
    runId,
    targets: graph.targets,
    nodes: graph.order.map((id) => {
      const n = graph.nodes.get(id)!;
      return { id, task: n.task.name, params: n.params, effect: n.effect, deps: n.deps, commands: n.steps.map((s) => s.display), cwd: n.cwd, mutex: [], tags: [], skippedDeps: [] };
    }),
    ci: false,
    dryRun: false,
    at: at(),
  };
}

export const runEnd = (ok: boolean, interrupted = false): FabricEvent => ({ type: 'run-end', ok, ms: 100, interrupted, at: at() });

export function decision(outcome: GuardDecision['outcome'], reason: string, facts: Record<string, unknown> = {}): GuardDecision {
  return { guard: `env-equals(ENV=dev)`, kind: 'param-equals', outcome, reason, facts, ...(outcome === 'deny' ? { remedy: 'set ENV=dev' } : {}) };
}

/** Validates every JSON file of a packet against its schema; returns `file: problem` strings. */
export async function schemaProblems(packet: string): Promise<string[]> {
  const schemas = await loadSchemas();
  const out: string[] = [];
  const files = await walkFiles(packet, ['signatures', '.partial']);
  const v = (file: string, name: Parameters<typeof schemas.validate>[0], value: unknown) => {
    for (const e of schemas.validate(name, value)) out.push(`${file}: ${name} ${e.path} ${e.message}`);
  };
  let checked = 0;
  for (const f of files) {
    if (f.endsWith('.jsonl')) {
      // A node's statements (statements.jsonl) or DSSE envelopes (attestations.intoto.jsonl), one per line.
      const lines = (await readFile(join(packet, f), 'utf8')).split('\n').filter((l) => l !== '');
      if (lines.length !== 2) out.push(`${f}: ${lines.length} lines, expected 2`);
      for (const line of lines) {
        const value = JSON.parse(line) as Record<string, unknown>;
        checked++;
        let st = value;
        if (f.endsWith('.intoto.jsonl')) {
          v(f, 'dsse', value);
          st = JSON.parse(decodeBase64(value['payload'] as string)!.toString('utf8')) as Record<string, unknown>;
        }
        v(f, 'statement', st);
        v(f, st['predicateType'] === 'https://slsa.dev/provenance/v1' ? 'slsa' : 'fabricPredicate', st['predicate']);
      }
      continue;
    }
    if (!f.endsWith('.json')) continue;
    const value = JSON.parse(await readFile(join(packet, f), 'utf8')) as Record<string, unknown>;
    checked++;
    if (f === 'run.json') v(f, 'run', value);
    else if (f.endsWith('/manifest.json')) v(f, 'manifest', value);
    else out.push(`${f}: an unexpected JSON file in the packet`);
  }
  if (checked === 0) out.push('no JSON files at all');
  return out;
}

/** The real `sha256sum -c manifest.sha256`, run inside the packet. */
export function sha256sumCheck(packet: string): { code: number | null; out: string } {
  const r = spawnSync('sha256sum', ['-c', '--strict', 'manifest.sha256'], { cwd: packet, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `fabric-${prefix}-`));
}

/** A fresh ed25519 key pair written as PEM: `<dir>/<name>.pem` (private) and `<dir>/pub/<name>.pub`. */
export async function ed25519Key(dir: string, name: string): Promise<{ priv: string; pub: string; pubDir: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, `${name}.pem`);
  const pubDir = join(dir, 'pub');
  await import('node:fs/promises').then((fs) => fs.mkdir(pubDir, { recursive: true }));
  const pub = join(pubDir, `${name}.pub`);
  await writeFile(priv, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  await writeFile(pub, publicKey.export({ format: 'pem', type: 'spki' }));
  return { priv, pub, pubDir };
}

/** A throw-away GPG home with one signing key (no passphrase); `pub` is its exported public key. */
export async function gpgHome(name: string): Promise<{ home: string; fpr: string; pubFile: string; dispose(): Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'fg-'));
  await chmod(home, 0o700);
  const gen = spawnSync('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--pinentry-mode', 'loopback', '--quick-gen-key', `${name} <${name}@example.invalid>`, 'ed25519', 'sign', 'never'], { encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`gpg key generation failed: ${gen.stderr}`);
  const list = spawnSync('gpg', ['--homedir', home, '--batch', '--with-colons', '--fingerprint', '--list-secret-keys'], { encoding: 'utf8' });
  const fpr = list.stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  const pubFile = join(home, `${name}.pub.asc`);
  const exp = spawnSync('gpg', ['--homedir', home, '--batch', '--armor', '--export', fpr], { encoding: 'utf8' });
  await writeFile(pubFile, exp.stdout);
  return {
    home,
    fpr,
    pubFile,
    async dispose() {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Every file under a directory, as text (for "the secret appears nowhere"). */
export async function allText(dir: string): Promise<string> {
  let out = '';
  const visit = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else out += `\n--- ${p}\n` + (await readFile(p)).toString('latin1');
    }
  };
  await visit(dir);
  return out;
}

/** A node's attestations file, one parsed JSON document per line (Statements, or DSSE envelopes when signed). */
export async function attestationLines<T = Record<string, any>>(packet: string, safeId: string): Promise<T[]> {
  const dir = join(packet, 'nodes', safeId);
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jsonl'));
  if (names.length !== 1) throw new Error(`${dir}: expected one .jsonl attestations file, found ${names.join(', ') || 'none'}`);
  return (await readFile(join(dir, names[0]!), 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}
