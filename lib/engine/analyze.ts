/**
 * Analysis: task definitions + selection + variables → a resolved, validated Graph, or every problem
 * found (never just the first). Nothing here runs a process or touches the terminal.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Command, DepRef, Effect, ParamCondition, ParamSpec, RunSpec, RunStep, TaskDef } from '../api/types.js';
import type { Diagnostic, Location, Result } from '../diagnostics/types.js';
import { locationAt, narrowToLiteral } from '../diagnostics/location.js';
import { nearest } from '../util/suggest.js';
import { isSecretName, MIN_SECRET_LENGTH, REDACTED, redactText } from '../util/redact.js';
import type { NodeId } from './events.js';
import type { Graph, Node, ResolvedStep } from './graph.js';
import { expand, parseDuration } from './template.js';
import { conditionHolds, conditionText } from './condition.js';

export { conditionHolds, conditionText };

/** The environment every command gets, whatever the task declares (documented in the README). */
export const BASE_ENV: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'SSH_AUTH_SOCK'];

export interface AnalyzeRequest {
  readonly tasks: readonly TaskDef[];
  /** Task names or globs (`minio.*`); empty = no selection (definitions are still validated). */
  readonly targets: readonly string[];
  /** `VAR=value` from the command line. */
  readonly vars: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly repoRoot: string;
  readonly fabricfile: string;
  readonly secretPatterns: readonly string[];
  /** CI mode: every command gets `CI=1`. */
  readonly ci?: boolean;
  /** Memo for computed param defaults, shared by every analysis of one run (computed once per run). */
  readonly defaultsMemo?: Map<() => string, string>;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@/-]*$/;
const EFFECTS: readonly Effect[] = ['read-only', 'mutating'];

/**
 * Where a task is declared. Formatting the call site is the costly part (a source-mapped stack), so
 * callers ask for it only when they have a diagnostic to place: never on the path without errors.
 */
export function taskLocation(def: TaskDef): Location | undefined {
  const site = def.site();
  return site ? locationAt(site.file, site.line, site.column, 4) : undefined;
}

/** `loc` narrowed to a string literal inside the call, or undefined when the declaration site is unknown. */
function narrowed(loc: Location | undefined, literal: string): Location | undefined {
  return loc && narrowToLiteral(loc, literal);
}

const depName = (d: DepRef): string => (typeof d === 'string' ? d : d.task);

