/**
 * The local cache provider the CLI hands to the scheduler: fingerprint (fingerprint.ts) → store
 * (store.ts), with the stat cache (stat-cache.ts) on the hot path and a last-run record per node for
 * `fabric explain` (runs.ts), kept in memory during the run and written once by `close`. Cache trouble
 * never fails a task: it becomes a miss plus a warning.
 *
 * Per node, a lookup does no I/O beyond hashing its inputs (stat cache), reading its entry (with
 * inline logs, small outputs and its key) and checking its outputs; a not-cacheable node does none
 * beyond its inputs. Storing a cacheable node with small outputs creates one file: its entry. A hit on
 * an entry that the node's run record summarizes (no logs, entry file unchanged, outputs in place)
 * does not read the entry: one stat of it (runs.ts, `EntrySummary`).
 */
import { sha256Hex } from '../util/sha256.js';
import { chmod } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import type { Node } from '../engine/graph.js';
import type { NodeId } from '../engine/events.js';
import type { AbsFileDigest, CachedLog, CacheLookup, CacheProvider, KnownDigests } from './types.js';
import { computeKey, SecretDigester, type CacheKey, type KeyContext } from './fingerprint.js';
import { diffKeys, summarizeChanges } from './diff.js';
import { expandGlobs, isPlainPattern, regularFileStat, unmatchedPatterns, type FileStat, type SeenStat } from './files.js';
import { StatCache, type HashedFile } from './stat-cache.js';
import { INLINE_LOGS_MAX, INLINE_OUTPUT_MAX, INLINE_OUTPUTS_TOTAL, STORE_FORMAT, Store, inlineBytes, inlineOf, validLogs, type CacheEntry, type EntryFileStat, type EntrySummary, type RunOutcome, type RunRecord, type StoredOutput } from './store.js';
import { RECORD_TIME_GRAIN_MS, RUN_FORMAT } from './runs.js';
import { RACY_WINDOW_MS } from '../util/racy.js';
import { errorMessage, readIfSmall } from './fsutil.js';
import { absolutePath, relativeTo } from '../util/paths.js';

export interface LocalCacheOptions {
  /** Absolute store directory (`<repo>/.fabric/cache` by default). */
  readonly dir: string;
  readonly repoRoot: string;
  /** Env var name patterns whose values are secret (config `secretPatterns`). */
  readonly secretPatterns: readonly string[];
  /** Non-fatal notices (corrupt entry, cacheable task without inputs, store write failure). */
  readonly warn: (message: string) => void;
  /** False for `--no-cache`: nothing is looked up or written (declared outputs are still checked). */
  readonly enabled?: boolean;
  /** More absolute directories that are never inputs (e.g. the evidence directory). */
  readonly ignoreDirs?: readonly string[];
}

export interface LocalCache extends CacheProvider {
  readonly store: Store;
  readonly statCache: StatCache;
  close(): Promise<void>;
}

interface Pending {
  readonly fingerprint: string;
  readonly key: CacheKey;
  /** The key's canonical JSON text (what the entry or the key file keeps). */
  readonly keyJson: string;
  /** Whether a successful run is stored (false: only recorded). */
  readonly store: boolean;
  /** The node's run record as it is on disk. */
  prev: RunRecord | undefined;
}

type Restore =
  /** `outputs`: every output file of the entry, as it is now in place. */
  | { readonly state: 'ok'; readonly restored: string[]; readonly outputs: AbsFileDigest[] }
  | { readonly state: 'missing'; readonly detail: string }
  | { readonly state: 'corrupt'; readonly detail: string };

/**
 * A mutating dependency that runs changes the world in ways no fingerprint sees, so a node that depends
 * directly on one is not served from the cache (it runs, and is recorded). The first such dependency.
 */
export function mutatingDependencyThatRuns(node: Node, mutatingRuns: ReadonlySet<NodeId>): NodeId | undefined {
  return node.deps.find((d) => mutatingRuns.has(d));
}

