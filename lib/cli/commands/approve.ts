/**
 * `fabric approve <task...> [VAR=value] --key KEYFILE --approver ID --reason TEXT --expires 2h|ISO [-o FILE]`
 * writes a signed approval bound to the selection (node ids + params), the git commit and the plan
 * digest (the same one `fabric plan --json` prints). `--gpg-key ID` signs with OpenPGP instead.
 * `fabric approve --generate-key DIR [--key-id NAME]` makes an ed25519 key pair.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Graph } from '../../engine/graph.js';
import { graphDigest } from '../../engine/plan.js';
import {
  bindParams,
  generateEd25519,
  isoSeconds,
  keyFingerprint,
  loadKeyring,
  parseExpiry,
  readPrivateKey,
  signEd25519,
  signOpenPgp,
  type ApprovalBody,
  type ApprovalDocument,
} from '../../guards/approval-doc.js';
import { findOnPath } from '../../guards/require.js';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CliContext, CommandModule } from '../context.js';
import { EXIT } from '../context.js';
import { gitFacts } from '../git.js';
import { buildGraph, loadProject } from '../project.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'key', type: 'string', value: 'KEYFILE', description: "the approver's ed25519 private key (PEM)" },
  { name: 'gpg-key', type: 'string', value: 'ID', description: "sign with the approver's OpenPGP key instead (needs gpg)" },
  { name: 'gpg-home', type: 'string', value: 'DIR', description: "GnuPG home holding the signing key (default: $GNUPGHOME or gpg's default)" },
  { name: 'approver', type: 'string', value: 'ID', description: 'who approves (recorded and shown by the guard)' },
  { name: 'reason', type: 'string', value: 'TEXT', description: 'why (recorded and shown by the guard)' },
  { name: 'expires', type: 'string', value: '2h|ISO', description: 'validity: a duration (45m, 2h, 1d) or an ISO-8601 UTC time' },
  { name: 'output', short: 'o', type: 'string', value: 'FILE', description: 'write the approval to FILE (default: stdout)' },
  { name: 'generate-key', type: 'string', value: 'DIR', description: 'write a new ed25519 key pair DIR/NAME.key and DIR/NAME.pub, then exit' },
  { name: 'key-id', type: 'string', value: 'NAME', description: 'file name for --generate-key (default: the --approver, else $USER)' },
];

/** The approval body for a graph: every node of the selection, the commit, the plan digest. */
export function approvalBody(graph: Graph, input: { gitCommit: string; approver: string; reason: string; now: Date; expires: Date }): ApprovalBody {
  return {
    kind: 'fabric-approval',
    version: 1,
    targets: graph.targets,
    nodes: graph.order.map((id) => {
      const n = graph.nodes.get(id)!;
      const secretParams = Object.entries(n.task.spec.params ?? {})
        .filter(([, p]) => p.secret === true)
        .map(([k]) => k);
      return { id, task: n.task.name, params: bindParams(n.params, secretParams) };
    }),
    gitCommit: input.gitCommit,
    planDigest: graphDigest(graph),
    approver: input.approver,
    reason: input.reason,
    createdAt: isoSeconds(input.now),
    expiresAt: isoSeconds(input.expires),
  };
}

function fail(ctx: CliContext, message: string, hint?: string): number {
  ctx.stderr.write(`fabric approve: ${message}\n${hint ? `  ${hint}\n` : ''}`);
  return EXIT.usage;
}

