/**
 * Node built-ins that only some task functions need, loaded on first use. Every `fabric` command
 * imports the catalogue, so a static `import ... from 'node:https'` here would load https, tls, net,
 * http and child_process into `fabric list` too (about a third of its start-up beyond Node's own).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const childProcess = (): typeof import('node:child_process') => require('node:child_process') as typeof import('node:child_process');
export const os = (): typeof import('node:os') => require('node:os') as typeof import('node:os');
export const https = (): typeof import('node:https') => require('node:https') as typeof import('node:https');
export const tls = (): typeof import('node:tls') => require('node:tls') as typeof import('node:tls');
