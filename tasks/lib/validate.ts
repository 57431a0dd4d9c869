/**
 * The checks behind `fabric run validate` (tasks/self.ts): this repo's own contracts, environment files
 * and task definitions, read-only and offline. Each check returns located diagnostics; the task
 * functions print them with the one diagnostics printer, write a JSON report (a declared output, so it is
 * in the evidence packet with its digest) and exit 1 when there is an error.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { TaskDef } from '../../lib/api/types.js';
import type { Diagnostic } from '../../lib/diagnostics/types.js';
import { formatDiagnostics } from '../../lib/diagnostics/print.js';
import { listEnvNames, loadEnvResult } from './envs.js';
import type { GlueContext } from './vars.js';

export const CONTRACTS_DIR = 'contracts';
export const REPORT_DIR = join('.fabric', 'validate');
const DRAFT_2020 = 'https://json-schema.org/draft/2020-12/schema';

function filesUnder(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, suffix));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

/** The location of the first occurrence of `needle` in `text` (else the file start). */
function locate(file: string, text: string, needle: string | undefined): Diagnostic['location'] {
  const i = needle ? text.indexOf(needle) : -1;
  return { file, offset: Math.max(0, i), length: i >= 0 && needle ? needle.length : 1 };
}

export interface CheckResult {
  readonly checked: readonly string[];
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Every `contracts/**\/*.json` is JSON, declares JSON Schema 2020-12 and a unique `$id`, and compiles with
 * ajv in strict mode (all schemas loaded together, so `$ref`s between contracts resolve).
 */
export async function checkContracts(repoRoot: string): Promise<CheckResult> {
  const files = filesUnder(join(repoRoot, CONTRACTS_DIR), '.json');
  const diags: Diagnostic[] = [];
  const schemas: { file: string; text: string; schema: Record<string, unknown> }[] = [];
  const ids = new Map<string, string>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    let schema: unknown;
    try {
      schema = JSON.parse(text);
    } catch (e) {
      const pos = /position (\d+)/.exec((e as Error).message);
      diags.push({ severity: 'error', code: 'json-syntax', message: `invalid JSON: ${(e as Error).message.split('\n')[0]}`, location: { file, offset: pos ? Number(pos[1]) : 0, length: 1 } });
      continue;
    }
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      diags.push({ severity: 'error', code: 'schema', message: 'a contract must be a JSON Schema object', location: locate(file, text, undefined) });
      continue;
    }
    const s = schema as Record<string, unknown>;
    if (s['$schema'] !== DRAFT_2020) {
      diags.push({ severity: 'error', code: 'schema-draft', message: `contracts use JSON Schema 2020-12: "$schema" must be "${DRAFT_2020}"`, location: locate(file, text, typeof s['$schema'] === 'string' ? JSON.stringify(s['$schema']) : undefined) });
      continue;
    }
    const id = s['$id'];
    if (typeof id !== 'string' || id === '') {
      diags.push({ severity: 'error', code: 'schema-id', message: 'a contract needs a "$id"', location: locate(file, text, undefined) });
      continue;
    }
    const prev = ids.get(id);
    if (prev) {
      diags.push({ severity: 'error', code: 'schema-id', message: `"$id" ${id} is also the id of ${relative(repoRoot, prev)}`, location: locate(file, text, JSON.stringify(id)) });
      continue;
    }
    ids.set(id, file);
    schemas.push({ file, text, schema: s });
  }
  if (schemas.length > 0) {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    // strict mode, except that union types (`"type": ["string", "null"]`, standard JSON Schema) are allowed
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, validateFormats: false });
    const { parseYamlFile, locationOfPath } = await import('../../lib/diagnostics/from-yaml.js');
    /** ajv names the schema location as `<$id>#/json/pointer`: point at that node of the JSON text (JSON is YAML). */
    const where = (c: (typeof schemas)[number], msg: string): Diagnostic['location'] => {
      const ptr = /#(\/[^"'\s]*)/.exec(msg)?.[1];
      const parsed = ptr ? parseYamlFile(c.file, c.text) : undefined;
      if (ptr && parsed?.ok) return locationOfPath(parsed.value.doc, c.file, decodeURIComponent(ptr), true);
      return locate(c.file, c.text, /"([^"]+)"/.exec(msg)?.[0]);
    };
    const added: typeof schemas = [];
    for (const c of schemas) {
      try {
        ajv.addSchema(c.schema);
        added.push(c);
      } catch (e) {
        diags.push({ severity: 'error', code: 'schema-compile', message: `does not load with ajv: ${(e as Error).message}`, location: where(c, (e as Error).message) });
      }
    }
    for (const c of added) {
      try {
        ajv.getSchema(c.schema['$id'] as string);
      } catch (e) {
        const msg = (e as Error).message;
        diags.push({ severity: 'error', code: 'schema-compile', message: `does not compile with ajv (strict): ${msg}`, location: where(c, msg) });
      }
    }
  }
  return { checked: files.map((f) => relative(repoRoot, f)), diagnostics: diags };
}

