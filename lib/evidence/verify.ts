/**
 * Offline verification of an evidence packet: what `fabric evidence verify` runs, and what a third party
 * would run. It needs only lib/evidence, ajv and node built-ins (plus `gpg` for GPG signatures).
 *
 * Checks, each failure named as { file, message, expected, found }:
 *  1. manifest.sha256 parses, every listed file exists with that sha256, and every file of the packet
 *     (except signatures/ and .partial/) is listed, except, in a run that never finished, the node
 *     directories that completed after its last checkpoint (reported in `notes`, not counted);
 *  2. run.json, every node manifest.json and every attestation validate against contracts/;
 *  3. cross-references: log digests in manifest.json, statement subjects, run.json's node list;
 *  4. signatures of manifest.sha256 verify against the keyring (or, with no keyring, the public keys
 *     shipped in signatures/, which proves integrity but not identity), and at least `required` distinct
 *     keys signed (dual control); DSSE envelopes verify with the same keys;
 *  5. optionally (checkOutputs) that each node's outputs on disk still have the recorded sha256.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import {
  ATTESTATION_BUNDLE_FILE,
  EMPTY_SHA256,
  FABRIC_PREDICATE_TYPE,
  INTOTO_PAYLOAD_TYPE,
  MANIFEST_FILE,
  NODE_MANIFEST_FILE,
  NODES_DIR,
  PARTIAL_DIR,
  RUN_FILE,
  SIGNATURES_DIR,
  SLSA_PROVENANCE_TYPE,
  UNCOVERED,
} from './constants.js';
import { verifyEnvelope } from './dsse.js';
import { subjectsOf } from './provenance.js';
import { hashFile, walkFiles } from './fsutil.js';
import { parseManifest } from './manifest.js';
import { loadSchemas, type SchemaName } from './schemas.js';
import { listSignatureFiles } from './sign-packet.js';
import { EvidenceKeyError, gpgVerify, loadKeyring, verifyEd25519, type Keyring } from './sign.js';
import type { DsseEnvelope, NodeManifest, RunRecord, Statement } from './types.js';

export interface VerifyOptions {
  /** Directory of trusted public keys: ed25519 `*.pub`/`*.pem` (PEM) and OpenPGP public keys. */
  readonly keyringDir?: string | undefined;
  /** An existing GPG home whose public keys are trusted. */
  readonly gpgHome?: string | undefined;
  /** Also check that each node's outputs on disk still match (relative to `repoRoot`). */
  readonly checkOutputs?: boolean | undefined;
  /** Where outputs are checked; default: run.json's repoRoot. */
  readonly repoRoot?: string | undefined;
  /** At least this many distinct keys must have signed (the packet's own requirement applies too). */
  readonly minSignatures?: number | undefined;
  readonly contractsDir?: string | undefined;
}

export interface Problem {
  /** Relative to the packet (or, for outputs, to the repository root). */
  readonly file: string;
  readonly message: string;
  readonly expected?: string | undefined;
  readonly found?: string | undefined;
}

export interface SignatureCheck {
  readonly file: string;
  readonly type: 'ed25519' | 'gpg';
  readonly keyId: string;
  readonly valid: boolean;
  /** Fingerprint of the trusted key that verified it. */
  readonly fingerprint?: string | undefined;
  readonly detail: string;
}

export interface VerifyReport {
  readonly packet: string;
  readonly ok: boolean;
  readonly runId: string | undefined;
  readonly status: string | undefined;
  readonly files: number;
  readonly problems: readonly Problem[];
  /** Facts worth knowing that are not failures (e.g. the run was interrupted). */
  readonly notes: readonly string[];
  readonly signatures: readonly SignatureCheck[];
  readonly requiredSignatures: number;
  readonly validSigners: number;
  /** Whether signatures were checked against a keyring the verifier trusts (false: keys shipped in the packet). */
  readonly trustedKeyring: boolean;
}