/** Checks every definition, selected or not: names, duplicates, deps, params, effects. */
export function validateDefinitions(tasks: readonly TaskDef[]): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const byName = new Map<string, TaskDef>();
  for (const def of tasks) {
    if (typeof def.name !== 'string' || !NAME.test(def.name)) {
      diags.push({ severity: 'error', code: 'invalid-name', message: `Invalid task name ${JSON.stringify(def.name)}: use letters, digits and . _ - : @ /.`, location: taskLocation(def) });
      continue;
    }
    const prev = byName.get(def.name);
    if (prev) {
      const prevLoc = taskLocation(prev);
      diags.push({
        severity: 'error',
        code: 'duplicate-task',
        message: `Task "${def.name}" is defined twice.`,
        location: taskLocation(def),
        related: prevLoc ? [{ message: `"${def.name}" is first defined here.`, location: prevLoc }] : undefined,
      });
      continue;
    }
    byName.set(def.name, def);
  }
  for (const def of tasks) {
    if (byName.get(def.name) !== def) continue;
    const loc = () => taskLocation(def);
    const spec = def.spec;
    if (spec.effect !== undefined && !EFFECTS.includes(spec.effect)) {
      diags.push({ severity: 'error', code: 'invalid-effect', message: `Task "${def.name}" has effect ${JSON.stringify(spec.effect)}; use "read-only" or "mutating".`, location: narrowed(loc(), String(spec.effect)) });
    }
    for (const dep of spec.deps ?? []) {
      const name = depName(dep);
      if (!byName.has(name)) {
        const near = nearest(name, byName.keys());
        const nearLoc = near ? taskLocation(byName.get(near)!) : undefined;
        diags.push({
          severity: 'error',
          code: 'unknown-dependency',
          message: `Task "${def.name}" depends on "${name}", which is not defined.`,
          location: narrowed(loc(), name),
          hint: near ? `did you mean "${near}"?` : undefined,
          related: nearLoc ? [{ message: `A task named "${near}" is defined here.`, location: nearLoc }] : undefined,
        });
      }
      if (typeof dep !== 'string' && dep.when && !(spec.params && dep.when.param in spec.params)) {
        diags.push({ severity: 'error', code: 'unknown-param', message: `Task "${def.name}": the condition on dependency "${name}" reads param "${dep.when.param}", which "${def.name}" does not declare.`, location: narrowed(loc(), dep.when.param) });
      }
    }
    for (const [pname, p] of Object.entries(spec.params ?? {})) {
      if (p.pattern !== undefined) {
        try {
          new RegExp(p.pattern);
        } catch (e) {
          diags.push({ severity: 'error', code: 'invalid-param-spec', message: `Task "${def.name}", param ${pname}: invalid pattern: ${(e as Error).message}`, location: loc() });
        }
      }
      if (typeof p.default === 'string' && (p.enum || p.pattern)) {
        const problem = checkValue(p, p.default);
        if (problem) diags.push({ severity: 'error', code: 'invalid-param-spec', message: `Task "${def.name}", param ${pname}: the default ${JSON.stringify(p.default)} ${problem}.`, location: narrowed(loc(), p.default) });
      }
    }
    if (spec.variants && !(spec.params && spec.variants.param in spec.params)) {
      diags.push({ severity: 'error', code: 'unknown-param', message: `Task "${def.name}": its variants are selected by param "${spec.variants.param}", which it does not declare.`, location: loc() });
    }
    if (spec.variants && !(spec.variants.fallback in spec.variants.cases)) {
      diags.push({ severity: 'error', code: 'invalid-variants', message: `Task "${def.name}": variant fallback "${spec.variants.fallback}" is not one of its cases (${Object.keys(spec.variants.cases).join(', ')}).`, location: loc() });
    }
    if (spec.timeout !== undefined && parseDuration(spec.timeout) === undefined) {
      diags.push({ severity: 'error', code: 'invalid-timeout', message: `Task "${def.name}": invalid timeout ${JSON.stringify(spec.timeout)} (use milliseconds or "90s", "5m", "1h").`, location: loc() });
    }
    if (spec.retries !== undefined && (!Number.isInteger(spec.retries) || spec.retries < 0)) {
      diags.push({ severity: 'error', code: 'invalid-retries', message: `Task "${def.name}": retries must be a whole number ≥ 0, got ${JSON.stringify(spec.retries)}.`, location: loc() });
    }
  }
  return diags;
}

