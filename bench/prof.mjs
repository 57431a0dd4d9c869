// Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by file, plus the idle
// share (time the process spent waiting: for children, the disk, or the CPU it did not get).
// Usage: node bench/prof.mjs FILE.cpuprofile... [--top N] [--inclusive]   (several files: summed)
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const files = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--top');
if (files.length === 0) {
  console.error('usage: node bench/prof.mjs FILE.cpuprofile... [--top N] [--inclusive]');
  process.exit(2);
}
const topIdx = args.indexOf('--top');
const top = topIdx !== -1 ? Number(args[topIdx + 1]) : 25;
// Several profiles are merged by giving each node a file-unique id.
const p = { nodes: [], samples: [], timeDeltas: [] };
files.forEach((f, k) => {
  const one = JSON.parse(readFileSync(f, 'utf8'));
  const id = (x) => k * 1e7 + x;
  for (const n of one.nodes) p.nodes.push({ ...n, id: id(n.id), children: (n.children ?? []).map(id) });
  for (const s of one.samples) p.samples.push(id(s));
  p.timeDeltas.push(...one.timeDeltas);
});
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas;
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + Math.max(0, dt[i] ?? 0));
const total = dt.reduce((a, b) => a + Math.max(0, b), 0);

const shortUrl = (u) => u.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/(dist|lib)\//, '$1/');
const fnKey = (n) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const fileKey = (n) => (n.callFrame.url ? shortUrl(n.callFrame.url) : `(${n.callFrame.functionName || 'native'})`);

function tally(key) {
  const m = new Map();
  for (const [id, t] of self) {
    const k = key(byId.get(id));
    m.set(k, (m.get(k) ?? 0) + t);
  }
  return [...m].sort((a, b) => b[1] - a[1]);
}

// Inclusive time per function (a function counted once per sample even when recursive).
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const incl = new Map();
for (const [id, t] of self) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = fnKey(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}

const ms = (us) => (us / 1000).toFixed(1).padStart(8);
const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
console.log(`profile: ${(total / 1000).toFixed(0)} ms sampled${files.length > 1 ? ` over ${files.length} profiles` : ''}`);
console.log('\nself time by function:');
for (const [k, t] of tally(fnKey).slice(0, top)) console.log(`${ms(t)} ms ${pct(t)}  ${k}`);
console.log('\nself time by file:');
for (const [k, t] of tally(fileKey).slice(0, top)) console.log(`${ms(t)} ms ${pct(t)}  ${k}`);
if (args.includes('--inclusive')) {
  console.log('\ninclusive time by function:');
  for (const [k, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(t)} ms ${pct(t)}  ${k}`);
}
