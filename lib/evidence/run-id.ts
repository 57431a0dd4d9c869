import { randomBytes } from 'node:crypto';

/**
 * A run id: the UTC start time (`YYYYMMDDTHHMMSSZ`, the compact form Samakia's compliance packets use,
 * with no colons so it is a valid file name everywhere) plus a short random suffix, so two runs started
 * in the same second get different directories. Ids sort by start time (to the second).
 * @example newRunId(new Date('2026-11-26T14:05:51.123Z')) // '20261126T140551Z-3f9a2c'
 */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export const RUN_ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;
