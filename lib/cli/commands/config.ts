/** `fabric config [--json]`: the effective configuration and where each value came from. */
import { relative } from 'node:path';
import { flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { loadConfig } from '../config.js';
import { locateFabricfile } from '../project.js';
import { dirname } from 'node:path';

const FLAGS: readonly FlagSpec[] = [{ name: 'json', type: 'boolean', description: 'print as JSON: { values, sources, file }' }];

const command: CommandModule = {
  name: 'config',
  summary: 'Print the effective configuration and where each value came from',
  help: () => `Usage: fabric config [--json]

Prints every configuration value fabric would use here and its source: a built-in default, the config
file (a "fabric" key in package.json, .fabricrc, .fabricrc.json/.yaml/.yml, fabric.config.js/.mjs/.ts,
validated against contracts/config.schema.json), or a flag. Flags override the file; the file overrides
the defaults.

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags } = parseArgs(args, FLAGS);
    const repoRoot = dirname(locateFabricfile(ctx));
    const config = await loadConfig(repoRoot);
    const { sources, file, ...values } = config;
    if (flags['json']) {
      ctx.stdout.write(JSON.stringify({ values, sources, file: file ?? null }, null, 2) + '\n');
      return 0;
    }
    const rows = Object.entries(values).map(([k, v]) => [k, v === undefined ? '(auto)' : typeof v === 'string' ? v : JSON.stringify(v), sources[k] ?? 'default'] as const);
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    let out = `config file: ${file ? relative(ctx.globals.cwd, file) || file : '(none)'}\n\n`;
    for (const [k, v, s] of rows) out += `${k.padEnd(w0)}  ${v.padEnd(w1)}  ${s === 'default' || s === 'flag' ? s : relative(ctx.globals.cwd, s) || s}\n`;
    ctx.stdout.write(out);
    return 0;
  },
};
export default command;
