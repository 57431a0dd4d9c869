// TEMPORARY: replaced by the real 'evidence' command (in progress).
import type { CommandModule } from '../context.js';
const command: CommandModule = {
  name: 'evidence',
  summary: '',
  help: () => 'fabric evidence',
  async run(ctx) {
    ctx.stderr.write('fabric evidence: not available yet\n');
    return 2;
  },
};
export default command;
