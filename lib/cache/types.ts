/**
 * What the scheduler asks of a cache (lib/cache/* implements it; the CLI picks it). The engine only
 * imports these types.
 */
import type { Node } from '../engine/graph.js';
import type { NodeId } from '../engine/events.js';

export interface CachedLog {
  readonly stream: 'stdout' | 'stderr';
  readonly chunk: string;
}

export type CacheLookup =
  /** Outputs were restored byte-exact; `logs` are to be replayed (marked as replayed). */
  | {
      readonly result: 'hit';
      readonly fingerprint: string;
      readonly logs: readonly CachedLog[];
      /** Outputs (relative to the node's cwd) that had to be written back; empty when all were already in place. */
      readonly restored?: readonly string[] | undefined;
    }
  /** Not in the store (or not restorable): run it. `detail` says why (e.g. "input src/a.txt changed"). */
  | { readonly result: 'miss'; readonly fingerprint: string; readonly detail?: string | undefined }
  /** The entry was corrupt: reported once, removed, treated as a miss. */
  | { readonly result: 'corrupt'; readonly fingerprint: string; readonly detail: string }
  /** The node is not cacheable (or caching is off); `fingerprint` is still computed for dependents when possible. */
  | { readonly result: 'disabled'; readonly fingerprint?: string | undefined; readonly detail?: string | undefined };

/** A file's digest with its absolute path. */
export interface AbsFileDigest {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

export interface KnownDigests {
  readonly inputs?: readonly AbsFileDigest[] | undefined;
  readonly outputs?: readonly AbsFileDigest[] | undefined;
}

export interface CacheProvider {
  /**
   * Computes the node's fingerprint (from its definition, params, declared env, inputs, the given
   * dependency fingerprints, platform, format version) and looks it up. Called once per node, right
   * before it would run, after all its dependencies succeeded.
   */
  lookup(node: Node, depFingerprints: ReadonlyMap<NodeId, string>, opts: { readonly force: boolean }): Promise<CacheLookup>;
  /**
   * Stores a successful run's declared outputs and logs under the fingerprint. Never called for failures.
   * May also be called after a `disabled` lookup that had a fingerprint (the cache then only records the run).
   */
  save(node: Node, fingerprint: string, logs: readonly CachedLog[]): Promise<void>;
  /** Declared outputs that do not exist after a successful run (the node then fails with missing-output). */
  missingOutputs(node: Node): Promise<string[]>;
  /**
   * The content digests of the node's declared input and output files as this run's cache saw them
   * (inputs: hashed for the fingerprint before the node ran or was restored; outputs: hashed when they
   * were stored or verified on a hit). Each list is present only when the cache hashed every file the
   * node's globs matched; otherwise it is absent and the caller hashes the files itself. Lets the
   * evidence writer avoid hashing the same files twice.
   */
  fileDigests?(node: Node): KnownDigests | undefined;
  /**
   * Called right before a node starts to run (its first attempt), whatever its lookup said: from then
   * on files may change, so the cache stops reusing stats it took earlier in the run.
   */
  willRun?(node: Node): void;
  /** Called once after the run (also after a failed or interrupted one): persists the stat cache. */
  close?(): Promise<void>;
}
