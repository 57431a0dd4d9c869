/**
 * `fabric evidence ls | show <run> [node] | verify <dir|run> | sign <dir|run>`: evidence packets
 * (lib/evidence/). `verify` needs no fabricfile: a path to a packet is enough, as for a third party.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { NODE_STATUSES, NODES_DIR } from '../../evidence/constants.js';
import type { RunRecord } from '../../evidence/types.js';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CliContext, CommandModule } from '../context.js';
import { EXIT } from '../context.js';

const DIR_FLAG: FlagSpec = { name: 'dir', type: 'string', value: 'DIR', description: 'evidence root (default: evidenceDir from the config, usually <repo>/evidence)' };
const JSON_FLAG: FlagSpec = { name: 'json', type: 'boolean', description: 'print JSON' };

const SUB: Record<string, { usage: string; flags: readonly FlagSpec[]; text: string }> = {
  ls: { usage: 'fabric evidence ls [--dir DIR] [--json]', flags: [DIR_FLAG, JSON_FLAG], text: 'Lists the runs in the evidence root, oldest first: start time, status, node counts, signatures.' },
  show: {
    usage: 'fabric evidence show <run|latest|DIR> [node] [--dir DIR] [--json]',
    flags: [DIR_FLAG, JSON_FLAG, { name: 'lines', type: 'number', value: 'N', description: 'log lines to show per stream for a node (default 20)' }],
    text: 'Shows a run (its nodes and statuses) or one node of it (commands, guards, inputs, outputs, log tails).\nA run is named by its id, a unique prefix of it, `latest`, or the packet directory.',
  },
  verify: {
    usage: 'fabric evidence verify <DIR|run> [--keyring DIR] [--gpg-home DIR] [--check-outputs] [--repo DIR] [--json]',
    flags: [
      { name: 'keyring', type: 'string', value: 'DIR', description: 'trusted public keys: ed25519 *.pub/*.pem (PEM) and OpenPGP public keys (default: config keyrings.ed25519 and keyrings.gpgHome)' },
      { name: 'gpg-home', type: 'string', value: 'DIR', description: 'a GPG home whose public keys are trusted' },
      { name: 'check-outputs', type: 'boolean', description: "also check that each node's outputs on disk still match" },
      { name: 'repo', type: 'string', value: 'DIR', description: "where outputs are checked (default: the run's repoRoot)" },
      { name: 'min-signatures', type: 'number', value: 'N', description: 'require at least N distinct signers (the packet may require more)' },
      DIR_FLAG,
      JSON_FLAG,
    ],
    text:
      'Recomputes every hash of manifest.sha256, checks that no file was added, validates run.json, node\n' +
      'manifests and attestations against the schemas in contracts/, checks signatures against the keyring\n' +
      'and that as many distinct keys signed as required (dual control), and names each problem with the\n' +
      'file, what was expected and what was found. Exit 0 when the packet verifies, 1 when it does not.\n' +
      'Without --keyring, signatures are checked against the public keys shipped in the packet (integrity\n' +
      'only). The same checks without fabric: see docs/evidence.md.',
  },
  sign: {
    usage: 'fabric evidence sign <DIR|run> (--key PEM [--key-id ID] | --gpg-key ID [--gpg-home DIR])',
    flags: [
      { name: 'key', type: 'string', value: 'PEM', description: 'ed25519 private key (PEM)' },
      { name: 'key-id', type: 'string', value: 'ID', description: 'name of the signature file (default: the key file name)' },
      { name: 'gpg-key', type: 'string', value: 'ID', description: 'GPG key to sign with' },
      { name: 'gpg-home', type: 'string', value: 'DIR', description: 'GPG home holding the secret key' },
      DIR_FLAG,
    ],
    text: "Adds a detached signature of the packet's manifest.sha256 (staged dual control: the second custodian\nsigns after the run). The packet's content is not changed.",
  },
};

const command: CommandModule = {
  name: 'evidence',
  summary: 'List, show, verify and sign evidence packets',
  help: () =>
    `Usage: fabric evidence <ls|show|verify|sign> ...

Every run writes an evidence packet: <evidenceDir>/<run-id>/ with run.json, one directory per node
(manifest.json, stdout/stderr logs, in-toto statements) and manifest.sha256 over all of it.

` +
    Object.values(SUB)
      .map((s) => `${s.usage}\n${s.text.replace(/^/gm, '  ')}\n${flagHelp(s.flags)}\n`)
      .join('\n'),
  async run(ctx, args) {
    const [sub, ...rest] = args;
    if (!sub || sub === '--help' || sub === '-h') {
      ctx.stdout.write(command.help());
      return sub ? EXIT.ok : EXIT.usage;
    }
    const spec = SUB[sub];
    if (!spec) throw new UsageError(`unknown evidence command "${sub}"`, `use one of: ${Object.keys(SUB).join(', ')}`);
    if (rest.includes('--help') || rest.includes('-h')) {
      ctx.stdout.write(`Usage: ${spec.usage}\n\n${spec.text}\n\n${flagHelp(spec.flags)}\n`);
      return EXIT.ok;
    }
    const { flags, positionals } = parseArgs(rest, spec.flags);
    switch (sub) {
      case 'ls':
        return ls(ctx, flags, positionals);
      case 'show':
        return show(ctx, flags, positionals);
      case 'verify':
        return verify(ctx, flags, positionals);
      case 'sign':
        return sign(ctx, flags, positionals);
    }
    return EXIT.usage;
  },
};
export default command;

type Flags = Record<string, string | number | boolean | string[] | undefined>;

/** The evidence root: --dir, else the config's evidenceDir (found from the fabricfile), else ./evidence. */
async function evidenceRoot(ctx: CliContext, flags: Flags): Promise<string> {
  const dir = flags['dir'] as string | undefined;
  if (dir) return resolve(ctx.globals.cwd, dir);
  const { locateFabricfile } = await import('../project.js');
  let repoRoot: string;
  try {
    repoRoot = dirname(locateFabricfile(ctx));
  } catch {
    return join(ctx.globals.cwd, 'evidence');
  }
  const { loadConfig } = await import('../config.js');
  return (await loadConfig(repoRoot)).evidenceDir;
}

