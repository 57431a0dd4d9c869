/** Git facts for guards (approvals bind to the commit) and evidence (commit and dirty flag). */
import { spawnSync } from 'node:child_process';

export interface GitFacts {
  readonly commit: string | undefined;
  readonly dirty: boolean | undefined;
}

function git(cwd: string, args: readonly string[]): string | undefined {
  const r = spawnSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** HEAD's commit, or undefined outside a git work tree (or before the first commit). */
export function gitCommit(cwd: string): string | undefined {
  return git(cwd, ['rev-parse', '--verify', '-q', 'HEAD']);
}

/** The commit and whether tracked files have uncommitted changes (two git processes). */
export function gitFacts(cwd: string): GitFacts {
  const commit = gitCommit(cwd);
  if (commit === undefined) return { commit: undefined, dirty: undefined };
  const status = git(cwd, ['status', '--porcelain', '--untracked-files=no']);
  return { commit, dirty: status === undefined ? undefined : status.length > 0 };
}
