/** Git facts for guards (approvals bind to the commit) and evidence (commit and dirty flag). */
import { spawnSync } from 'node:child_process';

/** How long a git call may take before it is given up (killed). */
export const GIT_TIMEOUT_MS = 10_000;

export interface GitFacts {
  readonly commit: string | undefined;
  readonly dirty: boolean | undefined;
}

/** HEAD's commit (fails outside a work tree and before the first commit). */
const COMMIT_ARGS = ['rev-parse', '--verify', '-q', 'HEAD'] as const;
/** Changes to tracked files, one line each (none: clean). */
const STATUS_ARGS = ['status', '--porcelain', '--untracked-files=no'] as const;

/** The facts from the two commands' output (undefined: the command failed). */
function factsOf(commit: string | undefined, status: string | undefined): GitFacts {
  if (commit === undefined) return { commit: undefined, dirty: undefined };
  return { commit, dirty: status === undefined ? undefined : status.length > 0 };
}

function git(cwd: string, args: readonly string[]): string | undefined {
  const r = spawnSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: GIT_TIMEOUT_MS });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** HEAD's commit, or undefined outside a git work tree (or before the first commit). */
export function gitCommit(cwd: string): string | undefined {
  return git(cwd, COMMIT_ARGS);
}

/** The commit and whether tracked files have uncommitted changes (two git processes). */
export function gitFacts(cwd: string): GitFacts {
  const commit = gitCommit(cwd);
  return factsOf(commit, commit === undefined ? undefined : git(cwd, STATUS_ARGS));
}

/** Runs `git <args>` and gives its trimmed stdout, or undefined if it failed or could not start. */
export type GitRunner = (args: readonly string[]) => Promise<string | undefined>;

/**
 * gitFacts without blocking: both git processes start now, side by side, through `git` (the run
 * command's goes through the fork server), and run while the caller goes on (a run builds its graph
 * and loads its modules meanwhile). In a large repository `git status` alone takes tens of
 * milliseconds; spawnSync held the event loop for all of it.
 */
export async function gitFactsAsync(git: GitRunner): Promise<GitFacts> {
  const [commit, status] = await Promise.all([git(COMMIT_ARGS), git(STATUS_ARGS)]);
  return factsOf(commit, status);
}
