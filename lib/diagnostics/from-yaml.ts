/**
 * YAML with located errors: parse errors from `YAMLError.pos`, schema errors from an ajv `instancePath`
 * through `doc.getIn(path, true).range`.
 */
import YAML from 'yaml';
import type { Diagnostic, Location, Result } from './types.js';

export function parseYamlFile(file: string, text: string): Result<{ doc: YAML.Document; value: unknown }> {
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      error: doc.errors.map((e) => ({
        severity: 'error' as const,
        code: 'yaml-syntax',
        message: `invalid YAML: ${e.message.split('\n')[0]}`,
        location: { file, offset: e.pos[0], length: Math.max(1, e.pos[1] - e.pos[0]) },
      })),
    };
  }
  return { ok: true, value: { doc, value: doc.toJS() as unknown } };
}

/** JSON pointer (`/a/0/b`) → path segments; numeric segments become numbers. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The location of a node by path; falls back to the nearest existing ancestor, then the file start. */
export function locationOfPath(doc: YAML.Document, file: string, path: string | readonly (string | number)[], key = false): Location {
  const segs = typeof path === 'string' ? pointerToPath(path) : [...path];
  for (let n = segs.length; n >= 0; n--) {
    const sub = segs.slice(0, n);
    let node: unknown = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    if (key && n === segs.length && n > 0) {
      // point at the key of a map entry when asked (e.g. "unknown property")
      const parent = n === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
      if (YAML.isMap(parent)) {
        const pair = parent.items.find((p) => YAML.isScalar(p.key) && p.key.value === sub[sub.length - 1]);
        if (pair && YAML.isNode(pair.key)) node = pair.key;
      }
    }
    if (YAML.isNode(node) && node.range) {
      return { file, offset: node.range[0], length: Math.max(1, node.range[1] - node.range[0]) };
    }
  }
  return { file, offset: 0, length: 1 };
}

interface AjvLikeError {
  instancePath: string;
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

/** ajv errors → located diagnostics (an unknown property points at its key; a missing one at the parent). */
export function ajvErrorsToDiagnostics(errors: readonly AjvLikeError[] | null | undefined, doc: YAML.Document, file: string, what = 'value'): Diagnostic[] {
  return (errors ?? []).map((e) => {
    let path = e.instancePath;
    let key = false;
    let message = `${what}${e.instancePath ? ` at ${e.instancePath}` : ''} ${e.message ?? 'is invalid'}`;
    if (e.keyword === 'additionalProperties' && typeof e.params['additionalProperty'] === 'string') {
      path = `${e.instancePath}/${String(e.params['additionalProperty']).replace(/~/g, '~0').replace(/\//g, '~1')}`;
      key = true;
      message = `unknown property "${String(e.params['additionalProperty'])}"${e.instancePath ? ` in ${e.instancePath}` : ''}`;
    } else if (e.keyword === 'enum' && Array.isArray(e.params['allowedValues'])) {
      message += `: ${(e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { severity: 'error' as const, code: 'schema', message, location: locationOfPath(doc, file, path, key) };
  });
}
