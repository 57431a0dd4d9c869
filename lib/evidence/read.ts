/** Reading packets back: the run list (`fabric evidence ls`) and finding one run by id, prefix or `latest`. */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INCOMPLETE_MARKER, NODE_MANIFEST_FILE, NODES_DIR, RUN_FILE, SIGNATURES_DIR } from './constants.js';
import { listSignatureFiles } from './sign-packet.js';
import type { NodeManifest, RunRecord } from './types.js';

export interface RunSummary {
  readonly runId: string;
  readonly dir: string;
  /** Undefined when run.json is missing or unreadable. */
  readonly run: RunRecord | undefined;
  readonly error: string | undefined;
  readonly signatures: number;
  readonly incomplete: boolean;
}

export async function readRun(dir: string): Promise<RunRecord> {
  return JSON.parse(await readFile(join(dir, RUN_FILE), 'utf8')) as RunRecord;
}

export async function summarize(dir: string, runId: string): Promise<RunSummary> {
  let run: RunRecord | undefined;
  let error: string | undefined;
  try {
    run = await readRun(dir);
  } catch (e) {
    error = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no run.json' : `unreadable run.json: ${e instanceof Error ? e.message : String(e)}`;
  }
  return {
    runId,
    dir,
    run,
    error,
    signatures: (await listSignatureFiles(dir)).length,
    incomplete: existsSync(join(dir, SIGNATURES_DIR, INCOMPLETE_MARKER)),
  };
}

/** Every packet directory under the evidence root, oldest first (by start time, then id). */
export async function listRuns(evidenceDir: string): Promise<RunSummary[]> {
  let names: string[];
  try {
    names = (await readdir(evidenceDir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
  const out = await Promise.all(names.map((n) => summarize(join(evidenceDir, n), n)));
  return out
    .filter((s) => s.run !== undefined || existsSync(join(s.dir, NODES_DIR)) || s.error !== 'no run.json')
    .sort((a, b) => (a.run?.startedOn ?? '').localeCompare(b.run?.startedOn ?? '') || a.runId.localeCompare(b.runId));
}

/** A run by exact id, `latest`, or a unique prefix of its id. */
export async function findRun(evidenceDir: string, ref: string): Promise<{ dir: string } | { error: string; candidates: string[] }> {
  const runs = await listRuns(evidenceDir);
  if (runs.length === 0) return { error: `no evidence packets in ${evidenceDir}`, candidates: [] };
  if (ref === 'latest') return { dir: runs[runs.length - 1]!.dir };
  const exact = runs.find((r) => r.runId === ref);
  if (exact) return { dir: exact.dir };
  const pre = runs.filter((r) => r.runId.startsWith(ref));
  if (pre.length === 1) return { dir: pre[0]!.dir };
  if (pre.length > 1) return { error: `"${ref}" matches ${pre.length} runs`, candidates: pre.map((r) => r.runId) };
  return { error: `no run "${ref}" in ${evidenceDir}`, candidates: runs.slice(-5).map((r) => r.runId) };
}

export async function readNodeManifest(packetDir: string, safeId: string): Promise<NodeManifest> {
  return JSON.parse(await readFile(join(packetDir, NODES_DIR, safeId, NODE_MANIFEST_FILE), 'utf8')) as NodeManifest;
}
