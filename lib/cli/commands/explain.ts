// TEMPORARY: replaced by the real 'explain' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'explain',
  summary: '',
  help: () => 'fabric explain',
  async run(ctx) {
    ctx.stderr.write('fabric explain: not available yet\n');
    return 2;
  },
};
export default command;