function checkValue(p: ParamSpec, v: string): string | undefined {
  if (p.enum && !p.enum.includes(v)) return `is not one of ${p.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  if (p.pattern !== undefined && !new RegExp(`^(?:${p.pattern})$`).test(v)) return `does not match /${p.pattern}/`;
  return undefined;
}

/** `minio.*` style globs over task names: `*` matches any run of characters. */
export function matchTargets(pattern: string, names: readonly string[]): string[] {
  if (!pattern.includes('*') && !pattern.includes('?')) return names.includes(pattern) ? [pattern] : [];
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return names.filter((n) => re.test(n));
}

interface Pending {
  def: TaskDef;
  explicit: Record<string, string>;
  /**
   * Where the explicit values came from, for diagnostics: the dependency edge that set them, or
   * undefined when they came from the command line (or the edge's declaration site is unknown: then
   * they are reported as command-line values). A function, called only when a diagnostic needs it.
   */
  origin: () => Location | undefined;
  via: string;
}

/**
 * The secrets of a whole run (each at least MIN_SECRET_LENGTH long): every value some node must not
 * show, with one expression that tells whether a text holds any of them.
 */
interface RunSecrets {
  readonly values: readonly string[];
  readonly pattern: RegExp;
}

function runSecretsOf(values: Iterable<string>): RunSecrets | undefined {
  const list = [...new Set(values)].filter((v) => v.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  if (list.length === 0) return undefined;
  return { values: list, pattern: new RegExp(list.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')) };
}

/** The run's secrets that `values` hold and `own` does not list (one pattern test per value). */
function foreignSecrets(run: RunSecrets, values: Iterable<string | undefined>, own: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (!v || own.includes(v) || !run.pattern.test(v)) continue;
    for (const s of run.values) if (v.includes(s) && !own.includes(s) && !out.includes(s)) out.push(s);
  }
  return out;
}

/** The values of a node's params, variables and declared env vars: where another node's secret can reach it. */
function* passedValues(params: Readonly<Record<string, string>>, vars: Readonly<Record<string, string>>, env: Readonly<Record<string, string | undefined>>, envNames: readonly string[]): Generator<string | undefined> {
  for (const k in params) yield params[k];
  for (const k in vars) yield vars[k];
  for (const n of envNames) yield env[n];
}

/**
 * What the first pass of an analysis leaves the second: the environment snapshots it read, so that the
 * second reads the same ones at the same points (a computed default may set a variable, and it runs
 * only once: see AnalyzeRequest.defaultsMemo).
 */
interface EnvTimeline {
  initial: Record<string, string | undefined> | undefined;
  readonly after: Map<() => string, Record<string, string | undefined>>;
}

export function analyze(req: AnalyzeRequest): Result<Graph> {
  const memo = req.defaultsMemo ?? new Map<() => string, string>();
  const timeline: EnvTimeline = { initial: undefined, after: new Map() };
  // Every secret value met, failed nodes included: a diagnostic shows none of them.
  const met = new Set<string>();
  const first = analyzeOnce(req, memo, timeline, undefined, met);
  const run = runSecretsOf(met);
  if (!first.ok) return run ? { ok: false, error: redactDiagnostics(first.error, run.values) } : first;
  if (!run) return first;
  // A node knows its own secrets. A value that is secret only for another node of the run (a
  // dependency's secret param fed from this node's plain param or variable, a secret env var this
  // node does not declare) would still show in this node's id, command displays, output and cache
  // key: then the graph is analyzed again, and every node whose params, variables or declared env
  // hold a secret of the run takes it as its own. The second pass reads the same environment and
  // defaults, so it finds the same params and secrets.
  const again = [...first.value.nodes.values()].some((n) => run.pattern.test(n.id) || foreignSecrets(run, passedValues(n.params, n.vars, n.env, n.envNames), n.secrets).length > 0);
  if (!again) return first;
  const second = analyzeOnce(req, memo, timeline, run, new Set());
  return second.ok ? second : { ok: false, error: redactDiagnostics(second.error, run.values) };
}

function redactDiagnostics(diags: readonly Diagnostic[], secrets: readonly string[]): Diagnostic[] {
  return diags.map((d) => ({
    ...d,
    message: redactText(d.message, secrets),
    ...(d.hint !== undefined ? { hint: redactText(d.hint, secrets) } : {}),
    ...(d.related ? { related: d.related.map((r) => ({ ...r, message: redactText(r.message, secrets) })) } : {}),
  }));
}

function analyzeOnce(req: AnalyzeRequest, memo: Map<() => string, string>, timeline: EnvTimeline, run: RunSecrets | undefined, met: Set<string>): Result<Graph> {
  const diags = validateDefinitions(req.tasks);
  if (diags.some((d) => d.severity === 'error')) return { ok: false, error: diags };
  const byName = new Map(req.tasks.map((t) => [t.name, t] as const));
  const names = req.tasks.map((t) => t.name);

  const selected: TaskDef[] = [];
  const selectedSet = new Set<TaskDef>();
  for (const t of req.targets) {
    const matched = matchTargets(t, names);
    if (matched.length === 0) {
      const near = nearest(t, names);
      diags.push({ severity: 'error', code: 'unknown-task', message: `No task named "${t}".`, hint: near ? `did you mean "${near}"?` : `run 'fabric list' to see the tasks` });
    }
    for (const m of matched) {
      const def = byName.get(m)!;
      if (!selectedSet.has(def)) {
        selectedSet.add(def);
        selected.push(def);
      }
    }
  }
  if (diags.length) return { ok: false, error: diags };

  const nodes = new Map<NodeId, Node>();
  const keyToId = new Map<string, NodeId>();
  const order: NodeId[] = [];
  const targets: NodeId[] = [];
  const targetSet = new Set<NodeId>();
  const onStack: string[] = [];
  const stackIds: string[] = [];
  const failedKeys = new Set<string>();
  const idOwner = new Map<NodeId, string>();
  const nextNumber = new Map<NodeId, number>();

  // The CLI passes process.env, whose every read is a getenv() call (12+ per node): analysis reads a
  // copy, taken again after a computed default runs (user code that might set a variable).
  // A second pass reads the snapshots the first took, at the same points.
  const snapshot = (): Record<string, string | undefined> => ({ ...req.env });
  let current: AnalyzeRequest = { ...req, env: (timeline.initial ??= snapshot()) };
  const used = new Set<() => string>();
  const resolveDefault = (p: ParamSpec): string | undefined => {
    if (typeof p.default === 'function') {
      const fn = p.default;
      let v = memo.get(fn);
      if (v === undefined) {
        v = String(fn());
        memo.set(fn, v);
        const env = snapshot();
        timeline.after.set(fn, env);
        current = { ...req, env };
      } else if (!used.has(fn)) {
        const env = timeline.after.get(fn);
        if (env) current = { ...req, env };
      }
      used.add(fn);
      return v;
    }
    return p.default;
  };

  const visit = (pending: Pending): NodeId | undefined => {
    const { def, explicit } = pending;
    const spec = def.spec;
    const loc = () => taskLocation(def);
    // Params: explicit (CLI / dependency edge) > environment > default.
    const params: Record<string, string> = {};
    const defaults: Record<string, string | undefined> = {};
    let bad = false;
    for (const [pname, p] of Object.entries(spec.params ?? {})) {
      const dflt = resolveDefault(p);
      defaults[pname] = dflt;
      let value: string | undefined;
      let source: 'explicit' | 'env' | 'default' = 'default';
      if (explicit[pname] !== undefined) {
        value = explicit[pname];
        source = 'explicit';
      } else if (p.fromEnv !== false && current.env[pname] !== undefined) {
        value = current.env[pname];
        source = 'env';
      } else value = dflt;
      if (value === undefined || (p.required && value === '')) {
        bad = true;
        diags.push({
          severity: 'error',
          code: 'missing-param',
          message: `Task "${def.name}" needs ${pname}${p.description ? ` (${p.description})` : ''}: pass ${pname}=<value>${p.enum ? ` (one of ${p.enum.join(', ')})` : ''}.`,
          location: loc(),
        });
        continue;
      }
      const problem = checkValue(p, value);
      if (problem) {
        bad = true;
        const origin = source === 'explicit' ? pending.origin() : undefined;
        const from = source === 'env' ? 'from the environment' : source === 'default' ? 'as default' : origin ? `from the dependency edge ${pending.via}` : 'on the command line';
        const shown = p.secret || isSecretName(pname, current.secretPatterns) ? REDACTED : JSON.stringify(value);
        const here = loc();
        diags.push({
          severity: 'error',
          code: 'invalid-param',
          message: `Task "${def.name}": ${pname}=${shown} (${from}) ${problem}.`,
          location: origin ?? narrowed(here, pname),
          related: origin && here ? [{ message: `"${def.name}" declares ${pname} here.`, location: narrowToLiteral(here, pname) }] : undefined,
          hint: p.enum ? `allowed: ${p.enum.join(', ')}` : undefined,
        });
        continue;
      }
      params[pname] = value;
    }
    const pnames = Object.keys(params).sort();
    const key = `${def.name}\u0000${JSON.stringify(pnames.map((k) => [k, params[k]]))}`;
    const secretsHere = () => {
      const own = secretValuesOf(spec, params, explicit, current.env, current.secretPatterns);
      for (const v of own) met.add(v);
      return own;
    };
    if (bad) {
      secretsHere();
      return undefined;
    }
    const known = keyToId.get(key);
    if (known !== undefined) return known;
    if (failedKeys.has(key)) return undefined;
    const own = secretsHere();
    // Secret values never appear in ids (not even hashed): a secret param, and a plain param whose
    // value holds one of the node's secrets (e.g. the value of a secret env var it declares), show as
    // <secret>; nodes that differ only in a secret are numbered.
    const hidden = (v: string) => own.some((s) => s.length >= MIN_SECRET_LENGTH && v.includes(s)) || (run !== undefined && run.pattern.test(v));
    const display = pnames
      .filter((k) => params[k] !== defaults[k])
      .map((k) => `${k}=${spec.params?.[k]?.secret || hidden(params[k]!) ? '<secret>' : params[k]}`);
    const base: NodeId = display.length ? `${def.name}[${display.join(',')}]` : def.name;
    let id = base;
    if (idOwner.has(id) && idOwner.get(id) !== key) {
      // Numbered from where the last node with this base stopped (N nodes that differ only in a
      // secret would otherwise try 2..N each).
      let n = nextNumber.get(base) ?? 2;
      while (idOwner.has(`${base}#${n}`) && idOwner.get(`${base}#${n}`) !== key) n++;
      id = `${base}#${n}`;
      nextNumber.set(base, n + 1);
    }
    idOwner.set(id, key);
    const cyc = onStack.indexOf(key);
    if (cyc !== -1) {
      const path = [...stackIds.slice(cyc), id];
      diags.push({
        severity: 'error',
        code: 'cycle',
        message: `Dependency cycle: ${path.join(' -> ')}`,
        location: loc(),
        related: stackIds.slice(cyc).flatMap((sid) => {
          const d = byName.get(sid.replace(/\[.*$/, ''));
          const l = d && taskLocation(d);
          return l ? [{ message: `"${sid}" is declared here.`, location: l }] : [];
        }),
      });
      return undefined;
    }
    // Variables this node passes on (Make's command-line vars propagate to sub-makes).
    const vars: Record<string, string> = { ...explicit };
    const lookup = (n: string): string | undefined => params[n] ?? vars[n];

    onStack.push(key);
    stackIds.push(id);
    // A task may list many dependencies (an aggregate of 1000 tasks): a set keeps `deps` free of repeats in O(1).
    const deps: NodeId[] = [];
    const depSet = new Set<NodeId>();
    const skippedDeps: { task: string; condition: string }[] = [];
    let depFailed = false;
    for (const dep of spec.deps ?? []) {
      const dname = depName(dep);
      const ddef = byName.get(dname)!;
      const childExplicit: Record<string, string> = { ...vars };
      let origin = pending.origin;
      if (typeof dep !== 'string') {
        if (dep.when && !conditionHolds(dep.when, params[dep.when.param])) {
          skippedDeps.push({ task: dname, condition: conditionText(dep.when) });
          continue;
        }
        if (dep.params) {
          origin = () => narrowed(loc(), dname);
          for (const [k, v] of Object.entries(dep.params)) {
            const r = expand(v, lookup);
            if (r.missing.length) {
              diags.push({ severity: 'error', code: 'unknown-template', message: `Task "${def.name}": dependency "${dname}" param ${k} uses {{${r.missing[0]}}}, which is neither a param of "${def.name}" nor a given variable.`, location: origin() });
              depFailed = true;
            }
            childExplicit[k] = r.text;
          }
        }
      }
      const childId = visit({ def: ddef, explicit: childExplicit, origin, via: `${id} -> ${dname}` });
      if (childId === undefined) depFailed = true;
      else if (!depSet.has(childId)) {
        depSet.add(childId);
        deps.push(childId);
      }
    }
    onStack.pop();
    stackIds.pop();
    if (depFailed) {
      failedKeys.add(key);
      return undefined;
    }

    const node = buildNode(current, def, id, params, vars, deps, skippedDeps, lookup, diags, own, run);
    if (!node) {
      failedKeys.add(key);
      return undefined;
    }
    nodes.set(id, node);
    keyToId.set(key, id);
    order.push(id);
    return id;
  };

  for (const def of selected) {
    const id = visit({ def, explicit: { ...req.vars }, origin: () => undefined, via: 'command line' });
    if (id !== undefined && !targetSet.has(id)) {
      targetSet.add(id);
      targets.push(id);
    }
  }
  if (diags.some((d) => d.severity === 'error')) return { ok: false, error: dedupe(diags) };
  return { ok: true, value: { repoRoot: req.repoRoot, fabricfile: req.fabricfile, nodes, targets, order } };
}