/**
 * The trusted keyrings of the project the command runs in (config `keyrings`), or none outside a
 * project. A config that cannot be read is said on stderr and not used.
 */
async function configKeyrings(ctx: CliContext): Promise<{ ed25519?: string | undefined; gpgHome?: string | undefined }> {
  const { locateFabricfile } = await import('../project.js');
  let repoRoot: string;
  try {
    repoRoot = dirname(locateFabricfile(ctx));
  } catch {
    return {};
  }
  try {
    const { loadConfig } = await import('../config.js');
    return (await loadConfig(repoRoot)).keyrings;
  } catch (e) {
    ctx.stderr.write(`fabric: the config's keyrings are not used: ${e instanceof Error ? e.message : String(e)}\n`);
    return {};
  }
}

/** A packet given as a directory (holding run.json or manifest.sha256), or a run id / prefix / `latest` in the evidence root. */
async function packetOf(ctx: CliContext, flags: Flags, ref: string | undefined): Promise<string> {
  if (!ref) throw new UsageError('no run given', 'name a run id, `latest`, or a packet directory (see fabric evidence ls)');
  const asPath = resolve(ctx.globals.cwd, ref);
  if (existsSync(asPath) && statSync(asPath).isDirectory() && (existsSync(join(asPath, 'run.json')) || existsSync(join(asPath, 'manifest.sha256')) || ref.includes('/'))) return asPath;
  if (ref.includes('/') || ref.startsWith('.')) throw new UsageError(`no such packet directory: ${ref}`);
  const root = await evidenceRoot(ctx, flags);
  const { findRun } = await import('../../evidence/read.js');
  const found = await findRun(root, ref);
  if ('dir' in found) return found.dir;
  throw new UsageError(found.error, found.candidates.length ? `runs: ${found.candidates.join(', ')}` : undefined);
}

