import type { Diagnostic } from './types.js';

/** Thrown by loaders/analyzers after collecting every problem; the CLI prints them in one place and exits 2. */
export class DiagnosticsError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => d.message).join('\n'));
    this.name = 'DiagnosticsError';
  }
}