/** Never inputs: the cache directory, fabric's own state (`<repo>/.fabric`), and any given directory. */
export function defaultIgnoreDirs(repoRoot: string, cacheDir: string, more: readonly string[] = []): string[] {
  return [...new Set([cacheDir, join(repoRoot, '.fabric'), ...more])];
}

/** Whether two stats are of the same, unchanged file (inode, size, modification and change times). */
function sameFile(a: FileStat | undefined, b: FileStat | undefined): boolean {
  return a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Why a node is not cacheable, in words (for the `disabled` detail). */
export function notCacheableReason(node: Node): string {
  if (node.task.spec.cache === false) return 'not cacheable: the task sets cache: false';
  if (node.effect === 'mutating') return 'not cacheable: a mutating task (set cache: true to cache it)';
  if (node.inputs.length === 0) return 'not cacheable: a read-only task without declared inputs';
  return 'not cacheable';
}

function isInside(root: string, p: string): boolean {
  const r = relativeTo(root, p);
  return r === '' || (!r.startsWith('..' + sep) && r !== '..' && !isAbsolute(r));
}

/**
 * Whether an entry's outputs are every file the node's output globs match, without looking at the
 * disk: only when each pattern is a literal path that the entry holds (a glob or a directory could
 * match more files now, e.g. ones a hit does not remove).
 */
function outputsCoverGlobs(node: Node, outputs: readonly { readonly path: string }[]): boolean {
  const held = new Set(outputs.map((o) => o.path));
  return node.outputs.every((p) => isPlainPattern(p) && held.has(posix.normalize(p)));
}

function sameEntryFile(a: EntryFileStat, b: EntryFileStat): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Whether two summaries describe the same entry file (undefined: no summary). */
function sameSummary(a: EntrySummary | undefined, b: EntrySummary | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.fingerprint === b.fingerprint && a.format === b.format && a.hasKey === b.hasKey && sameEntryFile(a, b);
}

type SummaryBase = Omit<EntrySummary, keyof EntryFileStat>;

/** What a summary of `entry` keeps, if a hit on it may skip reading it: only when it has no logs to replay. */
function summaryBase(entry: CacheEntry): SummaryBase | undefined {
  if (entry.logs !== null) return undefined;
  return { fingerprint: entry.fingerprint, format: entry.v, outputs: entry.outputs.map((o) => ({ path: o.path, mode: o.mode, sha256: o.sha256, size: o.size })), hasKey: entry.keyJson !== undefined };
}

/**
 * A summary with the entry file's identity, when a later hit may rely on it: its mtime is outside the
 * racy window, so any later write in place gives it a later mtime (a write within the same timestamp
 * tick as the recorded stat could not be told apart; see RACY_WINDOW_MS). The store's own writes
 * replace the file (a new inode), and marking it used sets its mtime back by the window.
 */
function summaryOf(base: SummaryBase, file: EntryFileStat | undefined, nowMs: number): EntrySummary | undefined {
  if (!file || file.mtimeMs + RACY_WINDOW_MS > nowMs) return undefined;
  return { fingerprint: base.fingerprint, format: base.format, outputs: base.outputs, hasKey: base.hasKey, ino: file.ino, size: file.size, mtimeMs: file.mtimeMs, ctimeMs: file.ctimeMs };
}

export function createLocalCache(opts: LocalCacheOptions): LocalCache {
  const enabled = opts.enabled ?? true;
  const store = new Store(opts.dir);
  const statCache = new StatCache(enabled ? store.statCacheFile : undefined);
  const ignoreDirs = defaultIgnoreDirs(opts.repoRoot, opts.dir, opts.ignoreDirs);
  const digester = new SecretDigester(async () => (await store.hmacKey(true))!);
  const keyCtx: KeyContext = { repoRoot: opts.repoRoot, secretPatterns: opts.secretPatterns, statCache, digester, ignoreDirs };
  const pending = new Map<NodeId, Pending>();
  /** Mutating nodes looked up in this run that were not hits: they run. */
  const mutatingRuns = new Set<NodeId>();
  const warned = new Set<string>();
  const warnOnce = (id: string, message: string) => {
    if (warned.has(id)) return;
    warned.add(id);
    opts.warn(message);
  };
  const bestEffort = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      warnOnce(`io:${what}`, `cache: could not ${what}: ${errorMessage(e)}`);
    }
  };

  const now = () => new Date().toISOString();

  /** Keys that the run records of this run name and that are not stored yet: written by `close`, before the records. */
  const keysToWrite = new Map<string, string>();
  /** Fingerprints whose entry holds their key (written or read by this run): `close` writes no key file for them. */
  const keysInEntries = new Set<string>();
  /**
   * The declared outputs of a node to be stored, as they were right after it ran (absolute path →
   * stat, taken by missingOutputs). save() stores nothing if any differs once it has read them: another
   * process (a second run of the same task) wrote them in between, and the store would keep a mix.
   */
  const afterRun = new Map<NodeId, Map<string, FileStat>>();
  /** What `fileDigests` answers (this run only). */
  const digests = new Map<NodeId, { inputs?: readonly AbsFileDigest[] | undefined; outputs?: readonly AbsFileDigest[] | undefined }>();

  /**
   * Records the node's run in memory (`close` writes the records). The key of a fingerprint that the
   * node's previous record already names is stored already. `p.prev` follows the record.
   */
  const record = async (node: Node, p: Pending, last: RunRecord['last'], lastSuccess: RunRecord['lastSuccess'], entry: EntrySummary | undefined) => {
    const { prev, fingerprint } = p;
    if (prev?.last.fingerprint !== fingerprint && prev?.lastSuccess?.fingerprint !== fingerprint) keysToWrite.set(fingerprint, p.keyJson);
    const r: RunRecord = { v: RUN_FORMAT, node: node.id, task: node.task.name, last, lastSuccess, ...(entry ? { entry } : {}) };
    await store.runs.set(r);
    p.prev = r;
  };

  /** A lookup that is followed by a run: `started` until `save` records its success. */
  const recordStart = async (node: Node, p: Pending) => {
    const { prev, fingerprint } = p;
    if (prev?.last.fingerprint === fingerprint && prev.last.outcome === 'started') return;
    await record(node, p, { fingerprint, at: now(), outcome: 'started' }, prev?.lastSuccess, prev?.entry);
  };

  /** `entry`: the summary of the entry a hit used, if a later hit may rely on it (a stored run has none yet). */
  const recordSuccess = async (node: Node, p: Pending, outcome: Exclude<RunOutcome, 'started'>, entry?: EntrySummary) => {
    const { prev, fingerprint } = p;
    // A hit on what was already the last success changes nothing (a no-op run writes no records), as
    // long as the record is younger than RECORD_TIME_GRAIN_MS: its times are exact to that, so that
    // `prune --older-than` keeps the records of nodes that hit for days.
    if (
      prev &&
      prev.last.fingerprint === fingerprint &&
      prev.last.outcome !== 'started' &&
      prev.lastSuccess?.fingerprint === fingerprint &&
      sameSummary(prev.entry, entry) &&
      Date.now() - Date.parse(prev.last.at) < RECORD_TIME_GRAIN_MS
    )
      return;
    const mark = { fingerprint, at: now(), outcome };
    await record(node, p, mark, mark, entry);
  };

  /**
   * A hit decided without reading the entry: the node's run record summarizes the entry of this
   * fingerprint, the entry file is the one summarized, and every output is in place with its content
   * and mode. Undefined otherwise: the entry is then read as usual (which restores what is not in place).
   */
  async function summaryHit(node: Node, p: Pending, inputs: readonly AbsFileDigest[] | undefined): Promise<CacheLookup | undefined> {
    const s = p.prev?.entry;
    if (!s || s.fingerprint !== p.fingerprint || s.format !== STORE_FORMAT) return undefined;
    const file = store.entryStat(p.fingerprint);
    if (!file || !sameEntryFile(file, s)) return undefined;
    const now = await outputsNow(node, s.outputs);
    if ('outside' in now) return undefined; // reading the entry reports it
    const { targets, current } = now;
    const outputs: AbsFileDigest[] = [];
    for (let i = 0; i < targets.length; i++) {
      const o = s.outputs[i]!;
      const cur = current.get(targets[i]!);
      if (!cur || cur.sha256 !== o.sha256 || (cur.stat.mode & 0o7777) !== (o.mode & 0o7777)) return undefined;
      outputs.push({ path: targets[i]!, sha256: o.sha256, size: o.size });
    }
    await recordHit(node, p, s, s.hasKey, file, s.outputs, inputs, outputs);
    return { result: 'hit', fingerprint: p.fingerprint, logs: [], restored: [] };
  }

  /**
   * What every hit records: the entry marked used, its key known to be in the entry, the run record
   * (with a summary of the entry if a later hit may skip reading it: `base` undefined when not), and
   * the digests the evidence packet may reuse when the entry's outputs are all the node declares.
   */
  async function recordHit(
    node: Node,
    p: Pending,
    base: SummaryBase | undefined,
    hasKey: boolean,
    file: EntryFileStat,
    held: readonly { readonly path: string }[],
    inputs: readonly AbsFileDigest[] | undefined,
    outputs: readonly AbsFileDigest[],
  ): Promise<void> {
    // Marking the entry used changes its file's times: the summary follows them.
    const touched = await store.touchEntry(p.fingerprint, file.mtimeMs);
    if (hasKey) keysInEntries.add(p.fingerprint);
    mutatingRuns.delete(node.id);
    await recordSuccess(node, p, 'cached', base && summaryOf(base, touched ? store.entryStat(p.fingerprint) : file, Date.now()));
    if (outputsCoverGlobs(node, held)) digests.set(node.id, { inputs, outputs });
  }

  /**
   * Writes the keys the records name, then the records (so a recorded fingerprint's key is there; a
   * key that could not be written only costs explain its diff: "its key is no longer stored").
   */
  const saveRecords = () =>
    bestEffort('record the run', async () => {
      if (keysToWrite.size === 0 && !store.runs.dirty) return;
      await store.ensureLayout();
      const keys = [...keysToWrite].filter(([fp]) => !keysInEntries.has(fp));
      keysToWrite.clear();
      for (const [fp, json] of keys) await bestEffort('store a cache key', () => store.writeKey(fp, json));
      await store.runs.save();
    });

  /** The node's declared output files now: absolute path → stat. */
  async function outputStats(node: Node): Promise<Map<string, FileStat>> {
    const seen = new Map<string, SeenStat>();
    const rels = await expandGlobs(node.outputs, node.cwd, [opts.dir], seen);
    const out = new Map<string, FileStat>();
    for (const rel of rels) {
      const abs = absolutePath(node.cwd, rel);
      const got = regularFileStat(abs, seen);
      if (got) out.set(abs, got.stat);
    }
    return out;
  }

  /** Why a lookup missed: the changes since the node's last successful run (or its task's, for new params). */
  async function missDetail(node: Node, p: Pending): Promise<string> {
    let record = p.prev;
    let prefix = '';
    if (!record) {
      record = await store.readTaskRun(node.task.name);
      if (!record) return 'never ran';
      prefix = `first run of ${node.id}; since ${record.node}: `;
    }
    const base = record.lastSuccess ?? record.last;
    if (base.fingerprint === p.fingerprint) return record.lastSuccess ? 'not in the cache (pruned or cleaned)' : 'the last run with this fingerprint did not succeed';
    const before = await store.readKey(base.fingerprint);
    if (!before) return `${prefix}changed since the last run (its key is no longer stored)`;
    return prefix + summarizeChanges(diffKeys(before, p.key));
  }

  async function corrupt(fp: string, detail: string): Promise<void> {
    warnOnce(`corrupt:${fp}`, `cache: ${detail}; removed it (the task runs instead)`);
    keysInEntries.delete(fp);
    await store.removeEntry(fp).catch(() => undefined);
  }

  async function readLogs(entry: CacheEntry): Promise<CachedLog[] | { readonly state: 'missing' | 'corrupt'; readonly detail: string }> {
    if (!entry.logs) return [];
    if (entry.logs.inline) {
      // Verified like a blob: the JSON text of the logs must hash to the recorded sha256.
      if (sha256Hex(JSON.stringify(entry.logs.inline)) === entry.logs.sha256) return entry.logs.inline as CachedLog[];
      return { state: 'corrupt', detail: `the stored logs of entry ${entry.fingerprint.slice(0, 12)} do not match their hash` };
    }
    const blob = await store.readBlob(entry.logs.sha256);
    if (blob === 'missing') return { state: 'missing', detail: 'the stored logs are missing from the cache' };
    if (blob === 'corrupt') return { state: 'corrupt', detail: `the stored logs of entry ${entry.fingerprint.slice(0, 12)} do not match their hash` };
    try {
      const logs = JSON.parse(blob.toString('utf8')) as unknown;
      if (validLogs(logs)) return logs;
    } catch {
      /* fall through */
    }
    return { state: 'corrupt', detail: `the stored logs of entry ${entry.fingerprint.slice(0, 12)} are not a log array` };
  }

  /**
   * An entry's outputs as absolute paths, with what is there now (through the stat cache); `outside`:
   * the first one that lies outside the repository (nothing is looked at then).
   */
  async function outputsNow(node: Node, outputs: readonly { readonly path: string }[]): Promise<{ readonly outside: string } | { readonly targets: string[]; readonly current: Map<string, HashedFile> }> {
    const targets = outputs.map((o) => absolutePath(node.cwd, o.path));
    const outside = targets.find((t) => !isInside(opts.repoRoot, t));
    return outside !== undefined ? { outside } : { targets, current: await statCache.hashFiles(targets) };
  }

  /** Puts the entry's outputs in place; files already identical (per the stat cache) are left alone. */
  async function restore(node: Node, entry: CacheEntry): Promise<Restore> {
    const now = await outputsNow(node, entry.outputs);
    if ('outside' in now) return { state: 'corrupt', detail: `cache entry ${entry.fingerprint.slice(0, 12)} names an output outside the repository (${now.outside})` };
    const { targets, current } = now;
    const restored: string[] = [];
    const outputs: AbsFileDigest[] = [];
    for (let i = 0; i < entry.outputs.length; i++) {
      const o = entry.outputs[i]!;
      const target = targets[i]!;
      const cur = current.get(target);
      outputs.push({ path: target, sha256: o.sha256, size: o.size });
      if (cur && cur.sha256 === o.sha256) {
        if ((cur.stat.mode & 0o7777) !== (o.mode & 0o7777)) {
          statCache.endMemo(); // the file's stat changes: no stat taken before may be reused
          await chmod(target, o.mode & 0o7777);
        }
        continue;
      }
      statCache.endMemo(); // an output is written back: no stat taken before may be reused
      if (o.inline) {
        const bytes = inlineBytes(o);
        if (!bytes) return { state: 'corrupt', detail: `the stored content of output ${o.path} (entry ${entry.fingerprint.slice(0, 12)}) does not match its hash` };
        try {
          await store.restoreBytes(bytes, target, o.mode);
        } catch (e) {
          return { state: 'missing', detail: `could not restore ${o.path}: ${errorMessage(e)}` };
        }
        restored.push(o.path);
        continue;
      }
      let r;
      try {
        r = await store.restoreBlob(o.sha256, target, o.mode);
      } catch (e) {
        return { state: 'missing', detail: `could not restore ${o.path}: ${errorMessage(e)}` };
      }
      if (r === 'missing') return { state: 'missing', detail: `the stored content of output ${o.path} is missing from the cache` };
      if (r === 'corrupt') return { state: 'corrupt', detail: `the stored content of output ${o.path} (entry ${entry.fingerprint.slice(0, 12)}) does not match its hash` };
      restored.push(o.path);
    }
    return { state: 'ok', restored, outputs };
  }

  const provider: LocalCache = {
    store,
    statCache,

    willRun(): void {
      statCache.endMemo();
    },

    async lookup(node, depFingerprints, { force }): Promise<CacheLookup> {
      if (!enabled) return { result: 'disabled', detail: 'the cache is disabled (--no-cache)' };
      let kr;
      try {
        kr = await computeKey(node, depFingerprints, keyCtx);
      } catch (e) {
        warnOnce(`key:${node.id}`, `cache: could not compute the fingerprint of ${node.id}: ${errorMessage(e)}`);
        return { result: 'disabled', detail: `no fingerprint: ${errorMessage(e)}` };
      }
      if (!kr.ok) return { result: 'disabled', detail: `dependency ${kr.missingDependency} has no fingerprint` };
      digests.set(node.id, { inputs: kr.inputFiles });
      const prev = await store.runs.get(node.id).catch(() => undefined);
      const blocker = mutatingDependencyThatRuns(node, mutatingRuns);
      const p: Pending = { fingerprint: kr.fingerprint, key: kr.key, keyJson: kr.keyJson, prev, store: node.cacheable && blocker === undefined };
      const fp = p.fingerprint;
      pending.set(node.id, p);
      // Assume it runs until it turns out to be a hit (below).
      if (node.effect === 'mutating') mutatingRuns.add(node.id);

      if (!p.store) {
        await recordStart(node, p);
        const detail = node.cacheable ? `not served from the cache: it depends on ${blocker}, a mutating task that runs in this run` : notCacheableReason(node);
        return { result: 'disabled', fingerprint: fp, detail };
      }
      if (node.inputs.length === 0) {
        warnOnce(`no-inputs:${node.task.name}`, `task "${node.task.name}" is cacheable but declares no inputs: only its definition, params, env and dependencies decide a cache hit (undeclared inputs are not tracked)`);
      }
      if (force) {
        await recordStart(node, p);
        return { result: 'miss', fingerprint: fp, detail: 'forced (--force)' };
      }
      const quick = await summaryHit(node, p, kr.inputFiles);
      if (quick) return quick;
      let read;
      try {
        read = await store.readEntry(fp);
      } catch (e) {
        read = { state: 'corrupt', detail: `unreadable cache entry: ${errorMessage(e)}` } as const;
      }
      if (read.state === 'absent') {
        const detail = await missDetail(node, p).catch(() => undefined);
        await recordStart(node, p);
        return { result: 'miss', fingerprint: fp, detail };
      }
      if (read.state === 'corrupt') {
        await corrupt(fp, read.detail);
        await recordStart(node, p);
        return { result: 'corrupt', fingerprint: fp, detail: read.detail };
      }
      const logs = await readLogs(read.entry).catch((e: unknown) => ({ state: 'missing', detail: `could not read the stored logs: ${errorMessage(e)}` }) as const);
      const restored: Restore = Array.isArray(logs) ? await restore(node, read.entry) : logs;
      if (restored.state === 'corrupt') {
        await corrupt(fp, restored.detail);
        await recordStart(node, p);
        return { result: 'corrupt', fingerprint: fp, detail: restored.detail };
      }
      if (restored.state === 'missing') {
        keysInEntries.delete(fp);
        await store.removeEntry(fp).catch(() => undefined);
        await recordStart(node, p);
        return { result: 'miss', fingerprint: fp, detail: restored.detail };
      }
      await recordHit(node, p, summaryBase(read.entry), read.entry.keyJson !== undefined, read.file, read.entry.outputs, kr.inputFiles, restored.outputs);
      return { result: 'hit', fingerprint: fp, logs: logs as CachedLog[], restored: restored.restored };
    },

    async save(node, fingerprint, logs): Promise<void> {
      if (!enabled) return;
      const p = pending.get(node.id);
      if (!p || p.fingerprint !== fingerprint) {
        warnOnce(`save:${node.id}`, `cache: save(${node.id}) without a matching lookup; not stored`);
        return;
      }
      pending.delete(node.id);
      if (!p.store) {
        await recordSuccess(node, p, 'succeeded');
        return;
      }
      await bestEffort(`store ${node.id}`, async () => {
        await store.ensureLayout();
        const seen = new Map<string, SeenStat>();
        const rels = await expandGlobs(node.outputs, node.cwd, [opts.dir], seen);
        const abs = rels.map((r) => absolutePath(node.cwd, r));
        // Small outputs go into the entry: read once here, hashed from those bytes (which win, as for a
        // copy), and the stat cache learns that hash; only the others are hashed through the stat cache.
        const inline = new Map<number, StoredOutput>();
        let inlineBudget = INLINE_OUTPUTS_TOTAL;
        for (let i = 0; i < rels.length; i++) {
          const got = regularFileStat(abs[i]!, seen);
          if (!got || got.stat.size > Math.min(INLINE_OUTPUT_MAX, inlineBudget)) continue;
          const { stat: st, at } = got;
          let bytes: Buffer | undefined;
          try {
            bytes = readIfSmall(abs[i]!, Math.min(INLINE_OUTPUT_MAX, inlineBudget));
          } catch {
            bytes = undefined; // vanished meanwhile: the stat cache path below reports it absent
          }
          if (!bytes) continue;
          const sha256 = sha256Hex(bytes);
          inlineBudget -= bytes.length;
          inline.set(i, { path: rels[i]!, mode: st.mode & 0o7777, sha256, size: bytes.length, inline: inlineOf(bytes) });
          if (bytes.length === st.size) statCache.remember(abs[i]!, st, sha256, at);
        }
        const hashed = await statCache.hashFiles(abs.filter((_, i) => !inline.has(i)), seen);
        const outputs: StoredOutput[] = [];
        const files: AbsFileDigest[] = [];
        for (let i = 0; i < rels.length; i++) {
          const small = inline.get(i);
          if (small) {
            outputs.push(small);
            files.push({ path: abs[i]!, sha256: small.sha256, size: small.size });
            continue;
          }
          const h = hashed.get(abs[i]!);
          if (!h) continue;
          const mode = h.stat.mode & 0o7777;
          let { sha256, size } = { sha256: h.sha256, size: h.stat.size };
          // Copy unless the blob is already there; the copy's own hash wins if the file changed meanwhile.
          if (!(await store.hasBlob(sha256))) ({ sha256, size } = await store.putFile(abs[i]!));
          outputs.push({ path: rels[i]!, mode, sha256, size });
          files.push({ path: abs[i]!, sha256, size });
        }
        const before = afterRun.get(node.id);
        afterRun.delete(node.id);
        if (before) {
          const current = await outputStats(node);
          const changed = [...new Set([...before.keys(), ...current.keys()])].find((f) => !sameFile(before.get(f), current.get(f)));
          if (changed !== undefined) {
            opts.warn(`cache: output ${relative(node.cwd, changed) || changed} of ${node.id} changed after the task ended (is another process writing it?): not stored`);
            return;
          }
        }
        const logText = logs.length > 0 ? JSON.stringify(logs) : undefined;
        let logRef: CacheEntry['logs'] = null;
        if (logText !== undefined && Buffer.byteLength(logText) <= INLINE_LOGS_MAX) {
          logRef = { sha256: sha256Hex(logText), size: Buffer.byteLength(logText), inline: logs };
        } else if (logText !== undefined) logRef = await store.putData(logText);
        // The key goes in the entry: no key file (close writes key files only for fingerprints without one).
        await store.writeEntry({ v: STORE_FORMAT, fingerprint, node: node.id, task: node.task.name, created: now(), outputs, logs: logRef, keyJson: p.keyJson });
        keysInEntries.add(fingerprint);
        if (files.length === rels.length) digests.set(node.id, { ...digests.get(node.id), outputs: files });
      });
      await recordSuccess(node, p, 'succeeded');
    },

    async missingOutputs(node): Promise<string[]> {
      // The outputs' stats after the run (kept to check, when storing, that they did not change
      // meanwhile) also say which literal outputs exist: those need no second stat.
      const after = enabled && pending.get(node.id)?.store ? await outputStats(node) : undefined;
      const missing = await unmatchedPatterns(node.outputs, node.cwd, after ? (abs) => after.has(abs) : undefined);
      if (after && missing.length === 0) afterRun.set(node.id, after);
      return missing;
    },

    fileDigests(node): KnownDigests | undefined {
      return digests.get(node.id);
    },

    async close(): Promise<void> {
      await saveRecords();
      const problem = await statCache.save();
      if (problem) warnOnce('stat-cache', `cache: ${problem}`);
    },
  };
  return provider;
}