const display = (ctx: CliContext, p: string): string => {
  const r = relative(ctx.globals.cwd, p);
  return r && !r.startsWith('..') ? r : p;
};

function countsText(run: RunRecord): string {
  const parts = NODE_STATUSES.filter((s) => run.counts[s] > 0).map((s) => `${run.counts[s]} ${s}`);
  const pending = run.nodes.length - run.completed.length;
  if (pending > 0) parts.push(`${pending} unfinished`);
  return parts.join(', ') || 'no nodes';
}

const when = (iso: string | null | undefined): string => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');

async function ls(ctx: CliContext, flags: Flags, positionals: string[]): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'usage: fabric evidence ls [--dir DIR]');
  const root = await evidenceRoot(ctx, flags);
  const { listRuns } = await import('../../evidence/read.js');
  const runs = await listRuns(root);
  if (flags['json']) {
    ctx.stdout.write(
      JSON.stringify(
        runs.map((r) => ({
          runId: r.runId,
          dir: r.dir,
          startedOn: r.run?.startedOn ?? null,
          finishedOn: r.run?.finishedOn ?? null,
          status: r.run?.status ?? null,
          nodes: r.run?.nodes.length ?? null,
          counts: r.run?.counts ?? null,
          signatures: r.signatures,
          requiredSignatures: r.run?.signing.required ?? null,
          incomplete: r.incomplete,
          error: r.error ?? null,
        })),
        null,
        2,
      ) + '\n',
    );
    return EXIT.ok;
  }
  if (runs.length === 0) {
    ctx.stdout.write(`no evidence packets in ${display(ctx, root)}\n`);
    return EXIT.ok;
  }
  const rows = runs.map((r) => {
    if (!r.run) return [r.runId, '-', r.error ?? 'unreadable', '', ''];
    const req = r.run.signing.required;
    const sig = req > 0 || r.signatures > 0 ? `signed ${r.signatures}/${req}${r.incomplete ? ' (incomplete)' : ''}` : 'unsigned';
    return [r.runId, when(r.run.startedOn), r.run.status, `${r.run.nodes.length} nodes: ${countsText(r.run)}`, sig];
  });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  let out = '';
  for (const row of rows) out += row.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd() + '\n';
  ctx.stdout.write(out);
  return EXIT.ok;
}

