// A Samakia-Fabric-shaped checkout for the catalogue tests: this repo's fabricfile, tasks/, envs/ and
// contracts/ (lib/ and node_modules/ linked), every repo script the catalogue names as a fake that only
// records its call, the terraform env dirs and the Ansible dir, and fake infrastructure tools (terraform,
// ssh, ansible-*, packer, mc, curl) in <dir>/fakebin. Fakes record their calls at absolute paths baked in
// at creation (<dir>/scripts.log, <dir>/tools.log): fabric scrubs the environment of every command, so a
// log path passed through the environment would not reach them.
import { cp, mkdir, readFile, symlink, writeFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT } from '../helpers/rig.js';

/** The Samakia catalogue (facts about the 318 Makefile targets); tests may read ../shared, the product never does. */
export const CATALOGUE_PATH = process.env['SAMAKIA_CATALOGUE'] ?? join(ROOT, '..', 'shared', 'samakia', 'catalogue.json');

export interface CatalogueStep {
  kind: string;
  var?: string;
  equals?: string;
  notEquals?: string;
  nonEmpty?: boolean;
  oneOf?: string[];
  pattern?: string;
  scope?: string;
  message?: string;
  conditional?: string | null;
  target?: string;
  path?: string;
  tool?: string;
  vars?: Record<string, string>;
}
export interface CatalogueTarget {
  name: string;
  group: string;
  section: string;
  summary: string;
  params: { name: string; default: string | null; assign: string }[];
  steps: CatalogueStep[];
  deps: { target: string; kind: string; vars: Record<string, string>; conditional: string | null }[];
  guards: { ids: { id: string; detail: string[] | null }[] };
  effects: { readOnly: boolean; mutates: string[] };
  scripts?: { direct?: string[]; closure?: string[] };
}

let cached: CatalogueTarget[] | undefined;
export async function catalogue(): Promise<CatalogueTarget[]> {
  cached ??= JSON.parse(await readFile(CATALOGUE_PATH, 'utf8')) as CatalogueTarget[];
  return cached;
}

export const FAKE_TOOLS = ['terraform', 'ssh', 'ansible-playbook', 'ansible-inventory', 'ansible', 'packer', 'mc', 'curl', 'pre-commit', 'rg'];
/** PATH with the fixture's fake tools first; no /usr/local/bin, so a real terraform installed there is never found. */
export const fakePath = (dir: string, withTools = true): string => [...(withTools ? [join(dir, 'fakebin')] : []), dirname(process.execPath), '/usr/bin', '/bin'].join(':');

const ENVS = ['samakia-minio', 'samakia-dns', 'samakia-shared', 'samakia-dev', 'samakia-staging', 'samakia-prod'];

/** A fake that appends its name and argv to `log` (an absolute path) and exits 0. */
const fake = (log: string): string => `#!/usr/bin/env bash
printf '%s %s\\n' "$0" "$*" >> ${JSON.stringify(log)}
exit 0
`;
/** A fake repo script: like fake(), and it also records the signing variables it sees in env.log. */
const fakeScript = (dir: string): string => `#!/usr/bin/env bash
printf '%s %s\\n' "$0" "$*" >> ${JSON.stringify(join(dir, 'scripts.log'))}
printf '%s EXPOSURE_SIGN=%s EVIDENCE_GPG_KEY=%s COMPLIANCE_GPG_KEY=%s\\n' "$0" "\${EXPOSURE_SIGN-<unset>}" "\${EVIDENCE_GPG_KEY-<unset>}" "\${COMPLIANCE_GPG_KEY-<unset>}" >> ${JSON.stringify(join(dir, 'env.log'))}
exit 0
`;

export interface SamakiaRepoOptions {
  /** Scripts (repo-relative) to leave out, to test the missing-script refusal. */
  readonly without?: readonly string[];
  /** Terraform env dirs to leave out. */
  readonly withoutEnvDirs?: readonly string[];
}

/** Builds the checkout in `dir` (the rig's temp dir). */
export async function samakiaRepo(dir: string, opts: SamakiaRepoOptions = {}): Promise<void> {
  for (const d of ['contracts', 'envs', 'tasks']) await cp(join(ROOT, d), join(dir, d), { recursive: true });
  await cp(join(ROOT, 'fabricfile.ts'), join(dir, 'fabricfile.ts'));
  await symlink(join(ROOT, 'lib'), join(dir, 'lib'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const scripts = new Set<string>();
  for (const t of await catalogue()) for (const s of [...(t.scripts?.direct ?? []), ...(t.scripts?.closure ?? [])]) scripts.add(s);
  for (const s of scripts) {
    if (opts.without?.includes(s)) continue;
    const p = join(dir, s);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, fakeScript(dir));
    await chmod(p, 0o755);
  }
  await mkdir(join(dir, 'fakebin'), { recursive: true });
  for (const tool of FAKE_TOOLS) {
    await writeFile(join(dir, 'fakebin', tool), fake(join(dir, 'tools.log')));
    await chmod(join(dir, 'fakebin', tool), 0o755);
  }
  for (const env of ENVS) {
    if (opts.withoutEnvDirs?.includes(env)) continue;
    await mkdir(join(dir, 'fabric-core', 'terraform', 'envs', env), { recursive: true });
    await writeFile(join(dir, 'fabric-core', 'terraform', 'envs', env, 'main.tf'), '# fake\n');
  }
  await mkdir(join(dir, 'fabric-core', 'ansible', 'playbooks'), { recursive: true });
  await mkdir(join(dir, 'fabric-core', 'ha'), { recursive: true });
  await writeFile(join(dir, 'fabric-core', 'ha', 'placement-policy.yml'), 'tiers: {}\n');
}

/** Environment for a fabric run in the fixture: fake tools on PATH, a HOME inside the fixture, no CI. */
export function fixtureEnv(dir: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    PATH: fakePath(dir),
    HOME: join(dir, 'home'),
    CI: undefined,
    GITHUB_ACTIONS: undefined,
    RUNNER_MODE: undefined,
    ENV: undefined,
    FABRIC_REPO_ROOT: undefined,
    ...extra,
  };
}
