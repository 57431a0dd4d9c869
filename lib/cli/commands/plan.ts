// TEMPORARY: replaced by the real 'plan' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'plan',
  summary: '',
  help: () => 'fabric plan',
  async run(ctx) {
    ctx.stderr.write('fabric plan: not available yet\n');
    return 2;
  },
};
export default command;
