/**
 * Configuration: built-in defaults < config file (cosmiconfig: `fabric` in package.json, .fabricrc*,
 * fabric.config.*) < flags. Each effective value remembers where it came from (`fabric config`).
 * cosmiconfig and ajv are imported only when a config file exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { DiagnosticsError } from '../diagnostics/error.js';
import type { Diagnostic } from '../diagnostics/types.js';
import { DEFAULT_SECRET_PATTERNS } from '../util/redact.js';

export interface EffectiveConfig {
  readonly jobs: number;
  readonly output: 'tty' | 'plain' | 'grouped' | 'json' | undefined;
  readonly evidence: boolean;
  readonly evidenceDir: string;
  readonly cache: boolean;
  readonly cacheDir: string;
  readonly graceMs: number;
  readonly secretPatterns: readonly string[];
  readonly keyrings: { readonly ed25519?: string; readonly gpgHome?: string };
  readonly signing?: { readonly ed25519Key?: string; readonly gpgKey?: string; readonly gpgHome?: string; readonly keyId?: string; readonly required?: 1 | 2 };
  /** Config key → where its value came from: `default`, a file path, or `flag`. */
  readonly sources: Readonly<Record<string, string>>;
  /** The config file, if any. */
  readonly file: string | undefined;
}

export const CONFIG_FILES = ['.fabricrc', '.fabricrc.json', '.fabricrc.yaml', '.fabricrc.yml', 'fabric.config.js', 'fabric.config.mjs', 'fabric.config.ts'] as const;

type Raw = Record<string, unknown>;

function hasPackageKey(dir: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Raw;
    return pkg !== null && typeof pkg === 'object' && 'fabric' in pkg;
  } catch {
    return false;
  }
}

async function readConfigFile(dir: string): Promise<{ file: string; raw: Raw } | undefined> {
  if (!CONFIG_FILES.some((f) => existsSync(join(dir, f))) && !hasPackageKey(dir)) return undefined;
  const { cosmiconfig } = await import('cosmiconfig');
  // A TypeScript config is compiled with esbuild (a runtime dependency), not with cosmiconfig's loader,
  // which needs the typescript package, often absent where fabric is installed.
  const explorer = cosmiconfig('fabric', { searchPlaces: ['package.json', ...CONFIG_FILES], searchStrategy: 'none', loaders: { '.ts': loadTsConfig } });
  let found;
  try {
    found = await explorer.search(dir);
  } catch (e) {
    const err = e as Error & { mark?: { position?: number }; filepath?: string };
    throw new DiagnosticsError([{ severity: 'error', code: 'config-syntax', message: `cannot read the fabric config: ${err.message.split('\n')[0]}` }]);
  }
  if (!found || found.isEmpty) return undefined;
  return { file: found.filepath, raw: (found.config ?? {}) as Raw };
}

