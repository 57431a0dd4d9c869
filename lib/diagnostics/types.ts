/** A span of source text: `offset`/`length` index into the file's text (UTF-16 units, as JS strings). */
export interface Location {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export interface RelatedInfo {
  readonly message: string;
  readonly location: Location;
}

/**
 * A problem found in user input (fabricfile, task module, env file, config, policy, approval...).
 * Diagnostics are data; `lib/diagnostics/print.ts` is the only place that draws them.
 * `location` is absent only when there is no file to point at (e.g. an unknown task named on the CLI).
 */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  /** A short stable code, e.g. `unknown-dependency`, `cycle`, `duplicate-task`, `invalid-param`. */
  readonly code: string;
  readonly message: string;
  readonly location?: Location | undefined;
  readonly related?: readonly RelatedInfo[] | undefined;
  /** A one-line suggestion ("did you mean ..."), printed under the squiggle. */
  readonly hint?: string | undefined;
}

export type Result<T, E = Diagnostic[]> = { ok: true; value: T } | { ok: false; error: E };
export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });
