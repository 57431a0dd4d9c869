// TEMPORARY: replaced by the real 'approve' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'approve',
  summary: '',
  help: () => 'fabric approve',
  async run(ctx) {
    ctx.stderr.write('fabric approve: not available yet\n');
    return 2;
  },
};
export default command;
