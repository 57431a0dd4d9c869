/**
 * The approval() guard: a prod mutation needs an approval document signed by a key in the configured
 * keyring, bound to this selection (node ids and params), this git commit and this plan digest, and
 * not expired. Every mismatch is refused with its exact reason; a malformed file is a located deny.
 */
import type { ParamCondition } from '../api/types.js';
import { findOnPath } from './require.js';
import type { Guard, GuardDecision, GuardFacts } from './types.js';
// approval-doc.js (node:crypto, node:child_process, node:os) is imported when an approval is checked:
// every fabricfile imports this module through the public API, and most runs check none.
import type { ApprovalDocument } from './approval-doc.js';
import { diagnosticLine, displayPath, loadDataFile, resolveIn } from './files.js';
import { conditionHolds, conditionLabel, decision, errorMessage, readVar } from './util.js';

export interface ApprovalOptions {
  /** Only require an approval when this holds (e.g. `{ param: 'ENV', equals: 'samakia-prod' }`); otherwise `skip`. */
  readonly when?: ParamCondition;
  /** Trusted ed25519 keyring (directory or file, relative to the repo root); default: config `keyrings.ed25519`. */
  readonly keyring?: string;
  /** The variable naming the approval file (relative to the repo root); default `FABRIC_APPROVAL`. */
  readonly variable?: string;
}

export const APPROVAL_VAR = 'FABRIC_APPROVAL';

const short = (s: string): string => (/^[0-9a-f]{40,}$/.test(s) ? s.slice(0, 12) : s);

/**
 * allow: `approved by alice (key alice SHA256:…) until 2026-01-04T12:00:00Z: "reason"`.
 * deny: `approval required: FABRIC_APPROVAL is not set` · `approval file not found: a.json` · `malformed approval: a.json:3:5: …`
 *   · `approval is signed by an unknown key SHA256:… (not in keyring keys)` · `approval signature is invalid: the document was changed after it was signed`
 *   · `approval expired at …` · `approval is for commit …, but HEAD is …` · `approval is for tf.apply with ENV=…, but this run has ENV=…`
 *   · `plan changed since approval: approved sha256:…, now sha256:…`.
 */
export function approval(opts: ApprovalOptions = {}): Guard {
  const variable = opts.variable ?? APPROVAL_VAR;
  const label = opts.when ? ` when ${conditionLabel(opts.when)}` : '';
  const guard: Guard = {
    kind: 'approval',
    name: `approval(${variable})${label}`,
    description: `a signed approval (${variable}=FILE) bound to this selection, commit and plan${opts.when ? `, when ${conditionLabel(opts.when)}` : ''}`,
    async evaluate(facts) {
      if (opts.when) {
        const v = readVar(facts, opts.when.param);
        if (!conditionHolds(opts.when, v)) {
          return decision(guard, 'skip', `skipped: applies only when ${conditionLabel(opts.when)} (${opts.when.param} is ${v === undefined ? 'not set' : JSON.stringify(v)})`, { [opts.when.param]: v ?? null });
        }
      }
      return check(guard, variable, opts, facts);
    },
  };
  return guard;
}

