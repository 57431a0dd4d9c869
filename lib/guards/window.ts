/**
 * Change / maintenance windows (Samakia's maint-window.sh): both bounds set, ISO-8601 UTC,
 * end after start, duration at most `maxMinutes`, and the current UTC time inside [start, end].
 */
import type { Guard, GuardFacts } from './types.js';
import { decision, readVar } from './util.js';

export interface WindowOptions {
  readonly startVar: string;
  readonly endVar: string;
  /** Longest allowed window, in minutes. */
  readonly maxMinutes: number;
}

/** `2026-01-04T10:00Z`, `2026-01-04T10:00:00Z`, `2026-01-04T10:00:00.123+00:00`, or no offset (read as UTC). */
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]00:?00)?$/;

/** Parses an ISO-8601 UTC timestamp strictly (calendar-checked); `undefined` when malformed or not UTC. */
export function parseUtc(text: string): Date | undefined {
  const m = ISO_UTC.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const ms = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  const t = Date.UTC(y, mo - 1, d, h, mi, s, Math.floor(ms));
  const date = new Date(t);
  // Reject 2026-02-30 and 25:00 (Date.UTC silently rolls them over).
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== s) return undefined;
  return date;
}

const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const minutes = (ms: number): string => `${(ms / 60_000).toFixed(1)}m`;

/**
 * allow: `now 2026-01-04T10:15:00Z is inside the maintenance window 2026-01-04T10:00:00Z..2026-01-04T10:30:00Z (30.0m ≤ 60m)`.
 * deny: `MAINT_WINDOW_START and MAINT_WINDOW_END are required` · `MAINT_WINDOW_START is not an ISO-8601 UTC time: "tomorrow" (expected e.g. 2026-01-04T10:00:00Z)`
 *   · `maintenance window end must be after start` · `maintenance window exceeds max duration (90.0m > 60m)`
 *   · `current UTC time 2026-01-04T11:00:00Z is outside the maintenance window 2026-01-04T10:00:00Z..2026-01-04T10:30:00Z`.
 */
export function changeWindow(opts: WindowOptions): Guard {
  const { startVar, endVar, maxMinutes } = opts;
  const guard: Guard = {
    kind: 'change-window',
    name: `change-window(${startVar}..${endVar}, max ${maxMinutes}m)`,
    description: `the current UTC time must be inside [${startVar}, ${endVar}], a window of at most ${maxMinutes} minutes`,
    evaluate(facts: GuardFacts) {
      const startText = readVar(facts, startVar);
      const endText = readVar(facts, endVar);
      const seen: Record<string, unknown> = { [startVar]: startText ?? null, [endVar]: endText ?? null, now: iso(facts.now), maxMinutes };
      const remedy = `set ${startVar} and ${endVar} (ISO-8601 UTC, e.g. 2026-01-04T10:00:00Z) to a window of at most ${maxMinutes} minutes around now`;
      const deny = (reason: string) => decision(guard, 'deny', reason, seen, remedy);
      if (!startText || !endText) return deny(`${startVar} and ${endVar} are required`);
      const start = parseUtc(startText);
      if (!start) return deny(`${startVar} is not an ISO-8601 UTC time: ${JSON.stringify(startText)} (expected e.g. 2026-01-04T10:00:00Z)`);
      const end = parseUtc(endText);
      if (!end) return deny(`${endVar} is not an ISO-8601 UTC time: ${JSON.stringify(endText)} (expected e.g. 2026-01-04T10:00:00Z)`);
      const span = end.getTime() - start.getTime();
      seen['durationMinutes'] = Math.round((span / 60_000) * 10) / 10;
      if (span <= 0) return deny('maintenance window end must be after start');
      if (!(maxMinutes > 0)) return deny(`invalid maxMinutes ${maxMinutes} in the task definition`);
      if (span > maxMinutes * 60_000) return deny(`maintenance window exceeds max duration (${minutes(span)} > ${maxMinutes}m)`);
      const now = facts.now.getTime();
      const window = `${iso(start)}..${iso(end)}`;
      if (now < start.getTime() || now > end.getTime()) return deny(`current UTC time ${iso(facts.now)} is outside the maintenance window ${window}`);
      return decision(guard, 'allow', `now ${iso(facts.now)} is inside the maintenance window ${window} (${minutes(span)} ≤ ${maxMinutes}m)`, seen);
    },
  };
  return guard;
}
