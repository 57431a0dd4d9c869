/** Replaced at build time by scripts/build.mjs (from package.json); the fallback is for tsc-compiled tests. */
declare const __FABRIC_VERSION__: string | undefined;
export const VERSION: string = typeof __FABRIC_VERSION__ === 'string' ? __FABRIC_VERSION__ : '0.0.0-dev';