async function readJson(path: string): Promise<{ value?: unknown; error?: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    return { error: `not valid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export async function verifyPacket(packetDir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const dir = resolve(packetDir);
  const problems: Problem[] = [];
  const listed = new Map<string, string>();
  let run: RunRecord | undefined;
  const notes: string[] = [];
  const problem = (file: string, message: string, expected?: string, found?: string): void => {
    problems.push({ file, message, ...(expected !== undefined ? { expected } : {}), ...(found !== undefined ? { found } : {}) });
  };
  const schemas = await loadSchemas(opts.contractsDir);
  const check = (file: string, name: SchemaName, value: unknown): boolean => {
    const errs = schemas.validate(name, value);
    for (const e of errs.slice(0, 10)) problem(file, `does not match ${name} schema: ${e.path || '(root)'} ${e.message}`);
    if (errs.length > 10) problem(file, `… and ${errs.length - 10} more schema errors`);
    return errs.length === 0;
  };

  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch {
    problem('.', 'no such packet directory');
    return report();
  }

  // 1. Hashes.
  let manifestBytes: Buffer | undefined;
  try {
    manifestBytes = await readFile(join(dir, MANIFEST_FILE));
  } catch {
    problem(MANIFEST_FILE, 'missing');
  }
  if (manifestBytes) {
    const parsed = parseManifest(manifestBytes.toString('utf8'));
    for (const m of parsed.malformed) problem(MANIFEST_FILE, `line ${m.line} is not "<sha256>  <path>": ${JSON.stringify(m.text.slice(0, 80))}`);
    for (const e of parsed.entries) {
      if (isAbsolute(e.path) || e.path.split('/').includes('..') || UNCOVERED.some((u) => e.path === u || e.path.startsWith(`${u}/`))) {
        problem(MANIFEST_FILE, `lists a path outside the covered packet: ${e.path}`);
        continue;
      }
      if (listed.has(e.path)) problem(MANIFEST_FILE, `lists ${e.path} twice`);
      listed.set(e.path, e.sha256);
    }
  }
  let onDisk: string[] = [];
  try {
    onDisk = await walkFiles(dir, UNCOVERED);
  } catch (e) {
    problem('.', `cannot list the packet: ${String(e)}`);
  }
  const present = new Set(onDisk);
  const actual = new Map<string, string>();
  for (const [path, expected] of listed) {
    if (!present.has(path)) {
      problem(path, 'listed in manifest.sha256 but missing', expected, 'no file');
      continue;
    }
    const h = await hashFile(join(dir, path)).catch(() => undefined);
    if (!h) {
      problem(path, 'cannot be read');
      continue;
    }
    actual.set(path, h.sha256);
    if (h.sha256 !== expected) problem(path, 'sha256 does not match manifest.sha256', expected, h.sha256);
  }

  // 2 + 3. Records.
  const runJson = await readJson(join(dir, RUN_FILE));
  if (runJson.error) problem(RUN_FILE, runJson.error);
  else if (check(RUN_FILE, 'run', runJson.value)) run = runJson.value as RunRecord;

  // A run that never finished may have node directories that completed after its last checkpoint:
  // none of their files is in the manifest and run.json (itself intact) does not list them as
  // completed. They are not evidence; they are reported, not failed. Anything else unlisted is a problem.
  const late = new Set<string>();
  const dirOf = (p: string): string | undefined => (p.startsWith(`${NODES_DIR}/`) ? p.split('/')[1] : undefined);
  const runIntact = listed.has(RUN_FILE) && actual.get(RUN_FILE) === listed.get(RUN_FILE);
  if (run?.status === 'interrupted' && runIntact) {
    const done = new Set(run.completed);
    const notDone = new Set(run.nodes.filter((n) => !done.has(n.id)).map((n) => n.safeId));
    const candidates = new Set(onDisk.map(dirOf).filter((d): d is string => d !== undefined && notDone.has(d)));
    for (const path of onDisk) {
      const d = dirOf(path);
      if (d !== undefined && listed.has(path)) candidates.delete(d);
    }
    for (const d of candidates) late.add(d);
    if (late.size > 0) {
      const names = [...late].sort();
      notes.push(
        `${names.length} node director${names.length === 1 ? 'y was' : 'ies were'} written after the last checkpoint and ${names.length === 1 ? 'is' : 'are'} not covered by the manifest (not counted as evidence): ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`,
      );
    }
  }
  const isLate = (p: string): boolean => late.size > 0 && late.has(dirOf(p) ?? '');
  for (const path of onDisk) if (!listed.has(path) && !isLate(path)) problem(path, 'not listed in manifest.sha256 (added after the packet was written?)');

  if (run?.status === 'interrupted') {
    notes.push(`the run did not finish (status interrupted): ${run.completed.length} of ${run.nodes.length} nodes completed`);
    try {
      const partial = await walkFiles(join(dir, PARTIAL_DIR));
      if (partial.length) notes.push(`${PARTIAL_DIR}/ holds ${partial.length} file(s) of unfinished nodes (not covered by the manifest)`);
    } catch {
      /* no .partial */
    }
  }

  // Keys for signatures and envelopes.
  const trusted = Boolean(opts.keyringDir || opts.gpgHome);
  let keyring: Keyring | undefined;
  try {
    keyring = trusted ? await loadKeyring({ dir: opts.keyringDir, gpgHome: opts.gpgHome }) : await loadKeyring({ dir: join(dir, SIGNATURES_DIR) }).catch(() => undefined);
  } catch (e) {
    problem(opts.keyringDir ?? opts.gpgHome ?? SIGNATURES_DIR, e instanceof EvidenceKeyError ? e.message : String(e));
  }
  const keys = keyring ?? { ed25519: [], gpgHome: undefined };

  try {
    const nodeDirs = new Set(onDisk.filter((p) => p.startsWith(`${NODES_DIR}/`) && !isLate(p)).map((p) => p.split('/')[1]!));
    const manifests = new Map<string, NodeManifest>();
    for (const safe of [...nodeDirs].sort()) {
      const base = `${NODES_DIR}/${safe}`;
      const file = `${base}/${NODE_MANIFEST_FILE}`;
      if (!present.has(file)) {
        problem(base, `has no ${NODE_MANIFEST_FILE}`);
        continue;
      }
      const j = await readJson(join(dir, file));
      if (j.error) {
        problem(file, j.error);
        continue;
      }
      if (!check(file, 'manifest', j.value)) continue;
      const m = j.value as NodeManifest;
      manifests.set(safe, m);
      if (m.safeId !== safe) problem(file, 'safeId does not match its directory', safe, m.safeId);
      if (run && m.runId !== run.runId) problem(file, 'runId does not match run.json', run.runId, m.runId);
      for (const log of [m.logs.stdout, m.logs.stderr]) {
        if (log.path === null) {
          if (log.size !== 0 || log.sha256 !== EMPTY_SHA256) problem(file, 'a log without a file must be empty (size 0, sha256 of no bytes)', `0 ${EMPTY_SHA256}`, `${log.size} ${log.sha256}`);
          continue;
        }
        const lf = `${base}/${log.path}`;
        const got = actual.get(lf) ?? (present.has(lf) ? (await hashFile(join(dir, lf))).sha256 : undefined);
        if (got === undefined) problem(lf, 'log named in manifest.json is missing', log.sha256, 'no file');
        else if (got !== log.sha256) problem(lf, 'sha256 does not match manifest.json', log.sha256, got);
      }
      for (const att of m.attestations) await checkAttestation(`${base}/${att}`, m);
    }
    if (run) {
      const bySafe = new Map(run.nodes.map((n) => [n.safeId, n]));
      for (const id of run.completed) {
        const n = run.nodes.find((x) => x.id === id);
        if (!n) problem(RUN_FILE, `completed node ${id} is not in the node list`);
        else if (!nodeDirs.has(n.safeId)) problem(`${NODES_DIR}/${n.safeId}/${NODE_MANIFEST_FILE}`, `missing for completed node ${id}`);
      }
      for (const [safe, m] of manifests) {
        const n = bySafe.get(safe);
        if (!n) problem(`${NODES_DIR}/${safe}`, 'node is not in run.json');
        else if (n.status !== m.status) problem(`${NODES_DIR}/${safe}/${NODE_MANIFEST_FILE}`, 'status differs from run.json', String(n.status), m.status);
      }
    }

    // 5. Outputs on disk.
    if (opts.checkOutputs) {
      const root = opts.repoRoot ?? run?.repoRoot;
      if (!root) problem(RUN_FILE, 'no repository root to check outputs against (pass --repo)');
      else {
        let n = 0;
        for (const m of manifests.values()) {
          for (const o of m.outputs) {
            n++;
            const h = await hashFile(join(root, o.path)).catch(() => undefined);
            if (!h) problem(o.path, `output of ${m.node} is missing on disk`, o.sha256, 'no file');
            else if (h.sha256 !== o.sha256) problem(o.path, `output of ${m.node} changed since the run`, o.sha256, h.sha256);
          }
        }
        notes.push(`checked ${n} output(s) under ${root}`);
      }
    }

    // 4. Signatures of manifest.sha256.
    const signatures: SignatureCheck[] = [];
    const signers = new Set<string>();
    if (!trusted && (await listSignatureFiles(dir)).length > 0) notes.push('no keyring given: signatures were checked against the public keys shipped in signatures/, which proves integrity, not identity (pass --keyring)');
    for (const f of await listSignatureFiles(dir)) {
      const sig = await readFile(join(dir, f.file));
      let res: SignatureCheck;
      if (!manifestBytes) res = { ...f, valid: false, detail: 'no manifest.sha256 to check' };
      else if (f.type === 'ed25519') {
        const k = verifyEd25519(manifestBytes, sig, keys.ed25519);
        res = k ? { ...f, valid: true, fingerprint: k.fingerprint, detail: `good signature by ${k.id}` } : { ...f, valid: false, detail: 'does not verify with any trusted ed25519 key' };
      } else if (!keys.gpgHome) res = { ...f, valid: false, detail: 'no GPG keys to check it with' };
      else {
        const g = await gpgVerify(sig, manifestBytes, keys.gpgHome);
        res = g.ok ? { ...f, valid: true, fingerprint: g.fingerprint, detail: `good signature by ${g.fingerprint}` } : { ...f, valid: false, detail: g.detail };
      }
      signatures.push(res);
      if (res.valid && res.fingerprint) signers.add(res.fingerprint.toUpperCase());
      else problem(f.file, `signature of manifest.sha256 is not valid: ${res.detail}`);
    }
    const required = Math.max(run?.signing.required ?? 0, opts.minSignatures ?? 0, trusted ? 1 : 0);
    if (signers.size < required) {
      problem(SIGNATURES_DIR, `incomplete: ${required} signature${required === 1 ? '' : 's'} by distinct ${trusted ? 'trusted ' : ''}keys required${required === 2 ? ' (dual control)' : ''}`, String(required), String(signers.size));
    }
    return report(signatures, required, signers.size);
  } finally {
    await keyring?.dispose();
  }

  async function checkAttestation(file: string, m: NodeManifest): Promise<void> {
    if (!present.has(file)) {
      problem(file, 'attestation named in manifest.json is missing');
      return;
    }
    const signed = file.endsWith(`/${ATTESTATION_BUNDLE_FILE}`);
    let text: string;
    try {
      text = await readFile(join(dir, file), 'utf8');
    } catch (e) {
      return problem(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const types = new Map<string, number>();
    // Subjects must be what the writer names (provenance.ts): the node's outputs, else its log files,
    // else its manifest.json, each with the digest recorded (or, for manifest.json, found) here.
    const manifestFile = `${NODES_DIR}/${m.safeId}/${NODE_MANIFEST_FILE}`;
    const manifestSha = actual.get(manifestFile) ?? (present.has(manifestFile) ? (await hashFile(join(dir, manifestFile))).sha256 : '');
    const want = subjectsOf(m, manifestSha).map((x) => `${x.name ?? ''} ${x.digest['sha256'] ?? ''}`);
    for (const [i, line] of lines.entries()) {
      let statement: unknown;
      try {
        statement = JSON.parse(line) as unknown;
      } catch (e) {
        problem(file, `line ${i + 1} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      if (signed) {
        if (!check(file, 'dsse', statement)) continue;
        const r = await verifyEnvelope(statement as DsseEnvelope, keys, { threshold: 1, payloadTypes: [INTOTO_PAYLOAD_TYPE] });
        for (const p of r.problems) problem(file, `line ${i + 1}: DSSE: ${p}`);
        if (!r.payload) continue;
        try {
          statement = JSON.parse(r.payload.toString('utf8')) as unknown;
        } catch {
          problem(file, `line ${i + 1}: DSSE payload is not JSON`);
          continue;
        }
      }
      if (!check(file, 'statement', statement)) continue;
      const st = statement as Statement<unknown>;
      types.set(st.predicateType, (types.get(st.predicateType) ?? 0) + 1);
      if (st.predicateType === SLSA_PROVENANCE_TYPE) check(file, 'slsa', st.predicate);
      else if (st.predicateType === FABRIC_PREDICATE_TYPE) check(file, 'fabricPredicate', st.predicate);
      else problem(file, `line ${i + 1}: unknown predicateType ${st.predicateType}`);
      const got = st.subject.map((x) => `${x.name ?? x.uri ?? ''} ${x.digest['sha256'] ?? ''}`);
      if ([...want].sort().join('\n') !== got.sort().join('\n')) problem(file, `line ${i + 1}: subjects do not match the node in manifest.json`, want.join(', '), got.join(', '));
    }
    for (const t of [SLSA_PROVENANCE_TYPE, FABRIC_PREDICATE_TYPE]) {
      const n = types.get(t) ?? 0;
      if (n !== 1) problem(file, `holds ${n} statements with predicateType ${t} (expected exactly 1)`);
    }
  }

  function report(signatures: SignatureCheck[] = [], required = 0, validSigners = 0): VerifyReport {
    return {
      packet: dir,
      ok: problems.length === 0,
      runId: run?.runId,
      status: run?.status,
      files: listed.size,
      problems,
      notes,
      signatures,
      requiredSignatures: required,
      validSigners,
      trustedKeyring: trusted,
    };
  }
}