/** Every `envs/*.yml` validates against contracts/env.schema.json plus the cross-reference checks. */
export async function checkEnvs(repoRoot: string): Promise<CheckResult> {
  const names = listEnvNames(repoRoot);
  const diags: Diagnostic[] = [];
  for (const name of names) {
    const r = await loadEnvResult(repoRoot, name);
    if (!r.ok) diags.push(...r.error);
  }
  if (names.length === 0) diags.push({ severity: 'error', code: 'no-envs', message: `no environment files under ${join(repoRoot, 'envs')}` });
  return { checked: names.map((n) => `envs/${n}.yml`), diagnostics: diags };
}

/**
 * The task definitions analyze: names unique, deps resolve, no cycles (the engine's own
 * validateDefinitions), and every task has a description and declares its effect explicitly.
 */
export async function checkTaskDefs(tasks: readonly TaskDef[]): Promise<CheckResult> {
  const { validateDefinitions, taskLocation } = await import('../../lib/engine/analyze.js');
  const diags: Diagnostic[] = [...validateDefinitions(tasks)];
  if (tasks.length === 0) diags.push({ severity: 'error', code: 'no-tasks', message: 'no tasks are registered (was the fabricfile loaded?)' });
  for (const def of tasks) {
    const loc = taskLocation(def);
    if (!def.spec.description || def.spec.description.trim() === '') {
      diags.push({ severity: 'error', code: 'no-description', message: `Task "${def.name}" has no description.`, location: loc });
    }
    if (def.spec.effect === undefined) {
      diags.push({ severity: 'error', code: 'no-effect', message: `Task "${def.name}" does not declare its effect ("read-only" or "mutating"); undeclared means mutating.`, location: loc });
    }
  }
  return { checked: tasks.map((t) => t.name), diagnostics: diags };
}

/** The tasks of the loaded fabricfile (the registry shared with the CLI through a global symbol). */
export async function registeredTasks(): Promise<readonly TaskDef[]> {
  const { registry } = await import('../../lib/api/registry.js');
  return [...registry().tasks];
}

/** Prints a check's result, writes `<repoRoot>/.fabric/validate/<name>.json`, and gives the exit code. */
export async function reportCheck(ctx: GlueContext, name: string, result: CheckResult): Promise<number> {
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  if (result.diagnostics.length) for (const line of formatDiagnostics(result.diagnostics, { cwd: ctx.repoRoot }).trimEnd().split('\n')) ctx.log(line);
  ctx.log(`${name}: ${result.checked.length} checked, ${errors.length} error(s)`);
  const report = join(ctx.repoRoot, REPORT_DIR, `${name}.json`);
  await mkdir(dirname(report), { recursive: true });
  const diagnostics = result.diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message, ...(d.location ? { file: relative(ctx.repoRoot, d.location.file), offset: d.location.offset } : {}) }));
  await writeFile(report, JSON.stringify({ check: name, ok: errors.length === 0, checked: result.checked, diagnostics }, null, 2) + '\n');
  return errors.length === 0 ? 0 : 1;
}

export async function validateContracts(ctx: GlueContext): Promise<number> {
  return reportCheck(ctx, 'contracts', await checkContracts(ctx.repoRoot));
}

export async function validateEnvs(ctx: GlueContext): Promise<number> {
  return reportCheck(ctx, 'envs', await checkEnvs(ctx.repoRoot));
}

export async function validateTasks(ctx: GlueContext): Promise<number> {
  return reportCheck(ctx, 'tasks', await checkTaskDefs(await registeredTasks()));
}
