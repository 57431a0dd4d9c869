// TEMPORARY: replaced by the real 'list' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'list',
  summary: '',
  help: () => 'fabric list',
  async run(ctx) {
    ctx.stderr.write('fabric list: not available yet\n');
    return 2;
  },
};
export default command;
