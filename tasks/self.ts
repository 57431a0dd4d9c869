/**
 * The repo's own read-only validation graph: `npx fabric run validate` on a fresh clone, with no
 * infrastructure. Every node is read-only with declared inputs (so the cache applies) and writes a JSON
 * report under .fabric/validate/ (a declared output, digested into the evidence packet).
 */
import { task } from 'fabric';
import { validateContracts, validateEnvs, validateTasks } from './lib/validate.js';

const SECTION = 'Self-validation (this repo)';

task('validate.contracts', {
  description: 'Check that every JSON Schema in contracts/ is JSON Schema 2020-12 with a unique $id and compiles with ajv (strict)',
  section: SECTION,
  effect: 'read-only',
  tags: ['self'],
  inputs: ['contracts/**/*.json', 'tasks/lib/validate.ts', 'package-lock.json'],
  outputs: ['.fabric/validate/contracts.json'],
  run: validateContracts,
});

task('validate.envs', {
  description: 'Validate every envs/*.yml against contracts/env.schema.json and its cross-references (errors at the YAML line)',
  section: SECTION,
  effect: 'read-only',
  tags: ['self'],
  inputs: ['envs/*.yml', 'contracts/env.schema.json', 'tasks/lib/envs.ts', 'tasks/lib/validate.ts', 'package-lock.json'],
  outputs: ['.fabric/validate/envs.json'],
  run: validateEnvs,
});

task('validate.tasks', {
  description: 'Analyze the task graph: unique names, dependencies resolve, no cycles, every task has a description and an explicit effect',
  section: SECTION,
  effect: 'read-only',
  tags: ['self'],
  inputs: ['fabricfile.ts', 'tasks/**/*.ts', 'lib/engine/analyze.ts', 'lib/api/*.ts', 'tasks/lib/validate.ts'],
  outputs: ['.fabric/validate/tasks.json'],
  run: validateTasks,
});

task('validate', {
  description: "Validate this repo's contracts, environment files and task definitions (read-only, offline)",
  section: SECTION,
  effect: 'read-only',
  tags: ['self'],
  deps: ['validate.contracts', 'validate.envs', 'validate.tasks'],
});
