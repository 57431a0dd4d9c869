/** One sink that forwards every event to several (e.g. the plain renderer plus a JSON event log file). */
import type { EventSink, FabricEvent } from '../engine/events.js';

export class FanoutSink implements EventSink {
  private readonly sinks: readonly EventSink[];
  constructor(sinks: readonly EventSink[]) {
    this.sinks = [...sinks];
  }

  /** Every sink sees every event, even if an earlier one throws; the first error is rethrown after. */
  onEvent(e: FabricEvent): void {
    let first: { error: unknown } | undefined;
    for (const s of this.sinks) {
      try {
        s.onEvent(e);
      } catch (error) {
        first ??= { error };
      }
    }
    if (first) throw first.error;
  }

  /** Closes every sink (in parallel), then rethrows the first failure. */
  async close(): Promise<void> {
    const results = await Promise.allSettled(this.sinks.map(async (s) => s.close?.()));
    const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
  }
}
