/** What every CLI command receives: the process's capabilities, passed in (the engine never reads them itself). */
export interface Out {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

export interface GlobalOptions {
  /** `-f FILE`: the fabricfile to load (absolute). */
  readonly file: string | undefined;
  /** `-C DIR` applied: the directory fabric acts from (absolute). */
  readonly cwd: string;
  readonly debug: boolean;
}

export interface CliContext {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: Out;
  readonly stderr: Out;
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly globals: GlobalOptions;
  /** Aborted on the first SIGINT/SIGTERM (reason: the signal name). */
  readonly signal: AbortSignal;
}

export interface CommandModule {
  readonly name: string;
  readonly summary: string;
  /** Full help text (usage line, description, flags). */
  help(): string;
  /** Returns the exit code: 0 ok, 1 a task failed, 2 usage or definition error, 130 interrupted. */
  run(ctx: CliContext, args: readonly string[]): Promise<number>;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