async function loadTsConfig(file: string): Promise<unknown> {
  const [{ build }, { createHash }, fs, { pathToFileURL }] = await Promise.all([import('esbuild'), import('node:crypto'), import('node:fs/promises'), import('node:url')]);
  const out = await build({ entryPoints: [file], bundle: true, write: false, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'silent' });
  const code = out.outputFiles[0]!.contents;
  const dir = join(file, '..', '.fabric', 'build');
  await fs.mkdir(dir, { recursive: true });
  const target = join(dir, `config-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  await fs.writeFile(target, code);
  const mod = (await import(pathToFileURL(target).href)) as { default?: unknown };
  return mod.default ?? mod;
}

async function validate(file: string, raw: Raw): Promise<void> {
  const [{ default: Ajv }, schemaText] = await Promise.all([import('ajv/dist/2020.js'), import('node:fs/promises').then((fs) => fs.readFile(new URL('contracts/config.schema.json', importMetaBase()), 'utf8'))]);
  const AjvCtor = Ajv as unknown as typeof import('ajv/dist/2020.js').default;
  const ajv = new AjvCtor({ allErrors: true, strict: false });
  const check = ajv.compile(JSON.parse(schemaText) as object);
  if (check(raw)) return;
  let diags: Diagnostic[];
  if (/\.(json|ya?ml)$|\.fabricrc$|package\.json$/.test(file)) {
    const { parseYamlFile, ajvErrorsToDiagnostics } = await import('../diagnostics/from-yaml.js');
    const text = readFileSync(file, 'utf8');
    const parsed = parseYamlFile(file, text);
    if (!parsed.ok) throw new DiagnosticsError(parsed.error);
    const prefix = file.endsWith('package.json') ? '/fabric' : '';
    diags = ajvErrorsToDiagnostics(
      (check.errors ?? []).map((e) => ({ ...e, instancePath: prefix + e.instancePath })),
      parsed.value.doc,
      file,
      'config',
    );
  } else {
    diags = (check.errors ?? []).map((e) => ({ severity: 'error' as const, code: 'schema', message: `${file}: config${e.instancePath} ${e.message ?? 'is invalid'}` }));
  }
  throw new DiagnosticsError(diags);
}

/** The package root (where contracts/ lives), found from this module's location (dist/ or build/lib/cli/). */
function importMetaBase(): URL {
  let u = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    if (existsSync(new URL('contracts/config.schema.json', u))) return u;
    u = new URL('..', u);
  }
  return new URL('../../', import.meta.url);
}

export interface ConfigFlags {
  readonly jobs?: number | undefined;
  readonly output?: EffectiveConfig['output'];
  readonly cache?: boolean | undefined;
  readonly evidence?: boolean | undefined;
}

export async function loadConfig(repoRoot: string, flags: ConfigFlags = {}): Promise<EffectiveConfig> {
  const found = await readConfigFile(repoRoot);
  if (found) await validate(found.file, found.raw);
  const raw = found?.raw ?? {};
  const sources: Record<string, string> = {};
  const pick = <T>(key: string, flag: T | undefined, dflt: T): T => {
    if (flag !== undefined) {
      sources[key] = 'flag';
      return flag;
    }
    if (raw[key] !== undefined) {
      sources[key] = found!.file;
      return raw[key] as T;
    }
    sources[key] = 'default';
    return dflt;
  };
  const jobs = pick('jobs', flags.jobs, Math.max(1, availableParallelism()));
  const output = pick<EffectiveConfig['output']>('output', flags.output, undefined);
  const evidence = pick('evidence', flags.evidence, true);
  const evidenceDir = resolve(repoRoot, pick('evidenceDir', undefined, 'evidence'));
  const cache = pick('cache', flags.cache, true);
  const cacheDir = resolve(repoRoot, pick('cacheDir', undefined, '.fabric/cache'));
  const graceMs = pick('graceMs', undefined, 3000);
  const secretPatterns = pick<readonly string[]>('secretPatterns', undefined, DEFAULT_SECRET_PATTERNS);
  const keyringsRaw = pick<Raw>('keyrings', undefined, {});
  const keyrings: { ed25519?: string; gpgHome?: string } = {};
  if (typeof keyringsRaw['ed25519'] === 'string') keyrings.ed25519 = resolve(repoRoot, keyringsRaw['ed25519']);
  if (typeof keyringsRaw['gpgHome'] === 'string') keyrings.gpgHome = resolve(repoRoot, keyringsRaw['gpgHome']);
  const signingRaw = raw['signing'] as Raw | undefined;
  if (signingRaw) sources['signing'] = found!.file;
  const signing = signingRaw
    ? {
        ...(typeof signingRaw['ed25519Key'] === 'string' ? { ed25519Key: resolve(repoRoot, signingRaw['ed25519Key']) } : {}),
        ...(typeof signingRaw['gpgKey'] === 'string' ? { gpgKey: signingRaw['gpgKey'] } : {}),
        ...(typeof signingRaw['gpgHome'] === 'string' ? { gpgHome: resolve(repoRoot, signingRaw['gpgHome']) } : {}),
        ...(typeof signingRaw['keyId'] === 'string' ? { keyId: signingRaw['keyId'] } : {}),
        ...(signingRaw['required'] === 1 || signingRaw['required'] === 2 ? { required: signingRaw['required'] as 1 | 2 } : {}),
      }
    : undefined;
  return { jobs, output, evidence, evidenceDir, cache, cacheDir, graceMs, secretPatterns, keyrings, ...(signing ? { signing } : {}), sources, file: found?.file };
}
