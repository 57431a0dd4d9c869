import type { CommandModule } from '../context.js';
import { COMMANDS } from '../commands.js';
import { UsageError } from '../args.js';
import { nearest } from '../../util/suggest.js';

const command: CommandModule = {
  name: 'help',
  summary: 'Show help for fabric or one command',
  help: () => 'Usage: fabric help [command]\n\nPrints the help of one command, or the list of commands.\n',
  async run(ctx, args) {
    const name = args[0];
    if (!name) {
      ctx.stdout.write(`Usage: fabric <command> [args]\n\nCommands:\n${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join('\n')}\n\nRun 'fabric help <command>' for details, 'fabric --help' for global options.\n`);
      return 0;
    }
    const entry = COMMANDS[name];
    if (!entry) {
      const near = nearest(name, Object.keys(COMMANDS));
      throw new UsageError(`no command "${name}"`, near ? `did you mean '${near}'?` : undefined);
    }
    const mod = (await entry.load()).default;
    ctx.stdout.write(mod.help().trimEnd() + '\n');
    return 0;
  },
};
export default command;
