/**
 * The guard library (re-exported by the public `fabric` module). Every constructor returns a `Guard`:
 * pure, facts in, decision out; reading variables from `facts.vars` (node params > CLI/dependency
 * `VAR=value` > process environment). Nothing here loads ajv or yaml until a guard that needs a file runs.
 */
export { paramEquals, paramOneOf, paramNotEquals, paramPattern, paramNonEmpty } from './params.js';
export { confirm, acknowledge } from './confirm.js';
export { override, type OverrideOptions } from './override.js';
export { envAllowlist, type AllowlistOptions, type PolicySource } from './allowlist.js';
export { changeWindow, type WindowOptions } from './window.js';
export { requireVars, requireTools, requireFiles } from './require.js';
export { approval, APPROVAL_VAR, type ApprovalOptions } from './approval.js';
export { ciRefuse, isCiMode } from './ci.js';
export { when, custom, type CustomVerdict } from './compose.js';
export { executeFlag, type ExecuteFlagOptions } from './execute.js';
export type { MessageOptions } from './util.js';
