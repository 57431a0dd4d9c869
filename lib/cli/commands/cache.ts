// TEMPORARY: replaced by the real 'cache' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'cache',
  summary: '',
  help: () => 'fabric cache',
  async run(ctx) {
    ctx.stderr.write('fabric cache: not available yet\n');
    return 2;
  },
};
export default command;
