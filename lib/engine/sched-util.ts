/** Small pure helpers of the scheduler (kept apart so they can be tested as tables). */

/** mulberry32: a tiny seeded PRNG, enough to shuffle ready siblings reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates, in place. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** Exponential backoff: `base`, `2·base`, `4·base`, ... for attempts 1, 2, 3, ... (capped at 5 minutes). */
export function backoffMs(base: number, attempt: number): number {
  return Math.min(Math.max(0, base) * 2 ** Math.max(0, attempt - 1), 300_000);
}

/** Resolves after `ms`, or as soon as `signal` aborts (resolving `false`). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A normalised job count: at least 1; Infinity allowed. */
export function normaliseJobs(jobs: number): number {
  if (jobs === Infinity) return Infinity;
  return Number.isFinite(jobs) && jobs >= 1 ? Math.floor(jobs) : 1;
}
