/**
 * Chooses the renderer for a run from `--output`, the terminal and the environment:
 *
 * - `json`: NDJSON events on stdout.
 * - `plain` / `grouped`: the plain renderer (grouped prints each task's output as one block).
 * - `tty` or nothing: the listr2 live view when `out` is a TTY and not CI; otherwise plain, or grouped
 *   under GitHub Actions (`GITHUB_ACTIONS=true`), where interleaved lines could not be folded.
 *
 * `eventsFile` (`--events FILE`, or `FABRIC_EVENT_LOG` when not given) adds a JSON renderer writing to
 * that file, through a fanout. Colour only on a TTY and never with `NO_COLOR`.
 *
 * listr2 is loaded (dynamic import) only when the live view is chosen.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { EventSink } from '../engine/events.js';
import { FanoutSink } from '../render/fanout.js';
import { JsonRenderer } from '../render/json.js';
import { PlainRenderer } from '../render/plain.js';
import { UsageError } from './args.js';
import { isCiMode } from '../guards/ci.js';
import type { Out } from './context.js';

export type OutputMode = 'tty' | 'plain' | 'grouped' | 'json';
export const OUTPUT_MODES: readonly OutputMode[] = ['tty', 'plain', 'grouped', 'json'];

export interface PickRendererOptions {
  readonly output: OutputMode | undefined;
  readonly out: Out;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** A file for a JSON event log beside the chosen renderer (relative to `cwd`). */
  readonly eventsFile?: string | undefined;
  /** Directory that a relative `eventsFile` is resolved against (default: the process cwd). */
  readonly cwd?: string | undefined;
}

/** CI mode from the environment: the one rule of lib/guards/ci.ts (anything but empty/0/false). */
export function isCI(env: Readonly<Record<string, string | undefined>>): boolean {
  return isCiMode(env);
}

export function isGitHubActions(env: Readonly<Record<string, string | undefined>>): boolean {
  return env['GITHUB_ACTIONS'] === 'true';
}

/** Colour only on a TTY, and never when NO_COLOR is set to a non-empty value (no-color.org). */
export function useColor(out: Out, env: Readonly<Record<string, string | undefined>>): boolean {
  const noColor = env['NO_COLOR'];
  return out.isTTY === true && (noColor === undefined || noColor === '');
}

/** A JSON renderer appending to a file with synchronous writes: the log survives a crash of fabric. */
function eventFileSink(path: string): EventSink {
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write the event log ${path}${code ? ` (${code})` : ''}`, 'check the --events / FABRIC_EVENT_LOG path');
  }
  let open = true;
  const out: Out = {
    write(text: string) {
      if (open) writeSync(fd, text);
    },
  };
  return new JsonRenderer(out, () => {
    if (open) {
      open = false;
      closeSync(fd);
    }
  });
}

export async function pickRenderer(opts: PickRendererOptions): Promise<EventSink> {
  const { out, env } = opts;
  const color = useColor(out, env);
  const gha = isGitHubActions(env);
  let main: EventSink;
  switch (opts.output) {
    case 'json':
      main = new JsonRenderer(out);
      break;
    case 'plain':
      main = new PlainRenderer(out, { color, gha });
      break;
    case 'grouped':
      main = new PlainRenderer(out, { color, gha, grouped: true });
      break;
    case 'tty':
    case undefined:
      if (out.isTTY === true && !isCI(env)) {
        const { ListrRenderer } = await import('../render/listr.js');
        main = new ListrRenderer(out, { color });
      } else main = new PlainRenderer(out, { color, gha, grouped: gha });
      break;
    default: {
      const bad: never = opts.output;
      throw new UsageError(`unknown output mode "${String(bad)}"`, `use one of: ${OUTPUT_MODES.join(', ')}`);
    }
  }
  const file = opts.eventsFile ?? (env['FABRIC_EVENT_LOG'] || undefined);
  if (file === undefined) return main;
  return new FanoutSink([main, eventFileSink(resolve(opts.cwd ?? process.cwd(), file))]);
}
