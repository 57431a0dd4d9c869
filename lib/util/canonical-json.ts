/**
 * Canonical JSON: object keys sorted at every level. Fingerprints, plan digests and signed approval
 * bodies hash this text, so it must never change.
 *
 * `canonicalJsonGeneral` is the definition: JSON.stringify with a replacer that rebuilds every object
 * from its entries sorted by code unit (`Object.fromEntries` then puts array-index keys first, in
 * numeric order, and the others in insertion order). `canonicalJson` writes the same text for plain
 * JSON data several times faster (no sorted copy of every object), and hands anything else (a Date, a
 * toJSON, a Map...) to the definition. test/unit/canonical-json.test.ts holds them to the same text.
 */

/** The definition (see above). */
export function canonicalJsonGeneral(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** Thrown inside the fast path when a value needs the general serializer. */
const NOT_PLAIN: unique symbol = Symbol('not plain JSON data');

const MAX_ARRAY_INDEX = 2 ** 32 - 2;
function isArrayIndex(k: string): boolean {
  return /^(?:0|[1-9][0-9]{0,9})$/.test(k) && Number(k) <= MAX_ARRAY_INDEX;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether a key may be an array index (the regex only for keys that start with a digit). */
function mayBeIndex(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && isArrayIndex(k);
}

function orderedKeys(o: object): string[] {
  const keys = Object.keys(o);
  if (keys.length === 0) return keys;
  if (keys.length > 1) keys.sort(byCodeUnit);
  if (!keys.some(mayBeIndex)) return keys;
  const indices = keys.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b));
  return [...indices, ...keys.filter((k) => !isArrayIndex(k))];
}

/** JSON.stringify of object keys, which repeat across the objects of a digest ("id", "params"...). */
const quotedKeys = new Map<string, string>();
function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size >= 4096) quotedKeys.clear();
    quotedKeys.set(k, q);
  }
  return q;
}

/** `undefined` where JSON.stringify would leave the value out (undefined in an object). */
function write(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'boolean':
      return JSON.stringify(v);
    case 'undefined':
      return undefined;
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + (write(v[i]) ?? 'null');
        return out + ']';
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN; // Date, Map, toJSON...
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') throw NOT_PLAIN;
      let out = '{';
      let first = true;
      for (const k of orderedKeys(v)) {
        const s = write((v as Record<string, unknown>)[k]);
        if (s === undefined) continue;
        out += (first ? '' : ',') + quotedKey(k) + ':' + s;
        first = false;
      }
      return out + '}';
    }
    default:
      throw NOT_PLAIN; // function, symbol, bigint
  }
}

/** JSON with object keys sorted at every level: the canonical form hashed for digests and fingerprints. */
export function canonicalJson(value: unknown): string {
  try {
    const s = write(value);
    if (s !== undefined) return s;
  } catch (e) {
    if (e !== NOT_PLAIN) throw e;
  }
  return canonicalJsonGeneral(value);
}
