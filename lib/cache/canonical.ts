/**
 * `canonicalJson` (engine/plan.ts) for the cache key, without its replacer: the same text, several
 * times faster (the replacer builds a sorted copy of every object; the key is serialized for every
 * fingerprint). Anything other than plain JSON data goes to `canonicalJson` itself.
 *
 * Key order is what `canonicalJson` produces: it sorts the entries by code unit and rebuilds the
 * object with `Object.fromEntries`, whose property order puts array-index keys (`"0"`, `"10"`) first,
 * in numeric order, then the other keys in insertion (sorted) order.
 */
import { canonicalJson } from '../engine/plan.js';

/** Thrown inside the fast path when a value needs the general serializer. */
const NOT_PLAIN: unique symbol = Symbol('not plain JSON data');

const MAX_ARRAY_INDEX = 2 ** 32 - 2;
function isArrayIndex(k: string): boolean {
  return /^(?:0|[1-9][0-9]{0,9})$/.test(k) && Number(k) <= MAX_ARRAY_INDEX;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function orderedKeys(o: object): string[] {
  const keys = Object.keys(o).sort(byCodeUnit);
  if (!keys.some(isArrayIndex)) return keys;
  const indices = keys.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b));
  return [...indices, ...keys.filter((k) => !isArrayIndex(k))];
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
        out += (first ? '' : ',') + JSON.stringify(k) + ':' + s;
        first = false;
      }
      return out + '}';
    }
    default:
      throw NOT_PLAIN; // function, symbol, bigint
  }
}

/** The text `canonicalJson(value)` returns. */
export function canonicalKeyJson(value: unknown): string {
  try {
    const s = write(value);
    if (s !== undefined) return s;
  } catch (e) {
    if (e !== NOT_PLAIN) throw e;
  }
  return canonicalJson(value);
}
