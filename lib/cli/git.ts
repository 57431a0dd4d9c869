/** Git facts for guards (approvals bind to the commit) and evidence (commit and dirty flag). */
import { spawn, spawnSync } from 'node:child_process';

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

function gitAsync(cwd: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn('git', ['-C', cwd, ...args], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    } catch {
      return resolve(undefined);
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve(code === 0 ? out.trim() : undefined));
  });
}

/**
 * gitFacts without blocking: both git processes start now, side by side, and run while the caller
 * goes on (a run builds its graph and loads its modules meanwhile). In a large repository `git
 * status` alone takes tens of milliseconds; spawnSync held the event loop for all of it.
 */
export async function gitFactsAsync(cwd: string): Promise<GitFacts> {
  const [commit, status] = await Promise.all([gitAsync(cwd, ['rev-parse', '--verify', '-q', 'HEAD']), gitAsync(cwd, ['status', '--porcelain', '--untracked-files=no'])]);
  if (commit === undefined) return { commit: undefined, dirty: undefined };
  return { commit, dirty: status === undefined ? undefined : status.length > 0 };
}
