/**
 * Ordering inside the one-shot chains (minio.up, dns.up, shared.up, postgres.internal.apply,
 * minio.failure.sim). A Makefile recipe runs its lines in order, sub-makes included; a DAG only runs a
 * node after its dependencies. So a chain passes `CHAIN=<chain>` on its edges, and each member declares,
 * for that chain only, a dependency on the step before it (a conditional edge: `when CHAIN == <chain>`).
 * Outside the chain the edge is skipped (and shown as skipped in plans), so `fabric run minio.tf.apply`
 * alone runs exactly what it did before. Every (task, params) node still runs once: the checks the
 * Makefile repeated (runner.env.check 6x in minio.up) are shared nodes that do not declare CHAIN.
 *
 * Members get CHAIN through the chain's edges (a dependency's params propagate to deeper nodes, as
 * Make's command-line variables do), so a member reached along two paths of one chain is one node.
 */
import type { DepRef, ParamSpec } from 'fabric';

/** The chain a node runs in (set only by the chains' own edges; never read from the environment). */
export const CHAIN: ParamSpec = {
  description: 'set by the one-shot chains (minio.up, dns.up, ...) to order this task after the previous step',
  default: '',
  fromEnv: false,
};

interface Step {
  readonly task: string;
  readonly params?: Readonly<Record<string, string>>;
}

/** chain -> [member, the step it must run after in that chain]. Steps named `<chain>:<stage>` are the chain's own recipe lines. */
const AFTER: Readonly<Record<string, readonly (readonly [string, Step])[]>> = {
  'minio.up': [
    ['backend.configure', { task: 'minio.up:sdn-ensure' }],
    ['minio.tf.plan', { task: 'backend.configure' }],
    ['minio.tf.apply', { task: 'minio.tf.plan' }],
    ['inventory.check', { task: 'minio.up:lxc-start' }],
    ['minio.ansible.apply', { task: 'minio.up:bootstrap' }],
    ['minio.accept', { task: 'minio.ansible.apply' }],
    ['minio.quorum.guard', { task: 'minio.accept' }],
    // minio.state.migrate's backend smoke needs the MinIO it deploys: after the quorum guard, not at the start.
    ['minio.backend.smoke', { task: 'minio.quorum.guard', params: { ENV: 'samakia-minio' } }],
  ],
  'dns.up': [
    ['minio.quorum.guard', { task: 'minio.backend.smoke', params: { ENV: 'samakia-minio' } }],
    ['tf.plan', { task: 'minio.quorum.guard', params: { ENV: 'samakia-minio' } }],
    ['tf.apply', { task: 'tf.plan' }],
    ['dns.ansible.apply', { task: 'dns.up:bootstrap' }],
    ['dns.accept', { task: 'dns.ansible.apply' }],
  ],
  'shared.up': [
    ['tf.plan', { task: 'shared.up:sdn-ensure' }],
    ['tf.apply', { task: 'tf.plan' }],
    ['inventory.check', { task: 'shared.up:lxc-start' }],
    ['shared.ansible.apply', { task: 'shared.up:bootstrap' }],
    ['shared.sdn.accept', { task: 'shared.ansible.apply' }],
    ['shared.ntp.accept', { task: 'shared.ansible.apply' }],
    ['shared.vault.accept', { task: 'shared.ansible.apply' }],
    ['shared.pki.accept', { task: 'shared.ansible.apply' }],
    ['shared.obs.accept', { task: 'shared.ansible.apply' }],
  ],
  'postgres.internal.apply': [['postgres.internal.ansible.apply', { task: 'postgres.internal.apply:bootstrap' }]],
  // The GameDay dry run of phase 3 part 2: baseline evidence, the two dry-run drills, then the post-check against the baseline.
  'phase3.part2.accept': [
    ['gameday.evidence', { task: 'gameday.precheck' }],
    ['gameday.vip.failover.dry', { task: 'gameday.evidence' }],
    ['gameday.service.restart.dry', { task: 'gameday.vip.failover.dry' }],
    ['gameday.postcheck', { task: 'gameday.service.restart.dry' }],
  ],
  // minio.failure.sim re-runs its acceptance checks after the simulated edge failure.
  'minio.failure.sim:after': [
    ['minio.sdn.accept', { task: 'minio.failure.sim:simulate' }],
    ['minio.accept', { task: 'minio.failure.sim:simulate' }],
    ['minio.converged.accept', { task: 'minio.failure.sim:simulate' }],
  ],
};

/** The conditional "runs after" edges of `member` (spread into its `deps`). */
export function chainDeps(member: string): DepRef[] {
  const out: DepRef[] = [];
  for (const [chain, entries] of Object.entries(AFTER)) {
    for (const [m, step] of entries) {
      if (m !== member) continue;
      out.push({
        task: step.task,
        params: { ...step.params, CHAIN: chain },
        when: { param: 'CHAIN', equals: chain, description: `in ${chain}: after ${step.task}` },
      });
    }
  }
  return out;
}

/** Params of a chain member (spread into its `params`). */
export const CHAIN_PARAMS = { CHAIN } as const;

/** The chains a task is a member of (for tests and docs). */
export function chainsOf(member: string): string[] {
  return Object.entries(AFTER)
    .filter(([, e]) => e.some(([m]) => m === member))
    .map(([c]) => c);
}
