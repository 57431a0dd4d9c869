/**
 * The MinIO quorum guard (ops/scripts/minio-quorum-guard.sh): exit 0 PASS, 2 WARN (degraded: reads are
 * fine, state writes are not), 1 FAIL. fabric models it as a gate task (`gate: QUORUM_GATE`): WARN lets
 * dependents run only with ALLOW_DEGRADED=1, and only read-only ones.
 */
import { getVar, type GlueContext, runRepoScript } from './vars.js';

export const QUORUM_SCRIPT = 'ops/scripts/minio-quorum-guard.sh';
export const QUORUM_EXIT = { pass: 0, fail: 1, warn: 2 } as const;

/** For `TaskSpec.gate` of the quorum-guard tasks. */
export const QUORUM_GATE = {
  description: 'MinIO quorum guard: 0 PASS, 2 WARN (degraded: reads only; ALLOW_DEGRADED=1 lets read-only consumers through), 1 FAIL',
  warnCode: QUORUM_EXIT.warn,
  allowWarnVar: 'ALLOW_DEGRADED',
} as const;

export type QuorumState = 'pass' | 'warn' | 'fail';

/** 0 → pass, 2 → warn, anything else (1, a signal, a crash) → fail. */
export function quorumState(code: number | null): QuorumState {
  if (code === QUORUM_EXIT.pass) return 'pass';
  if (code === QUORUM_EXIT.warn) return 'warn';
  return 'fail';
}

export interface QuorumDecision {
  readonly state: QuorumState;
  /** Whether the consumer may proceed. */
  readonly proceed: boolean;
  readonly message: string;
}

/**
 * The gate rule: PASS proceeds; FAIL never does; WARN proceeds only when ALLOW_DEGRADED=1 (exactly `1`)
 * AND the consumer is read-only (state migration, applies and the *.up chains are mutating: WARN stops them).
 */
export function quorumDecision(code: number | null, opts: { allowDegraded: string | undefined; consumer: 'read-only' | 'mutating' }): QuorumDecision {
  const state = quorumState(code);
  if (state === 'pass') return { state, proceed: true, message: 'quorum guard PASS' };
  if (state === 'fail') return { state, proceed: false, message: `quorum guard FAIL (exit ${code ?? 'signal'})` };
  if (opts.allowDegraded?.trim() !== '1') {
    return { state, proceed: false, message: 'quorum guard WARN: MinIO is degraded (set ALLOW_DEGRADED=1 to proceed with read-only use)' };
  }
  if (opts.consumer !== 'read-only') {
    return { state, proceed: false, message: 'quorum guard WARN: ALLOW_DEGRADED=1 only admits read-only consumers; state writes are unsafe while degraded' };
  }
  return { state, proceed: true, message: '[WARN] quorum guard degraded: proceeding because ALLOW_DEGRADED=1 (read-only use only)' };
}

/**
 * Runs the quorum guard script and returns its raw exit code (0, 1 or 2) for the engine's gate;
 * `env` adds variables (dns.up runs it with ENV=samakia-minio).
 */
export async function runQuorumGuard(ctx: GlueContext, opts: { env?: Record<string, string> } = {}): Promise<number> {
  const code = await runRepoScript(ctx, QUORUM_SCRIPT, [], { ...(opts.env ? { env: opts.env } : {}), okCodes: [QUORUM_EXIT.fail, QUORUM_EXIT.warn] });
  const d = quorumDecision(code, { allowDegraded: getVar(ctx, 'ALLOW_DEGRADED'), consumer: 'read-only' });
  ctx.log(`quorum guard: ${d.state.toUpperCase()} (exit ${code})`);
  return code;
}
