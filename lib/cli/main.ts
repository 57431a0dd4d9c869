/**
 * argv → global options → command → exit code. The only module that touches process.argv,
 * process.exitCode and signal handlers. Commands are loaded lazily from the table in commands.ts.
 */
import { resolve } from 'node:path';
import { COMMANDS } from './commands.js';
import { EXIT, type CliContext, type Out } from './context.js';
import { after, batched, fdOut } from './out.js';
import { UsageError } from './args.js';
import { nearest } from '../util/suggest.js';
import { VERSION } from './version.js';
import { DiagnosticsError } from '../diagnostics/error.js';
import { formatDiagnostics } from '../diagnostics/print.js';

const GLOBAL_HELP = `fabric ${VERSION}: a typed task-graph runner for infrastructure repositories

Usage: fabric [-C DIR] [-f FILE] <command> [args]
       fabric <task>... [VAR=value...]        (short for: fabric run <task>...)

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
  .join('\n')}
  help       Show help for fabric or one command

Global options:
  -C, --directory DIR   act as if started in DIR
  -f, --file FILE       use FILE as the fabricfile (default: fabricfile.ts, found upwards)
      --debug           print stack traces for errors
  -V, --version         print the version
  -h, --help            print this help

Exit codes: 0 ok, 1 a task failed, 2 usage or definition error, 130 interrupted.
Run 'fabric help <command>' for a command's flags.
`;

/**
 * process.stdout or process.stderr, with the handler that makes a closed pipe (`fabric list | head`)
 * no error worth a stack trace. Node builds each stream on first use (~1 ms for a pipe): a command
 * that never writes to stderr does not pay for it.
 */
const guarded = new Set<'stdout' | 'stderr'>();
function std(name: 'stdout' | 'stderr'): NodeJS.WriteStream {
  const stream = process[name];
  if (!guarded.has(name)) {
    guarded.add(name);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  return stream;
}

/**
 * Where a command's stdout goes: `run` writes through process.stdout (a slow reader must not stall
 * the scheduler), every other command, which prints its answer and exits, to the file descriptor
 * itself when it is a pipe, socket or file (out.ts `fdOut`: no streams stack at start-up).
 */
function stdoutFor(command: string): Out {
  return command === 'run' ? std('stdout') : fdOut(1, () => std('stdout'));
}

async function main(argv: string[]): Promise<number> {
  let cwd = process.cwd();
  let file: string | undefined;
  let debug = false;
  let i = 0;
  // Global options come before the command.
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-C' || a === '--directory') {
      const v = argv[++i];
      if (!v) return usage(`${a} needs a directory`);
      cwd = resolve(cwd, v);
    } else if (a.startsWith('--directory=')) cwd = resolve(cwd, a.slice(12));
    else if (a.startsWith('-C') && a.length > 2) cwd = resolve(cwd, a.slice(2));
    else if (a === '-f' || a === '--file') {
      const v = argv[++i];
      if (!v) return usage(`${a} needs a file`);
      file = v;
    } else if (a.startsWith('--file=')) file = a.slice(7);
    else if (a === '--debug') debug = true;
    else if (a === '-V' || a === '--version') {
      stdoutFor('version').write(`fabric ${VERSION}\n`);
      return EXIT.ok;
    } else if (a === '-h' || a === '--help') {
      stdoutFor('help').write(GLOBAL_HELP);
      return EXIT.ok;
    } else break;
  }
  const rest = argv.slice(i);
  if (rest.length === 0) {
    stdoutFor('help').write(GLOBAL_HELP);
    return EXIT.ok;
  }
  let name = rest[0]!;
  let args = rest.slice(1);
  if (name === 'help') return help(args[0]);
  if (!(name in COMMANDS)) {
    // `fabric dns.up ENV=x` runs tasks, as `make dns.up ENV=x` does; a word that looks like no task is a typo of a command.
    if (/[.*:[\]]/.test(name) || name.includes('=') || name.startsWith('-')) {
      args = rest;
      name = 'run';
    } else {
      const near = nearest(name, Object.keys(COMMANDS));
      if (near) return usage(`unknown command "${name}"`, `did you mean 'fabric ${near}'? (to run a task named "${name}", use 'fabric run ${name}')`);
      args = rest;
      name = 'run';
    }
  }
  // Commands write stdout through a buffer that holds text for at most a few milliseconds (see out.ts).
  const stdout = batched(stdoutFor(name));
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) controller.abort(sig);
    else if (signals >= 3) {
      stdout.flush();
      std('stderr').write('fabric: third signal, exiting now\n');
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (file) file = resolve(cwd, file);
  // -C DIR acts as if fabric were started in DIR, as make -C does (task defaults such as the git top
  // level of the working directory see it too).
  if (cwd !== process.cwd()) {
    try {
      process.chdir(cwd);
    } catch (e) {
      return usage(`cannot change to directory ${cwd}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  const ctx: CliContext = {
    argv,
    env: process.env,
    stdout,
    stderr: after(stdout, () => std('stderr')),
    // process.stdin builds a stream on first use (~1 ms); only a confirmation prompt needs it.
    get stdin() {
      return process.stdin;
    },
    globals: { file, cwd, debug },
    signal: controller.signal,
  };
  try {
    const mod = (await COMMANDS[name]!.load()).default;
    return await mod.run(ctx, args);
  } catch (e) {
    stdout.flush();
    if (e instanceof UsageError) return usage(e.message, e.hint);
    if (e instanceof DiagnosticsError) {
      std('stderr').write(formatDiagnostics(e.diagnostics, { cwd }));
      if (debug && e.stack) std('stderr').write(e.stack + '\n');
      return EXIT.usage;
    }
    std('stderr').write(`fabric: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (debug && e instanceof Error && e.stack) std('stderr').write(e.stack + '\n');
    else std('stderr').write('This is a bug in fabric. Rerun with --debug and report the output with the fabric version (fabric --version).\n');
    return EXIT.failed;
  } finally {
    stdout.flush();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function help(name: string | undefined): Promise<number> {
  if (!name) {
    stdoutFor('help').write(GLOBAL_HELP);
    return EXIT.ok;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    const near = nearest(name, [...Object.keys(COMMANDS), 'help']);
    return usage(`no command "${name}"`, near ? `did you mean 'fabric help ${near}'?` : undefined);
  }
  const mod = (await entry.load()).default;
  stdoutFor('help').write(mod.help().trimEnd() + '\n');
  return EXIT.ok;
}

function usage(message: string, hint?: string): number {
  std('stderr').write(`fabric: ${message}\n${hint ? `  ${hint}\n` : ''}Run 'fabric --help' for usage.\n`);
  return EXIT.usage;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    std('stderr').write(`fabric: internal error: ${String(e)}\n`);
    process.exitCode = EXIT.failed;
  },
);
