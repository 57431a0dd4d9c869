/** Confirmations (`CONFIRM=YES`, with an optional interactive prompt) and acknowledgements (`I_UNDERSTAND_*=1`). */
import type { Guard } from './types.js';
import { decision, errorMessage, fill, quoted, readVar, shown, type MessageOptions } from './util.js';

/**
 * Allows when `variable` equals `phrase`. When the variable is unset, fabric is interactive (stdin and
 * stdout are TTYs) and not in CI, the operator is asked to type the phrase (anything else is "no").
 * Otherwise it denies: fail closed. No global flag (there is no `--yes`) satisfies it.
 *
 * allow: `CONFIRM is "YES"`; deny: `confirmation required: re-run with CONFIRM=YES (CONFIRM is not set)`.
 */
export function confirm(variable: string, phrase: string, opts?: MessageOptions): Guard {
  const guard: Guard = {
    kind: 'confirm',
    name: `confirm(${variable}=${phrase})`,
    description: `${variable} must be ${JSON.stringify(phrase)} (or typed at a prompt in an interactive terminal)`,
    async evaluate(facts) {
      const value = readVar(facts, variable);
      const seen: Record<string, unknown> = { [variable]: shown(facts, variable, value), interactive: facts.interactive, ci: facts.ci };
      if (value === phrase) return decision(guard, 'allow', `${variable} is ${JSON.stringify(phrase)}`, seen);
      const remedy = opts?.remedy !== undefined ? fill(opts.remedy, facts, variable, value) : `re-run with ${variable}=${phrase}`;
      const deny = (why: string) =>
        decision(guard, 'deny', opts?.message !== undefined ? fill(opts.message, facts, variable, value) : `confirmation required: re-run with ${variable}=${phrase} (${why})`, seen, remedy);
      if (value !== undefined && value !== '') return deny(`${variable} is ${quoted(facts, variable, value)}`);
      if (facts.interactive && !facts.ci && facts.prompt) {
        seen['prompted'] = true;
        let answer: string;
        try {
          answer = await facts.prompt(`${facts.node}: type ${phrase} to confirm (default: no): `);
        } catch (e) {
          return deny(`the prompt failed: ${errorMessage(e)}`);
        }
        if (answer.trim() === phrase) return decision(guard, 'allow', `confirmed at the prompt by typing ${JSON.stringify(phrase)}`, seen);
        return deny(answer.trim() === '' ? 'declined at the prompt' : `declined at the prompt: typed ${JSON.stringify(answer.trim())}`);
      }
      return deny(`${variable} is not set${facts.ci ? ' and CI mode never prompts' : ' and there is no terminal to ask'}`);
    },
  };
  return guard;
}

/**
 * Requires `variable=1`, e.g. `I_UNDERSTAND_MUTATION=1`.
 * allow: `I_UNDERSTAND_MUTATION=1`; deny: `I_UNDERSTAND_MUTATION=1 is required`.
 */
export function acknowledge(variable: string, opts?: MessageOptions): Guard {
  const guard: Guard = {
    kind: 'acknowledge',
    name: `acknowledge(${variable})`,
    description: `${variable}=1 is required`,
    evaluate(facts) {
      const value = readVar(facts, variable);
      const seen = { [variable]: shown(facts, variable, value) };
      if (value === '1') return decision(guard, 'allow', `${variable}=1`, seen);
      return decision(
        guard,
        'deny',
        opts?.message !== undefined ? fill(opts.message, facts, variable, value) : `${variable}=1 is required`,
        seen,
        opts?.remedy !== undefined ? fill(opts.remedy, facts, variable, value) : `set ${variable}=1 to acknowledge`,
      );
    },
  };
  return guard;
}
