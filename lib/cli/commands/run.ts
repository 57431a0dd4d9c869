// TEMPORARY: replaced by the real 'run' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'run',
  summary: '',
  help: () => 'fabric run',
  async run(ctx) {
    ctx.stderr.write('fabric run: not available yet\n');
    return 2;
  },
};
export default command;
