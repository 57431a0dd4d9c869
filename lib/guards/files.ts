/**
 * Files that guards read (policy files, approvals): parsed as YAML (a superset of JSON) with located
 * errors, validated against a schema in contracts/ with ajv. yaml and ajv are loaded only here, lazily.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type YAML from 'yaml';
import type { Diagnostic, Location, Result } from '../diagnostics/types.js';
import { lineColOf } from '../diagnostics/location.js';

export interface DataFile {
  readonly file: string;
  readonly text: string;
  readonly doc: YAML.Document;
  readonly value: unknown;
}

/** The package root (where contracts/ lives), from this module's location (dist/chunks/, dist/ or build/lib/guards/). */
function contractsDir(): URL {
  let u = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    if (existsSync(new URL('contracts/policy.schema.json', u))) return new URL('contracts/', u);
    u = new URL('..', u);
  }
  return new URL('../../contracts/', import.meta.url);
}

type Validator = ((v: unknown) => boolean) & { errors?: unknown[] | null };
const validators = new Map<string, Promise<Validator>>();

/** A compiled validator for `contracts/<name>` (compiled once per process). */
export function schemaValidator(name: string): Promise<Validator> {
  let v = validators.get(name);
  if (!v) {
    v = (async () => {
      const { default: Ajv } = await import('ajv/dist/2020.js');
      const AjvCtor = Ajv as unknown as typeof import('ajv/dist/2020.js').default;
      const ajv = new AjvCtor({ allErrors: true, strict: false });
      const schema = JSON.parse(readFileSync(new URL(name, contractsDir()), 'utf8')) as object;
      return ajv.compile(schema) as unknown as Validator;
    })();
    validators.set(name, v);
  }
  return v;
}

const cache = new Map<string, { schema: string; text: string; result: Result<DataFile> }>();

/**
 * Reads, parses and validates a data file. Parsed results are cached per path, schema and content (many
 * nodes may read the same policy; a changed byte is always seen). The text itself is the key: comparing
 * it costs no more than hashing it, and this module, imported by every fabricfile, needs no node:crypto.
 */
export async function loadDataFile(file: string, schema: string, what: string): Promise<Result<DataFile>> {
  let text: string;
  try {
    if (!statSync(file).isFile()) return { ok: false, error: [{ severity: 'error', code: 'not-a-file', message: `${what} ${file} is not a file` }] };
  } catch {
    return { ok: false, error: [{ severity: 'error', code: 'missing-file', message: `${what} not found: ${file}` }] };
  }
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, error: [{ severity: 'error', code: 'unreadable-file', message: `cannot read ${what} ${file}: ${(e as Error).message}` }] };
  }
  const hit = cache.get(file);
  if (hit && hit.schema === schema && hit.text === text) return hit.result;
  const result = await parseAndValidate(file, text, schema, what);
  cache.set(file, { schema, text, result });
  return result;
}

async function parseAndValidate(file: string, text: string, schema: string, what: string): Promise<Result<DataFile>> {
  const { parseYamlFile, ajvErrorsToDiagnostics } = await import('../diagnostics/from-yaml.js');
  const parsed = parseYamlFile(file, text);
  if (!parsed.ok) return parsed;
  const { doc, value } = parsed.value;
  const check = await schemaValidator(schema);
  if (!check(value)) {
    const diags = ajvErrorsToDiagnostics((check.errors ?? []) as Parameters<typeof ajvErrorsToDiagnostics>[0], doc, file, what);
    return { ok: false, error: diags.length ? diags : [{ severity: 'error', code: 'schema', message: `${what} is invalid`, location: { file, offset: 0, length: 1 } }] };
  }
  return { ok: true, value: { file, text, doc, value } };
}

/** The location of a value in a parsed data file (`path` segments or a JSON pointer). */
export async function locate(data: DataFile, path: readonly (string | number)[]): Promise<Location> {
  const { locationOfPath } = await import('../diagnostics/from-yaml.js');
  return locationOfPath(data.doc, data.file, path);
}

/** `path:line:col` for a location, the path relative to `root` when inside it. */
export function where(loc: Location, root: string): string {
  let text: string | undefined;
  try {
    text = readFileSync(loc.file, 'utf8');
  } catch {
    text = undefined;
  }
  const shown = displayPath(loc.file, root);
  if (text === undefined) return shown;
  const { line, column } = lineColOf(text, loc.offset);
  return `${shown}:${line}:${column}`;
}

export function displayPath(file: string, root: string): string {
  const rel = relative(root, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** One line per diagnostic: `file:line:col: message` (no location: just the message). */
export function diagnosticLine(d: Diagnostic, root: string): string {
  return d.location ? `${where(d.location, root)}: ${d.message}` : d.message;
}

export function resolveIn(root: string, p: string): string {
  return isAbsolute(p) ? p : resolve(root, p);
}