async function check(guard: Guard, variable: string, opts: ApprovalOptions, facts: GuardFacts): Promise<GuardDecision> {
  const seen: Record<string, unknown> = { [variable]: readVar(facts, variable) ?? null, gitCommit: facts.gitCommit ?? null, planDigest: facts.planDigest ?? null };
  const remedy = `write one with 'fabric approve <tasks> [VAR=value] --key KEY --approver ID --reason TEXT --expires 2h -o FILE' for the same selection, then set ${variable}=FILE`;
  const deny = (reason: string, fix = remedy, extra: Partial<GuardDecision> = {}): GuardDecision => ({ ...decision(guard, 'deny', reason, seen, fix), ...extra });

  const rel = readVar(facts, variable);
  if (!rel) return deny(`approval required: ${variable} is not set`);
  const file = resolveIn(facts.repoRoot, rel);
  const shownFile = displayPath(file, facts.repoRoot);
  const loaded = await loadDataFile(file, 'approval.schema.json', 'approval');
  if (!loaded.ok) {
    const missing = loaded.error.length === 1 && loaded.error[0]!.code === 'missing-file';
    if (missing) return deny(`approval file not found: ${shownFile}`);
    return deny(`malformed approval: ${loaded.error.map((d) => diagnosticLine(d, facts.repoRoot)).join('; ')}`, `write a new approval with 'fabric approve'`, { diagnostics: loaded.error });
  }
  const doc = loaded.value.value as ApprovalDocument;
  const { loadKeyring, selectionMismatch, verifyEd25519, verifyOpenPgp } = await import('./approval-doc.js');
  Object.assign(seen, { approver: doc.approver, reason: doc.reason, expiresAt: doc.expiresAt, approvedCommit: doc.gitCommit, approvedPlanDigest: doc.planDigest, scheme: doc.signature.scheme, keyId: doc.signature.keyId });

  // 1. Who signed it, and is the signature good? (Integrity first: a changed byte is "invalid signature", nothing else.)
  let signer: string;
  if (doc.signature.scheme === 'ed25519') {
    const ringPath = opts.keyring !== undefined ? resolveIn(facts.repoRoot, opts.keyring) : facts.keyrings.ed25519;
    if (!ringPath) return deny('no ed25519 keyring is configured to check approvals', 'set keyrings.ed25519 in the fabric config (a directory of <id>.pub files)');
    let ring;
    try {
      ring = loadKeyring(ringPath);
    } catch (e) {
      return deny(`cannot read the approval keyring: ${errorMessage(e)}`, 'fix keyrings.ed25519 in the fabric config');
    }
    const shownRing = displayPath(ringPath, facts.repoRoot);
    seen['keyring'] = shownRing;
    const key = ring.keys.find((k) => k.fingerprint === doc.signature.keyId);
    if (!key) return deny(`approval is signed by an unknown key ${doc.signature.keyId} (not in keyring ${shownRing})`, `have a key from ${shownRing} sign the approval, or add the signer's public key to it`);
    if (!verifyEd25519(doc as ApprovalDocument & { signature: { scheme: 'ed25519' } }, key.key)) {
      return deny('approval signature is invalid: the document was changed after it was signed', remedy);
    }
    signer = `key ${key.id} ${key.fingerprint}`;
    seen['signer'] = key.id;
  } else {
    const home = facts.keyrings.gpgHome;
    if (!home) return deny('no gpg keyring is configured to check OpenPGP approvals', 'set keyrings.gpgHome in the fabric config');
    if (!findOnPath('gpg', facts.env['PATH'])) return deny('gpg not found in PATH (needed to check an OpenPGP approval)', 'install gnupg');
    const r = await verifyOpenPgp(doc as ApprovalDocument & { signature: { scheme: 'openpgp' } }, home, facts.env);
    seen['keyring'] = displayPath(home, facts.repoRoot);
    if (!r.ok) {
      switch (r.why) {
        case 'unknown-key':
          return deny(`approval is signed by an unknown key ${doc.signature.keyId} (not in gpg keyring ${displayPath(home, facts.repoRoot)})`, `import the signer's public key into ${home}, or have a trusted key sign`);
        case 'bad-signature':
          return deny('approval signature is invalid: the document was changed after it was signed', remedy);
        case 'expired-key':
        case 'revoked-key':
          return deny(`approval is signed by an ${r.why === 'expired-key' ? 'expired' : 'revoked'} key ${doc.signature.keyId}`, remedy);
        default:
          return deny(`cannot verify the OpenPGP signature: ${r.detail}`, remedy);
      }
    }
    if (r.fingerprint !== doc.signature.keyId && r.primary !== doc.signature.keyId) {
      return deny(`approval signature keyId ${doc.signature.keyId} does not match the signing key ${r.fingerprint}`, remedy);
    }
    signer = `OpenPGP key ${r.primary} (${r.user})`;
    seen['signer'] = r.user;
  }

  // 2. Still valid?
  const expires = new Date(doc.expiresAt);
  if (Number.isNaN(expires.getTime())) return deny(`malformed approval: ${shownFile}: expiresAt ${JSON.stringify(doc.expiresAt)} is not a time`);
  if (facts.now.getTime() >= expires.getTime()) return deny(`approval expired at ${doc.expiresAt} (now ${facts.now.toISOString().replace(/\.\d{3}Z$/, 'Z')})`, `ask ${doc.approver} for a new approval`);

  // 3. Bound to what will actually run?
  if (!facts.gitCommit) return deny(`approval is for commit ${short(doc.gitCommit)}, but the repository has no commit (not a git work tree?)`);
  if (doc.gitCommit !== facts.gitCommit) return deny(`approval is for commit ${short(doc.gitCommit)}, but HEAD is ${short(facts.gitCommit)}`, `check out ${short(doc.gitCommit)}, or get a new approval for ${short(facts.gitCommit)}`);
  const mismatch = selectionMismatch(doc.nodes, facts.selection);
  if (mismatch) return deny(mismatch, `run exactly the approved selection, or get a new approval for this one`);
  if (!facts.planDigest) return deny('the plan digest of this run is unknown, so the approval cannot be checked');
  if (doc.planDigest !== facts.planDigest) {
    return deny(`plan changed since approval: approved ${doc.planDigest}, now ${facts.planDigest}`, `review 'fabric plan --json' and get a new approval for the current plan`);
  }
  return decision(guard, 'allow', `approved by ${doc.approver} (${signer}) until ${doc.expiresAt}: ${JSON.stringify(doc.reason)}`, seen);
}
