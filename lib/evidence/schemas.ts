/**
 * The evidence JSON Schemas (contracts/*.schema.json, draft 2020-12) compiled with ajv, loaded lazily:
 * only `fabric evidence verify` and the tests need them, never a run.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { SCHEMAS } from './constants.js';

/** contracts/ of this installation, found from this module's location (dist/chunks/, dist/ or build/lib/evidence/). */
export function defaultContractsDir(): string {
  let u = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    if (existsSync(new URL(`contracts/${SCHEMAS.run}`, u))) return fileURLToPath(new URL('contracts/', u));
    u = new URL('..', u);
  }
  return fileURLToPath(new URL('../../contracts/', import.meta.url));
}

export type SchemaName = keyof typeof SCHEMAS;

export interface SchemaError {
  /** JSON pointer into the document, `''` for the root. */
  readonly path: string;
  readonly message: string;
}

export interface Schemas {
  validate(name: SchemaName, value: unknown): SchemaError[];
}

// RFC 3339 date-time (what Date#toISOString writes, and offsets).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i;

const loaded = new Map<string, Promise<Schemas>>();

export function loadSchemas(contractsDir: string = defaultContractsDir()): Promise<Schemas> {
  let p = loaded.get(contractsDir);
  if (!p) {
    p = (async () => {
      const { default: Ajv } = await import('ajv/dist/2020.js');
      const AjvCtor = Ajv as unknown as typeof import('ajv/dist/2020.js').default;
      const ajv = new AjvCtor({ allErrors: true, strict: true, strictRequired: false });
      ajv.addFormat('date-time', { type: 'string', validate: (s: string) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)) });
      const ids = {} as Record<SchemaName, string>;
      for (const [name, file] of Object.entries(SCHEMAS) as [SchemaName, string][]) {
        const schema = JSON.parse(await readFile(join(contractsDir, file), 'utf8')) as { $id: string };
        ajv.addSchema(schema);
        ids[name] = schema.$id;
      }
      return {
        validate(name, value) {
          const check = ajv.getSchema(ids[name]);
          if (!check) return [{ path: '', message: `schema ${SCHEMAS[name]} is not loaded` }];
          if (check(value)) return [];
          return (check.errors ?? []).map((e) => ({
            path: e.instancePath,
            message: `${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}${e.keyword === 'enum' || e.keyword === 'const' ? `: ${JSON.stringify(e.params)}` : ''}`,
          }));
        },
      };
    })();
    loaded.set(contractsDir, p);
  }
  return p;
}