function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const k = `${d.code}|${d.message}|${d.location?.file}:${d.location?.offset}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * `run` as steps. A top-level array is a list of steps (like a Makefile recipe's lines): a string element
 * is a shell command, an array element is an argv. A lone argv is written `{ cmd: [...] }` or `[[...]]`.
 */
function runSteps(spec: RunSpec | undefined): RunStep[] {
  if (spec === undefined) return [];
  if (Array.isArray(spec)) return [...(spec as readonly RunStep[])];
  return [spec as RunStep];
}

/** The run, effect and variant a task has with these params (a variant case replaces the first two). */
function selectedRun(spec: TaskDef['spec'], params: Readonly<Record<string, string>>): { run: RunSpec | undefined; effect: Effect; variant: string | undefined } {
  let effect: Effect = spec.effect ?? 'mutating';
  let run: RunSpec | undefined = spec.run;
  let variant: string | undefined;
  if (spec.variants) {
    const v = params[spec.variants.param];
    const caseName = v !== undefined && v in spec.variants.cases ? v : spec.variants.fallback;
    const c = spec.variants.cases[caseName]!;
    variant = c.description ? `${caseName}: ${c.description}` : caseName;
    if (c.run !== undefined) run = c.run;
    if (c.effect !== undefined) effect = c.effect;
  }
  return { run, effect, variant };
}

/**
 * The values a node must never show (`Node.secrets`, before any a task function registers at run
 * time): its secret params, its params and declared env vars with secret names, and its steps' env
 * vars with secret names, as templated. Known before the node's id is chosen, so that the id does
 * not show them either.
 */
function secretValuesOf(
  spec: TaskDef['spec'],
  params: Readonly<Record<string, string>>,
  vars: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  patterns: readonly string[],
): string[] {
  const out = new Set<string>();
  for (const [n, p] of Object.entries(spec.params ?? {})) if (p.secret && params[n]) out.add(params[n]!);
  for (const n of spec.env ?? []) {
    // As buildNode passes them: a `VAR=value` given on the CLI or along an edge wins over the environment.
    const v = vars[n] ?? env[n];
    if (v && isSecretName(n, patterns)) out.add(v);
  }
  for (const [k, v] of Object.entries(params)) if (v && isSecretName(k, patterns)) out.add(v);
  const lookup = (n: string): string | undefined => params[n] ?? vars[n];
  for (const step of runSteps(selectedRun(spec, params).run)) {
    if (typeof step !== 'object' || Array.isArray(step) || step === null) continue;
    for (const [k, v] of Object.entries((step as { env?: Record<string, string> }).env ?? {})) {
      if (!isSecretName(k, patterns)) continue;
      const t = expand(v, lookup).text;
      if (t) out.add(t);
    }
  }
  return [...out];
}

function buildNode(
  req: AnalyzeRequest,
  def: TaskDef,
  id: NodeId,
  params: Record<string, string>,
  vars: Record<string, string>,
  deps: NodeId[],
  skippedDeps: { task: string; condition: string }[],
  lookup: (n: string) => string | undefined,
  diags: Diagnostic[],
  own: readonly string[],
  runSecrets: RunSecrets | undefined,
): Node | undefined {
  const spec = def.spec;
  let problems = 0;
  const tmpl = (text: string, what: string, quote = false): string => {
    const r = expand(text, lookup, quote);
    if (r.missing.length) {
      problems++;
      diags.push({
        severity: 'error',
        code: 'unknown-template',
        message: `Task "${def.name}": ${what} uses {{${r.missing[0]}}}, which is not a param of the task (declare it in params).`,
        location: narrowed(taskLocation(def), text),
      });
    }
    return r.text;
  };

  const { run, effect, variant } = selectedRun(spec, params);
  const secrets = [...own];
  const envNames = [...(spec.env ?? [])];
  const env: Record<string, string> = {};
  for (const n of BASE_ENV) if (req.env[n] !== undefined) env[n] = req.env[n]!;
  for (const n of envNames) {
    // As make exports command-line variables to recipes: a `VAR=value` given on the CLI or along a
    // dependency edge wins over the process environment for a declared passthrough name.
    const v = vars[n] ?? req.env[n];
    if (v !== undefined) env[n] = v;
  }
  for (const [k, v] of Object.entries(params)) env[k] = v;
  // A secret of another node of the run that this node's params, variables or declared env hold is this node's too.
  if (runSecrets) secrets.push(...foreignSecrets(runSecrets, passedValues(params, vars, env, envNames), secrets));
  // In CI mode the scripts are told so with one canonical value, whatever spelling started fabric's CI mode.
  if (req.ci) env['CI'] = '1';
  env['FABRIC_NODE'] = id;
  env['FABRIC_TASK'] = def.name;

  const steps: ResolvedStep[] = [];
  for (const step of runSteps(run)) {
    if (typeof step === 'function') {
      steps.push({ kind: 'function', fn: step, display: `<function ${step.name || 'anonymous'}>`, source: step.toString() });
      continue;
    }
    const cs = typeof step === 'string' || Array.isArray(step) ? { cmd: step as Command } : (step as Exclude<RunStep, string | readonly string[] | ((...a: never[]) => unknown)>);
    const stepEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(cs.env ?? {})) {
      stepEnv[k] = tmpl(v, `env ${k}`);
    }
    let cmd: Command;
    let display: string;
    if (typeof cs.cmd === 'string') {
      cmd = tmpl(cs.cmd, 'command', true);
      display = cmd;
    } else {
      const argv = (cs.cmd as readonly string[]).map((a) => tmpl(a, 'command'));
      cmd = argv;
      display = argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
    }
    const envPrefix = Object.entries(stepEnv)
      .map(([k, v]) => `${k}=${v === '' ? "''" : /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`}`)
      .join(' ');
    const secretEnvFiles = (cs.secretEnvFiles ?? []).map((f) => tmpl(f, 'secret env file'));
    steps.push({ kind: 'command', cmd, display: (envPrefix ? envPrefix + ' ' : '') + display, env: stepEnv, okCodes: cs.okCodes ?? [], ignoreFailure: cs.ignoreFailure ?? false, secretEnvFiles });
  }
  // Displays are redacted once every secret of the node is known.
  const redactedSteps = steps.map((s) => (s.kind === 'command' ? { ...s, display: redactText(s.display, secrets) } : s));

  const cwdRaw = spec.cwd !== undefined ? tmpl(spec.cwd, 'cwd') : '.';
  const cwd = isAbsolute(cwdRaw) ? cwdRaw : resolve(req.repoRoot, cwdRaw);
  const timeoutMs = spec.timeout === undefined ? undefined : parseDuration(spec.timeout);
  const inputs = (spec.inputs ?? []).map((g) => tmpl(g, 'input glob'));
  const outputs = (spec.outputs ?? []).map((g) => tmpl(g, 'output glob'));
  const mutex = (spec.mutex === undefined ? [] : typeof spec.mutex === 'string' ? [spec.mutex] : [...spec.mutex]).map((m) => tmpl(m, 'mutex'));
  const cacheable = spec.cache === true || (spec.cache !== false && effect === 'read-only' && inputs.length > 0);
  if (problems) return undefined;
  return {
    id,
    task: def,
    params,
    vars,
    effect,
    deps,
    skippedDeps,
    steps: redactedSteps,
    cwd,
    env,
    envNames,
    secrets: [...new Set(secrets.filter((s) => s.length > 0))],
    secretPatterns: req.secretPatterns,
    timeoutMs,
    retries: spec.retries ?? 0,
    retryDelayMs: spec.retryDelay ?? 250,
    mutex,
    tags: [...(spec.tags ?? [])],
    inputs,
    outputs,
    cacheable,
    guards: [...(spec.guards ?? [])],
    ci: spec.ci,
    variant,
    gate: spec.gate ? { description: spec.gate.description, warnCode: spec.gate.warnCode ?? 2, allowWarnVar: spec.gate.allowWarnVar } : undefined,
  };
}
