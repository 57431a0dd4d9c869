import * as assert from 'node:assert/strict';
import { StreamRedactor, redactText, isSecretName, REDACTED } from '../../lib/util/redact.js';
import { timedTest, test } from '../helpers/rig.js';

const stream = (secrets: string[], chunks: string[]) => {
  const r = new StreamRedactor(secrets);
  const out = chunks.map((c) => r.push(c));
  return { out, all: out.join('') + r.end() };
};

const CASES: [string, string[], string[], string][] = [
  ['whole secret in one chunk', ['hunter22'], ['pw=hunter22\n'], `pw=${REDACTED}\n`],
  ['split across two chunks', ['hunter22'], ['pw=hunt', 'er22\n'], `pw=${REDACTED}\n`],
  ['split across three chunks', ['hunter22'], ['h', 'unter', '22 ok'], `${REDACTED} ok`],
  ['a near miss is kept', ['hunter22'], ['hunter2', '3\n'], 'hunter23\n'],
  ['longest secret wins', ['abcd', 'abcdefgh'], ['xabcdefghx'], `x${REDACTED}x`],
  ['two secrets', ['aaaa1', 'bbbb2'], ['aaaa', '1 bbb', 'b2!'], `${REDACTED} ${REDACTED}!`],
];
for (const [title, secrets, chunks, want] of CASES) {
  timedTest(`stream redaction: ${title}`, () => assert.equal(stream(secrets, chunks).all, want));
}

timedTest('only a possible secret prefix is held back: other lines go out at once', () => {
  const { out } = stream(['hunter22'], ['line one\n', 'ends with hun', 'ter22\n']);
  assert.equal(out[0], 'line one\n');
  assert.equal(out[1], 'ends with ');
  assert.equal(out[2], `${REDACTED}\n`);
});

timedTest('short values are never treated as secrets; names match the patterns', () => {
  assert.equal(redactText('a b c', ['b']), 'a b c');
  assert.equal(isSecretName('PM_API_TOKEN_SECRET'), true);
  assert.equal(isSecretName('ENV'), false);
  assert.equal(isSecretName('minio_password', ['PASSWORD']), true);
});

test.run();