function generateKey(ctx: CliContext, dirArg: string, name: string): number {
  if (!/^[A-Za-z0-9_.@-]+$/.test(name)) return fail(ctx, `invalid key name ${JSON.stringify(name)}`, 'use letters, digits and . _ - @ (--key-id NAME)');
  const dir = resolve(ctx.globals.cwd, dirArg);
  const priv = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  for (const p of [priv, pub]) if (existsSync(p)) return fail(ctx, `${p} already exists (refusing to overwrite a key)`);
  mkdirSync(dir, { recursive: true });
  const pair = generateEd25519();
  writeFileSync(priv, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(pub, pair.publicKeyPem, { flag: 'wx' });
  ctx.stdout.write(`private key: ${priv} (keep it secret; mode 600)\npublic key:  ${pub} (copy it into the approval keyring, keyrings.ed25519)\nfingerprint: ${pair.fingerprint}\n`);
  return EXIT.ok;
}

const command: CommandModule = {
  name: 'approve',
  summary: 'Write a signed approval for a plan',
  help: () => `Usage: fabric approve <task|glob>... [VAR=value...] --approver ID --reason TEXT --expires 2h|ISO
                      (--key KEYFILE | --gpg-key ID [--gpg-home DIR]) [-o FILE]
       fabric approve --generate-key DIR [--key-id NAME]

Writes an approval document for the selection, bound to: every node id and its params (secret params
as salted hashes), the current git commit, the plan digest ('fabric plan --json' for the same
selection), the approver, the reason and the expiry; signed with an ed25519 key (node:crypto) or an
OpenPGP key (gpg). The approval() guard accepts it only for exactly that selection, commit and plan,
before it expires, signed by a key in the configured keyring. Pass it with FABRIC_APPROVAL=FILE.

Key pairs: 'fabric approve --generate-key DIR' writes DIR/NAME.key (private) and DIR/NAME.pub; the same
with openssl: openssl genpkey -algorithm ed25519 -out NAME.key && openssl pkey -in NAME.key -pubout -out NAME.pub
A keyring (config keyrings.ed25519) is a directory of NAME.pub files, or one file of PEM public keys,
each preceded by an 'id: NAME' line.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals, vars } = parseArgs(args, FLAGS, { vars: true });
    const str = (n: string) => flags[n] as string | undefined;
    if (str('generate-key') !== undefined) {
      if (positionals.length) throw new UsageError('--generate-key takes no tasks');
      return generateKey(ctx, str('generate-key')!, str('key-id') ?? str('approver') ?? ctx.env['USER'] ?? 'approver');
    }
    if (positionals.length === 0) throw new UsageError('no task given', 'usage: fabric approve <task>... [VAR=value] --key KEYFILE --approver ID --reason TEXT --expires 2h');
    const approver = str('approver')?.trim();
    const reason = str('reason')?.trim();
    const expiresText = str('expires');
    if (!approver) throw new UsageError('--approver ID is required');
    if (!reason) throw new UsageError('--reason TEXT is required (and must not be blank)');
    if (!expiresText) throw new UsageError('--expires is required', 'a duration such as 2h or 45m, or an ISO-8601 UTC time such as 2026-01-04T18:00:00Z');
    const now = new Date();
    const expires = parseExpiry(expiresText, now);
    if (!expires) throw new UsageError(`--expires ${JSON.stringify(expiresText)} is neither a duration (45m, 2h, 1d) nor an ISO-8601 UTC time`);
    if (expires.getTime() <= now.getTime()) throw new UsageError(`--expires ${expiresText} is in the past`);

    const project = await loadProject(ctx);
    if (str('key') !== undefined && str('gpg-key') !== undefined) throw new UsageError('give either --key or --gpg-key, not both');
    // The approver's own key, always explicit: the config's signing keys sign evidence, not approvals.
    const keyFile = str('key');
    const gpgKey = str('gpg-key');
    if (keyFile === undefined && gpgKey === undefined) throw new UsageError('no signing key', "pass the approver's key: --key KEYFILE (ed25519 PEM) or --gpg-key ID");

    const graph = buildGraph(project, positionals, vars, ctx.env);
    const git = gitFacts(project.repoRoot);
    if (!git.commit) return fail(ctx, `${project.repoRoot} is not a git work tree with a commit: approvals bind to a commit`);
    const body = approvalBody(graph, { gitCommit: git.commit, approver, reason, now, expires });

    let doc: ApprovalDocument;
    let signer: string;
    if (gpgKey !== undefined) {
      if (!findOnPath('gpg', ctx.env['PATH'])) return fail(ctx, 'gpg not found in PATH (needed for --gpg-key)');
      const home = str('gpg-home');
      try {
        doc = await signOpenPgp(body, gpgKey, { homedir: home === undefined ? undefined : resolve(ctx.globals.cwd, home), env: ctx.env });
      } catch (e) {
        return fail(ctx, (e as Error).message);
      }
      signer = `OpenPGP key ${doc.signature.keyId}`;
    } else {
      const path = resolve(ctx.globals.cwd, keyFile!);
      let key;
      try {
        key = readPrivateKey(path);
      } catch (e) {
        return fail(ctx, (e as Error).message);
      }
      const fpr = keyFingerprint(key);
      let name: string | undefined;
      const ring = project.config.keyrings.ed25519;
      if (ring) {
        try {
          name = loadKeyring(ring).keys.find((k) => k.fingerprint === fpr)?.id;
        } catch {
          name = undefined;
        }
        if (!name) ctx.stderr.write(`fabric approve: warning: key ${fpr} is not in the keyring ${ring}; the approval() guard will refuse this approval\n`);
      }
      doc = signEd25519(body, key, name);
      signer = `key ${name ? `${name} ` : ''}${fpr}`;
    }
    const text = JSON.stringify(doc, null, 2) + '\n';
    const out = str('output');
    if (out !== undefined) {
      const file = resolve(ctx.globals.cwd, out);
      writeFileSync(file, text);
      ctx.stderr.write(`wrote ${out}\n`);
    } else ctx.stdout.write(text);
    if (git.dirty) ctx.stderr.write('fabric approve: note: the working tree has uncommitted changes; the plan digest covers the plan as it is now\n');
    ctx.stderr.write(
      `approved ${body.nodes.length} node${body.nodes.length === 1 ? '' : 's'} (${graph.targets.join(' ')}) at commit ${git.commit.slice(0, 12)}, plan ${body.planDigest}, until ${body.expiresAt}, signed with ${signer}\n`,
    );
    return EXIT.ok;
  },
};
export default command;
