/**
 * Builds the facts guards look at, once per run, from capabilities the caller (the CLI) passes in.
 * Guards never read process.env, the terminal or the clock themselves.
 */
import { hostname, userInfo } from 'node:os';
import type { Graph, Node } from '../engine/graph.js';
import { graphDigest } from '../engine/plan.js';
import { isSecretName } from '../util/redact.js';
import type { GuardFacts } from './types.js';

export interface FactsInput {
  readonly graph: Graph;
  /** The environment fabric was started with. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly ci: boolean;
  /** stdin and stdout are TTYs (prompts are possible unless in CI). */
  readonly interactive: boolean;
  /** Defaults to the time the provider is made (one clock reading for the whole evaluation). */
  readonly now?: Date;
  /** `user@host`; defaults to the current user and host name. */
  readonly operator?: string;
  /** The commit, or a function that reads it (called once, when the first node's facts are built). */
  readonly gitCommit?: string | undefined | (() => string | undefined);
  /**
   * Defaults to the digest of the graph's plan (what `fabric plan --json` prints for the same selection);
   * computed, like a function given here, once, when the first node's facts are built.
   */
  readonly planDigest?: string | undefined | (() => string);
  readonly keyrings: { readonly ed25519?: string | undefined; readonly gpgHome?: string | undefined };
  readonly prompt?: ((question: string) => Promise<string>) | undefined;
  /** Variable-name patterns whose values are secret (config `secretPatterns`). */
  readonly secretPatterns?: readonly string[];
}

/** `user@host` of whoever runs fabric. */
export function defaultOperator(env: Readonly<Record<string, string | undefined>> = {}): string {
  let user = env['USER'] ?? env['LOGNAME'];
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `${user}@${hostname()}`;
}

function secretParamNames(node: Node): string[] {
  return Object.entries(node.task.spec.params ?? {})
    .filter(([, p]) => p.secret === true)
    .map(([n]) => n);
}

/** Returns the facts for a node; `vars` = node params > node vars (CLI / dependency edges) > process env. */
export function makeFactsProvider(input: FactsInput): (node: Node) => GuardFacts {
  const now = input.now ?? new Date();
  const operator = input.operator ?? defaultOperator(input.env);
  // Facts about the whole run are worked out on the first call (before the first guard is evaluated):
  // a run whose nodes have no guards asks for no facts, so it reads no git commit and hashes no plan.
  let shared: { gitCommit: string | undefined; planDigest: string; selection: GuardFacts['selection'] } | undefined;
  const sharedFacts = () =>
    (shared ??= {
      gitCommit: typeof input.gitCommit === 'function' ? input.gitCommit() : input.gitCommit,
      planDigest: typeof input.planDigest === 'function' ? input.planDigest() : (input.planDigest ?? graphDigest(input.graph)),
      selection: input.graph.order.map((id) => {
        const n = input.graph.nodes.get(id)!;
        const secretParams = secretParamNames(n);
        return secretParams.length ? { id, task: n.task.name, params: n.params, secretParams } : { id, task: n.task.name, params: n.params };
      }),
    });
  const env = Object.freeze({ ...input.env });
  const interactive = input.interactive && !input.ci;
  return (node) => {
    const { gitCommit, planDigest, selection } = sharedFacts();
    const vars: Record<string, string | undefined> = { ...input.env, ...node.vars, ...node.params };
    const secretNames = new Set(secretParamNames(node));
    if (input.secretPatterns) for (const k of Object.keys(vars)) if (isSecretName(k, input.secretPatterns)) secretNames.add(k);
    return {
      node: node.id,
      task: node.task.name,
      effect: node.effect,
      params: node.params,
      vars: Object.freeze(vars),
      env,
      ci: input.ci,
      interactive,
      now,
      operator,
      repoRoot: input.graph.repoRoot,
      gitCommit,
      planDigest,
      selection,
      keyrings: { ed25519: input.keyrings.ed25519, gpgHome: input.keyrings.gpgHome },
      prompt: interactive ? input.prompt : undefined,
      secretNames: [...secretNames],
      secrets: node.secrets,
    };
  };
}

/**
 * A prompt on the given streams (the CLI passes its stdin/stderr): asks one question, resolves to the
 * line typed; resolves to '' at end of input or when `signal` aborts.
 */
export function linePrompt(input: NodeJS.ReadableStream, output: { write(text: string): unknown }, signal?: AbortSignal): (question: string) => Promise<string> {
  return async (question) => {
    const { createInterface } = await import('node:readline');
    const rl = createInterface({ input, terminal: false });
    output.write(question);
    return new Promise<string>((resolve) => {
      let done = false;
      const finish = (answer: string) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        rl.close();
        resolve(answer);
      };
      const onAbort = () => finish('');
      signal?.addEventListener('abort', onAbort);
      rl.once('line', (line) => finish(line));
      rl.once('close', () => finish(''));
    });
  };
}