async function show(ctx: CliContext, flags: Flags, positionals: string[]): Promise<number> {
  const [ref, nodeRef, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const dir = await packetOf(ctx, flags, ref);
  const { readRun, readNodeManifest } = await import('../../evidence/read.js');
  let run: RunRecord;
  try {
    run = await readRun(dir);
  } catch (e) {
    ctx.stderr.write(`fabric evidence: ${display(ctx, join(dir, 'run.json'))}: cannot read: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failed;
  }
  if (nodeRef === undefined) {
    if (flags['json']) {
      ctx.stdout.write(JSON.stringify(run, null, 2) + '\n');
      return EXIT.ok;
    }
    let out = `run ${run.runId}  ${run.status}${run.interruptSignal ? ` (${run.interruptSignal})` : ''}\n`;
    out += `  packet     ${display(ctx, dir)}\n`;
    out += `  started    ${when(run.startedOn)}   finished ${when(run.finishedOn)}${run.durationMs !== null ? ` (${run.durationMs} ms)` : ''}\n`;
    out += `  command    fabric ${run.argv.join(' ')}\n`;
    out += `  operator   ${run.operator}${run.ci ? ' (CI)' : ''}\n`;
    out += `  git        ${run.git.commit ?? '(not a git work tree)'}${run.git.dirty ? ' (dirty)' : ''}\n`;
    out += `  signing    ${run.signing.required > 0 ? `${run.signing.required} required; ${run.signing.signers.map((s) => `${s.type}:${s.keyId}`).join(', ') || 'no signer configured'}` : 'not required'}\n`;
    out += `  nodes      ${countsText(run)}\n\n`;
    const w = Math.max(...run.nodes.map((n) => n.id.length), 4);
    for (const n of run.nodes) out += `  ${(n.status ?? 'unfinished').padEnd(21)} ${n.id.padEnd(w)}  ${NODES_DIR}/${n.safeId}\n`;
    for (const d of run.denials) out += `\n  denied: ${d.node} by ${d.guard}: ${d.reason}`;
    ctx.stdout.write(out + (run.denials.length ? '\n' : ''));
    return EXIT.ok;
  }
  const entry = run.nodes.find((n) => n.id === nodeRef || n.safeId === nodeRef);
  if (!entry) {
    const near = run.nodes.filter((n) => n.id.includes(nodeRef)).map((n) => n.id);
    throw new UsageError(`no node "${nodeRef}" in run ${run.runId}`, (near.length ? near : run.nodes.map((n) => n.id)).slice(0, 8).join(', '));
  }
  if (entry.status === null) {
    ctx.stdout.write(`${entry.id}: unfinished (the run ended before this node did; no manifest)\n`);
    return EXIT.ok;
  }
  const m = await readNodeManifest(dir, entry.safeId);
  if (flags['json']) {
    ctx.stdout.write(JSON.stringify(m, null, 2) + '\n');
    return EXIT.ok;
  }
  let out = `${m.node}  ${m.status}${m.successReason && m.successReason !== 'ran' ? ` (${m.successReason})` : ''}\n`;
  out += `  task       ${m.task}${m.description ? ` — ${m.description}` : ''}\n`;
  if (Object.keys(m.params).length) out += `  params     ${Object.entries(m.params).map(([k, v]) => `${k}=${v}`).join(' ')}\n`;
  out += `  effect     ${m.effect}${m.variant ? `, variant ${m.variant}` : ''}\n`;
  out += `  cwd        ${m.cwd}\n`;
  out += `  time       ${when(m.startedOn)} → ${when(m.finishedOn)}${m.durationMs !== null ? ` (${m.durationMs} ms)` : ''}\n`;
  if (m.failure) out += `  failure    ${JSON.stringify(m.failure)}\n`;
  if (m.cache) out += `  cache      ${m.cache.result}${m.cache.detail ? ` (${m.cache.detail})` : ''}${m.fingerprint ? `  ${m.fingerprint.slice(0, 16)}…` : ''}\n`;
  for (const c of m.commands) out += `  $ ${c.command}   → ${c.signal ? `signal ${c.signal}` : `exit ${c.exitCode ?? '?'}`}${c.ms !== null ? ` in ${c.ms} ms` : ''}${c.attempt > 1 ? ` (attempt ${c.attempt})` : ''}\n`;
  for (const g of m.guards) out += `  guard ${g.outcome.padEnd(10)} ${g.guard}: ${g.reason}${g.override ? ` (override by ${g.override.operator}: ${g.override.reason})` : ''}\n`;
  for (const [k, v] of Object.entries(m.env)) out += `  env        ${k}=${v}\n`;
  for (const f of m.inputs) out += `  input      ${f.path}  ${f.sha256.slice(0, 16)}…  ${f.size} B\n`;
  for (const f of m.outputs) out += `  output     ${f.path}  ${f.sha256.slice(0, 16)}…  ${f.size} B\n`;
  const n = (flags['lines'] as number | undefined) ?? 20;
  for (const stream of ['stdout', 'stderr'] as const) {
    const log = m.logs[stream];
    if (log.size === 0 || log.path === null) continue;
    const text = await readFile(join(dir, NODES_DIR, m.safeId, log.path), 'utf8').catch(() => '');
    const lines = text.replace(/\n$/, '').split('\n');
    out += `\n  ${stream} (${log.size} B${lines.length > n ? `, last ${n} of ${lines.length} lines` : ''}):\n`;
    for (const l of lines.slice(-n)) out += `  │ ${l}\n`;
  }
  ctx.stdout.write(out);
  return EXIT.ok;
}

async function verify(ctx: CliContext, flags: Flags, positionals: string[]): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const dir = await packetOf(ctx, flags, positionals[0]);
  const opt = (name: string): string | undefined => {
    const v = flags[name] as string | undefined;
    return v === undefined ? undefined : resolve(ctx.globals.cwd, v);
  };
  const min = flags['min-signatures'] as number | undefined;
  if (min !== undefined && (!Number.isInteger(min) || min < 0)) throw new UsageError(`--min-signatures needs a whole number ≥ 0, got ${min}`);
  // Without --keyring/--gpg-home, the keys the project's config trusts (keyrings.ed25519, keyrings.gpgHome).
  const rings = opt('keyring') === undefined && opt('gpg-home') === undefined ? await configKeyrings(ctx) : {};
  const { verifyPacket } = await import('../../evidence/verify.js');
  const r = await verifyPacket(dir, {
    keyringDir: opt('keyring') ?? rings.ed25519,
    gpgHome: opt('gpg-home') ?? rings.gpgHome,
    checkOutputs: flags['check-outputs'] === true,
    repoRoot: opt('repo'),
    minSignatures: min,
  });
  if (flags['json']) {
    ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return r.ok ? EXIT.ok : EXIT.failed;
  }
  let out = '';
  for (const p of r.problems) {
    out += `✖ ${p.file}: ${p.message}\n`;
    if (p.expected !== undefined) out += `    expected ${p.expected}\n`;
    if (p.found !== undefined) out += `    found    ${p.found}\n`;
  }
  for (const n of r.notes) out += `  note: ${n}\n`;
  const sigs = r.requiredSignatures > 0 || r.signatures.length > 0 ? `, ${r.validSigners} of ${r.requiredSignatures} required signer(s)${r.trustedKeyring ? '' : ' (keys from the packet)'}` : ', unsigned';
  const head = `${display(ctx, r.packet)}: ${r.files} files${sigs}${r.status ? `, run ${r.status}` : ''}`;
  if (r.ok) {
    ctx.stdout.write(`${out}✓ verified ${head}\n`);
    return EXIT.ok;
  }
  ctx.stdout.write(`${out}✖ NOT verified ${head}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}\n`);
  return EXIT.failed;
}

async function sign(ctx: CliContext, flags: Flags, positionals: string[]): Promise<number> {
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const key = flags['key'] as string | undefined;
  const gpgKey = flags['gpg-key'] as string | undefined;
  if (!key && !gpgKey) throw new UsageError('nothing to sign with', 'pass --key <ed25519.pem> or --gpg-key <id>');
  const dir = await packetOf(ctx, flags, positionals[0]);
  if (!existsSync(join(dir, 'manifest.sha256'))) {
    ctx.stderr.write(`fabric evidence: ${display(ctx, dir)}: no manifest.sha256 to sign\n`);
    return EXIT.failed;
  }
  const { loadSigners } = await import('../../evidence/sink.js');
  const { signPacket, updateCompleteness } = await import('../../evidence/sign-packet.js');
  const { EvidenceKeyError } = await import('../../evidence/sign.js');
  try {
    const signers = await loadSigners({
      ...(key ? { ed25519Key: resolve(ctx.globals.cwd, key) } : {}),
      ...(flags['key-id'] ? { keyId: flags['key-id'] as string } : {}),
      ...(gpgKey ? { gpgKey } : {}),
      ...(flags['gpg-home'] ? { gpgHome: resolve(ctx.globals.cwd, flags['gpg-home'] as string) } : {}),
    });
    const files = await signPacket(dir, signers);
    const c = await updateCompleteness(dir);
    for (const f of files) ctx.stdout.write(`signed ${display(ctx, join(dir, f))}\n`);
    ctx.stdout.write(c.present.length >= c.required ? `complete: ${c.present.length} of ${c.required} required signer(s)\n` : `incomplete: ${c.present.length} of ${c.required} required signers\n`);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof EvidenceKeyError) {
      ctx.stderr.write(`fabric evidence: ${e.file ? `${display(ctx, e.file)}: ` : ''}${e.message}\n`);
      return EXIT.usage;
    }
    throw e;
  }
}
