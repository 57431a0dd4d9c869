import * as assert from 'node:assert/strict';
import { StreamRedactor, envFileSecrets, redactText, isSecretName, REDACTED } from '../../lib/util/redact.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

// An env file as runner env files are written, and what `set -a; . FILE` gives each variable.
const ENV_FILE = [
  '# runner env',
  'PM_API_URL=https://pve.example:8006/api2/json',
  'PM_API_TOKEN_SECRET=plain-secret-1',
  'export VAULT_TOKEN=exported-secret-2',
  "DB_PASSWORD='single quoted secret 3'",
  'AWS_SECRET_ACCESS_KEY="double-quoted-secret-4"   # trailing comment',
  '  MINIO_ROOT_PASSWORD=indented-secret-5',
  'TF_VAR_pm_api_token_secret=windows-secret-6\r',
  'EXPANDED_TOKEN="$HOME/token-7"',
  'SUBST_SECRET=$(cat /dev/null)',
  'ESCAPED_PASSWORD="a\\"b"',
  'EMPTY_TOKEN=',
  'HASH_SECRET=abc#def-secret-8   # a comment after a blank',
  "JOINED_TOKEN='abc'#tail",
  'SEMI_TOKEN=value-9;',
  'TWO_TOKEN=first-10 SECOND=x',
  'TILDE_TOKEN=~/token-11',
  'RUNNER_MODE=ci',
  'notanassignment PASSWORD=x',
].join('\n');

timedTest('env file secrets: the values of secret-named variables that can be read without running the file', () => {
  assert.deepEqual(envFileSecrets(ENV_FILE), ['plain-secret-1', 'exported-secret-2', 'single quoted secret 3', 'double-quoted-secret-4', 'indented-secret-5', 'windows-secret-6', 'abc#def-secret-8']);
  assert.deepEqual(envFileSecrets(ENV_FILE, ['URL']), ['https://pve.example:8006/api2/json']);
  assert.deepEqual(envFileSecrets(''), []);
});

timedTest('env file secrets: each learned value is the value bash gives the variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fabric-envfile-'));
  try {
    const file = join(dir, 'runner.env');
    writeFileSync(file, ENV_FILE);
    const names = ['PM_API_TOKEN_SECRET', 'VAULT_TOKEN', 'DB_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'MINIO_ROOT_PASSWORD', 'HASH_SECRET'];
    const r = spawnSync('bash', ['-c', `set -a; . ${JSON.stringify(file)} 2>/dev/null; printf '%s\\n' ${names.map((n) => `"$${n}"`).join(' ')}`], { encoding: 'utf8' });
    const learned = envFileSecrets(ENV_FILE);
    assert.deepEqual(r.stdout.split('\n').slice(0, names.length), [...learned.slice(0, 5), learned[6]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
