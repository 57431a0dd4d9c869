/**
 * `fabric cache stats | prune [--max-size SIZE] [--older-than DURATION] | clean`: the local store.
 * Reads only the configuration (not the fabricfile's tasks) to find the cache directory.
 */
import { dirname } from 'node:path';
import { UsageError, flagHelp, parseArgs, type FlagSpec } from '../args.js';
import type { CommandModule } from '../context.js';
import { EXIT } from '../context.js';
import { loadConfig } from '../config.js';
import { locateFabricfile } from '../project.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'max-size', type: 'string', value: 'SIZE', description: 'prune: remove least-recently-used entries until the store is at most SIZE (e.g. 500M, 2G)' },
  { name: 'older-than', type: 'string', value: 'DURATION', description: 'prune: remove entries not used for DURATION (e.g. 12h, 7d, 2w)' },
  { name: 'json', type: 'boolean', description: 'print the result as JSON' },
];

const SUBCOMMANDS = ['stats', 'prune', 'clean'] as const;

const command: CommandModule = {
  name: 'cache',
  summary: 'Cache statistics, pruning and cleaning',
  help: () => `Usage: fabric cache stats [--json]
       fabric cache prune [--max-size SIZE] [--older-than DURATION] [--json]
       fabric cache clean

stats   entries, blobs and size of the local content cache (config cacheDir, default .fabric/cache)
prune   removes entries by last use, then every stored file no entry or run record refers to;
        with no flag, only unreferenced files and corrupt entries are removed
clean   removes the whole cache, including the last-run records 'fabric explain' compares with

${flagHelp(FLAGS)}
`,
  async run(ctx, args) {
    const { flags, positionals } = parseArgs(args, FLAGS);
    const sub = positionals[0];
    if (sub === undefined) throw new UsageError('no subcommand given', `use one of: ${SUBCOMMANDS.join(', ')}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      const { nearest } = await import('../../util/suggest.js');
      const near = nearest(sub, SUBCOMMANDS);
      throw new UsageError(`unknown subcommand "cache ${sub}"`, near ? `did you mean 'fabric cache ${near}'?` : `use one of: ${SUBCOMMANDS.join(', ')}`);
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    if (sub !== 'prune' && (flags['max-size'] !== undefined || flags['older-than'] !== undefined)) throw new UsageError(`--max-size and --older-than belong to 'fabric cache prune'`);
    const { parseDuration, parseSize, formatSize } = await import('../../cache/units.js');
    let maxBytes: number | undefined;
    let olderThanMs: number | undefined;
    if (flags['max-size'] !== undefined) {
      maxBytes = parseSize(String(flags['max-size']));
      if (maxBytes === undefined) throw new UsageError(`--max-size needs a size such as 500M or 2G, got "${String(flags['max-size'])}"`);
    }
    if (flags['older-than'] !== undefined) {
      olderThanMs = parseDuration(String(flags['older-than']));
      if (olderThanMs === undefined) throw new UsageError(`--older-than needs a duration such as 12h or 7d, got "${String(flags['older-than'])}"`);
    }
    const repoRoot = dirname(locateFabricfile(ctx));
    const config = await loadConfig(repoRoot);
    const { Store } = await import('../../cache/store.js');
    const store = new Store(config.cacheDir);
    const json = flags['json'] === true;
    const out = (text: string) => ctx.stdout.write(text);
    if (sub === 'stats') {
      const s = await store.stats();
      if (json) out(JSON.stringify(s, null, 2) + '\n');
      else {
        out(`cache: ${s.dir}\n`);
        out(`  entries: ${s.entries}    stored files: ${s.blobs} (${formatSize(s.blobBytes)})    total: ${formatSize(s.totalBytes)}\n`);
        out(`  run records: ${s.runs}    keys: ${s.keys}\n`);
        if (s.oldestUse) out(`  last used: oldest ${s.oldestUse}, newest ${s.newestUse}\n`);
        for (const t of s.byTask.slice(0, 10)) out(`  ${String(t.entries).padStart(6)}  ${t.task}\n`);
        if (s.byTask.length > 10) out(`  (${s.byTask.length - 10} more tasks)\n`);
      }
      return EXIT.ok;
    }
    if (sub === 'prune') {
      const r = await store.prune({ maxBytes, olderThanMs });
      if (json) out(JSON.stringify(r, null, 2) + '\n');
      else out(`pruned ${r.removedEntries} entr${r.removedEntries === 1 ? 'y' : 'ies'}${r.corrupt ? ` (${r.corrupt} corrupt)` : ''}, ${r.removedBlobs} stored file${r.removedBlobs === 1 ? '' : 's'}, ${r.removedKeys} key${r.removedKeys === 1 ? '' : 's'}${r.removedRuns ? `, ${r.removedRuns} run record${r.removedRuns === 1 ? '' : 's'}` : ''}: freed ${formatSize(r.freedBytes)}, ${formatSize(r.remainingBytes)} left\n`);
      return EXIT.ok;
    }
    await store.clean();
    if (json) out(JSON.stringify({ cleaned: config.cacheDir }) + '\n');
    else out(`removed ${config.cacheDir}\n`);
    return EXIT.ok;
  },
};
export default command;
