/**
 * NDJSON: one event per line, exactly as the engine emitted it. This is the test oracle and the
 * `--events FILE` / FABRIC_EVENT_LOG format, so it must never drop an event or break a line.
 */
import type { Out } from '../cli/context.js';
import type { EventSink, FabricEvent } from '../engine/events.js';
import { unreachable } from '../util/unreachable.js';

/**
 * JSON.stringify that cannot throw on what may sit in `unknown` fields (guard facts): bigints become
 * strings, cycles become "[Circular]", errors become `{name, message}`. Newlines inside strings are
 * escaped by JSON itself, so the result is always one line.
 */
export function eventLine(e: FabricEvent): string {
  const stack: unknown[] = [];
  const replacer = function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) return { name: value.name, message: value.message };
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    if (value !== null && typeof value === 'object') {
      // `this` is the holder of `value`: unwind the ancestor stack to it, then check for a cycle.
      while (stack.length > 0 && stack[stack.length - 1] !== this) stack.pop();
      if (stack.includes(value)) return '[Circular]';
      stack.push(value);
    }
    return value;
  };
  return JSON.stringify(e, replacer);
}

export class JsonRenderer implements EventSink {
  constructor(
    private readonly out: Out,
    private readonly onClose?: () => Promise<void> | void,
  ) {}

  onEvent(e: FabricEvent): void {
    switch (e.type) {
      // Every event is written the same way; listing them keeps this switch exhaustive, so a new
      // event type is a compile error here until someone decides how it is serialized.
      case 'run-start':
      case 'guard-decision':
      case 'run-denied':
      case 'task-start':
      case 'command-start':
      case 'command-end':
      case 'task-output':
      case 'task-retry':
      case 'cache':
      case 'task-success':
      case 'task-failure':
      case 'gate':
      case 'warning':
      case 'run-interrupted':
      case 'run-end':
        this.out.write(eventLine(e) + '\n');
        return;
      default:
        unreachable(e);
    }
  }

  async close(): Promise<void> {
    await this.onClose?.();
  }
}
