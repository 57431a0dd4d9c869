// TEMPORARY: replaced by the real 'graph' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'graph',
  summary: '',
  help: () => 'fabric graph',
  async run(ctx) {
    ctx.stderr.write('fabric graph: not available yet\n');
    return 2;
  },
};
export default command;
