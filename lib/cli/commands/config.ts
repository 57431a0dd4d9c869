// TEMPORARY: replaced by the real 'config' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'config',
  summary: '',
  help: () => 'fabric config',
  async run(ctx) {
    ctx.stderr.write('fabric config: not available yet\n');
    return 2;
  },
};
export default command;
