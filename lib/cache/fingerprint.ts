/**
 * The cache key of a node, kept whole as an object (so `fabric explain` can say what changed), and
 * its fingerprint: sha256 of the key's canonical JSON.
 *
 * The key holds everything that decides what the node produces, as far as fabric knows it: cache
 * format version, platform, task name and effect, each step's expanded command text (or a function's
 * source), resolved params, the values of the declared env vars, the cwd relative to the repo, the
 * declared input files (sorted paths with content hashes), the declared output globs, and the
 * fingerprints of the dependencies. Undeclared inputs are not tracked (docs/cache.md).
 *
 * Secrets never enter the key in clear: secret params, env vars whose name matches a secret pattern,
 * and any value listed in `node.secrets` appear only as HMAC-SHA256 digests under a random key kept
 * in the store directory (a plain hash of a short secret could be brute-forced from the key file).
 */
import { createHmac } from 'node:crypto';
import { sha256Hex } from '../util/sha256.js';
import { absolutePath, relativePosix } from '../util/paths.js';
import type { Node, ResolvedStep } from '../engine/graph.js';
import type { NodeId } from '../engine/events.js';
import { isSecretName } from '../util/redact.js';
import { canonicalJson } from '../util/canonical-json.js';
import { expandGlobs, type SeenStat } from './files.js';
import type { StatCache } from './stat-cache.js';
import type { AbsFileDigest } from './types.js';

/** Bump when the key's shape or meaning changes: every fingerprint changes with it. */
export const CACHE_FORMAT_VERSION = 1;

/** A secret value, only as a keyed digest. */
export interface SecretDigest {
  readonly secret: string;
}
/** `null`: the variable is not set. */
export type KeyValue = string | SecretDigest | null;

export type KeyStep =
  | { readonly kind: 'command'; readonly cmd: string | readonly string[]; readonly env: Readonly<Record<string, string>>; readonly okCodes: readonly number[]; readonly ignoreFailure: boolean }
  | { readonly kind: 'function'; readonly name: string; readonly source: string };

export interface CacheKey {
  readonly version: number;
  readonly platform: string;
  readonly arch: string;
  readonly task: string;
  readonly effect: string;
  readonly variant: string | null;
  readonly steps: readonly KeyStep[];
  readonly params: Readonly<Record<string, KeyValue>>;
  readonly env: Readonly<Record<string, KeyValue>>;
  /** Relative to the repo root, `/`-separated (`.` for the root). */
  readonly cwd: string;
  readonly inputGlobs: readonly string[];
  /** Path relative to cwd → sha256 of the content. */
  readonly inputs: Readonly<Record<string, string>>;
  readonly outputs: readonly string[];
  /** Dependency node id → its fingerprint. */
  readonly deps: Readonly<Record<NodeId, string>>;
}

export function fingerprintOf(key: CacheKey): string {
  return sha256Hex(canonicalJson(key));
}

export function isSecretDigest(v: KeyValue | undefined): v is SecretDigest {
  return typeof v === 'object' && v !== null;
}

/** Digests secret values with the store's key (loaded lazily: most nodes have no secrets). */
export class SecretDigester {
  private key: Buffer | undefined;
  constructor(private readonly loadKey: () => Promise<Buffer>) {}
  async ready(): Promise<void> {
    this.key ??= await this.loadKey();
  }
  /** Call `ready()` first. */
  digest(value: string): string {
    if (!this.key) throw new Error('SecretDigester used before ready()');
    return 'hmac-sha256:' + createHmac('sha256', this.key).update(value).digest('hex');
  }
}

export interface KeyContext {
  readonly repoRoot: string;
  readonly secretPatterns: readonly string[];
  readonly statCache: StatCache;
  readonly digester: SecretDigester;
  /** Absolute directories never read as inputs (the cache directory, evidence). */
  readonly ignoreDirs: readonly string[];
}

export type KeyResult =
  | {
      readonly ok: true;
      readonly key: CacheKey;
      readonly fingerprint: string;
      /** The key's canonical JSON text, which hashes to `fingerprint` (what the store keeps). */
      readonly keyJson: string;
      /** The input files as hashed for the key (absolute paths), or undefined if one vanished while being hashed. */
      readonly inputFiles: readonly AbsFileDigest[] | undefined;
    }
  /** A dependency has no fingerprint (it was not computed), so neither has this node. */
  | { readonly ok: false; readonly missingDependency: NodeId };

/** Secret values of the node, longest first (so a secret containing another is replaced whole). */
function secretValues(node: Node, ctx: KeyContext): string[] {
  const vals = new Set<string>();
  for (const s of node.secrets) if (s) vals.add(s);
  const specs = node.task.spec.params ?? {};
  for (const [name, v] of Object.entries(node.params)) if (specs[name]?.secret && v) vals.add(v);
  for (const name of node.envNames) {
    const v = node.env[name];
    if (v && isSecretName(name, ctx.secretPatterns)) vals.add(v);
  }
  return [...vals].sort((a, b) => b.length - a.length);
}

/** Replaces each secret occurrence by a short keyed marker: the text stays comparable, never readable. */
function scrub(text: string, secrets: readonly string[], d: SecretDigester): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(`[SECRET:${d.digest(s).slice(12, 28)}]`);
  return out;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A record without a prototype: a key named `__proto__` (an input file, a param, an env var) is then
 * an ordinary entry of the fingerprint instead of silently setting the object's prototype.
 */
