/**
 * Coarsest file timestamp granularity allowed for (FAT: 2 s; ext3/HFS+: 1 s). A file modified within
 * this window before its stat was recorded may change again within the same timestamp tick without
 * its stat changing (git's "racy clean" problem): such a stat proves nothing, and the content is
 * hashed. The stat cache and the fabricfile build's warm start both follow this rule.
 */
export const RACY_WINDOW_MS = 2000;