function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * `rec` with its keys inserted in code-unit order (itself when they already are). An object built that
 * way is written by JSON.stringify exactly as canonical JSON is (util/canonical-json.ts): it rebuilds each
 * object from its sorted entries, and the engine orders array-index keys first in both cases.
 */
function sortedRecord<T>(rec: Record<string, T>): Record<string, T> {
  const keys = Object.keys(rec);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
  if (sorted) return rec;
  const out = emptyRecord<T>();
  for (const k of keys.sort(byCodeUnit)) out[k] = rec[k]!;
  return out;
}

// Every object of the key below is built with its keys in code-unit order (literals written sorted,
// records through sortedRecord), so that the fingerprint can hash JSON.stringify(key), which is
// canonicalJson(key) at a fraction of the cost (test/unit/canonical-json.test.ts checks both).

function keyStep(step: ResolvedStep, secrets: readonly string[], d: SecretDigester): KeyStep {
  if (step.kind === 'function') return { kind: 'function', name: step.display, source: step.source };
  const cmd = typeof step.cmd === 'string' ? scrub(step.cmd, secrets, d) : step.cmd.map((a) => scrub(a, secrets, d));
  const env = emptyRecord<string>();
  for (const [k, v] of Object.entries(step.env)) env[k] = scrub(v, secrets, d);
  return { cmd, env: sortedRecord(env), ignoreFailure: step.ignoreFailure, kind: 'command', okCodes: [...step.okCodes] };
}

/**
 * Hashes the declared inputs: path (relative to cwd) → sha256, sorted by path; and the same files with
 * absolute paths and sizes, unless a matched file could not be hashed (vanished meanwhile).
 */
export async function hashInputs(
  node: Node,
  ctx: Pick<KeyContext, 'statCache' | 'ignoreDirs'>,
): Promise<{ readonly inputs: Record<string, string>; readonly files: AbsFileDigest[] | undefined }> {
  const seen = new Map<string, SeenStat>();
  const expanding = expandGlobs(node.inputs, node.cwd, ctx.ignoreDirs, seen, ctx.statCache.known);
  // A large tree is listed by the native walker, in another process: the stat cache loads meanwhile.
  if (node.inputs.length > 0) ctx.statCache.preload();
  const rels = await expanding;
  if (rels.length === 0) return { inputs: {}, files: [] };
  const abs = rels.map((r) => absolutePath(node.cwd, r));
  const hashed = await ctx.statCache.hashFiles(abs, seen);
  const inputs = emptyRecord<string>();
  let files: AbsFileDigest[] | undefined = [];
  for (let i = 0; i < rels.length; i++) {
    const h = hashed.get(abs[i]!);
    if (h) {
      inputs[rels[i]!] = h.sha256;
      files?.push({ path: abs[i]!, sha256: h.sha256, size: h.stat.size });
    } else files = undefined;
  }
  return { inputs, files };
}

export async function computeKey(node: Node, depFingerprints: ReadonlyMap<NodeId, string>, ctx: KeyContext): Promise<KeyResult> {
  const deps = emptyRecord<string>();
  for (const id of node.deps) {
    const fp = depFingerprints.get(id);
    if (fp === undefined) return { ok: false, missingDependency: id };
    deps[id] = fp;
  }
  const secrets = secretValues(node, ctx);
  const paramSpecs = node.task.spec.params ?? {};
  const secretParams = Object.keys(node.params).filter((n) => paramSpecs[n]?.secret === true || secrets.includes(node.params[n]!));
  const secretEnv = node.envNames.filter((n) => isSecretName(n, ctx.secretPatterns) || (node.env[n] !== undefined && secrets.includes(node.env[n]!)));
  if (secrets.length > 0 || secretParams.length > 0 || secretEnv.length > 0) await ctx.digester.ready();
  const d = ctx.digester;

  const params = emptyRecord<KeyValue>();
  for (const [name, v] of Object.entries(node.params)) params[name] = secretParams.includes(name) ? { secret: d.digest(v) } : v;
  const env = emptyRecord<KeyValue>();
  for (const name of node.envNames) {
    const v = node.env[name];
    env[name] = v === undefined ? null : secretEnv.includes(name) ? { secret: d.digest(v) } : v;
  }
  const { inputs, files } = await hashInputs(node, ctx);
  const key: CacheKey = {
    arch: process.arch,
    cwd: relativePosix(ctx.repoRoot, node.cwd),
    deps: sortedRecord(deps),
    effect: node.effect,
    env: sortedRecord(env),
    inputGlobs: [...node.inputs],
    inputs: sortedRecord(inputs),
    outputs: [...node.outputs],
    params: sortedRecord(params),
    platform: process.platform,
    steps: node.steps.map((s) => keyStep(s, secrets, d)),
    task: node.task.name,
    variant: node.variant ?? null,
    version: CACHE_FORMAT_VERSION,
  };
  const keyJson = JSON.stringify(key);
  return { ok: true, key, keyJson, fingerprint: sha256Hex(keyJson), inputFiles: files };
}
