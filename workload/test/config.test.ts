import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'xianyu-config-'));
const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function cli(...args: string[]) {
  const env = { ...process.env };
  for (const k of ['DATABASE_URL', 'PORT', 'LOG_LEVEL', 'XIANYU_COOKIES', 'AI_API_KEY']) delete env[k];
  return spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', env });
}

const BAD = `
account:
  id: ""
reply:
  keywords:
    - match: ["("]
      mode: regex
      reply: hi
    - match: []
      reply: x
  delay: { minMs: 500, maxMs: 100 }
  ai: { enabled: true }
session:
  riskControlBackoffMs: 1000
server:
  port: 70000
database:
  poolSize: 0
`;

describe('configuration', () => {
  it('check accepts the demo config and the example', () => {
    const r = cli('check', '--config', new URL('../examples/demo.yaml', import.meta.url).pathname);
    // The demo reads its cookies from the environment; the file is absent on purpose.
    assert.equal(r.status, 2);
    assert.match(r.stderr, /account\.cookiesFile: cannot read \.\/cookies\.txt/);
    const ok = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'check',
        '--config',
        new URL('../examples/demo.yaml', import.meta.url).pathname,
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, XIANYU_COOKIES: 'unb=2200000001; cookie2=abc', AI_API_KEY: 'k' },
      },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid \(account demo-seller\)/);
  });

  it('check prints every error with its field path and exits 2; run gives the same message', () => {
    const p = file('bad.yaml', BAD);
    const r = cli('check', '--config', p);
    assert.equal(r.status, 2);
    for (const expected of [
      'account.id: must not be empty',
      'account.cookies: give account.cookies',
      'reply.keywords.0.match.0: invalid regex',
      'reply.keywords.1.match: needs at least one keyword',
      'reply.delay.maxMs: maxMs must be >= minMs',
      'session.riskControlBackoffMs: must be at least 60000',
      'server.port:',
      'database.poolSize:',
    ]) {
      assert.ok(r.stderr.includes(expected), `missing "${expected}" in:\n${r.stderr}`);
    }
    const run = cli('--config', p);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, r.stderr);
  });

  it('usage errors and --help', () => {
    const r = cli();
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--config FILE is required/);
    const h = cli('--help');
    assert.equal(h.status, 0);
    assert.match(h.stdout, /Usage: xianyu-workload/);
  });

  it('secrets are checked: cookie without unb, AI without key, unreadable files, broken YAML', () => {
    const expectProblem = (text: string, re: RegExp) => {
      assert.throws(
        () => loadConfig(file(`c${Math.random()}.yaml`, text), {}),
        (e: unknown) => e instanceof ConfigError && re.test(e.message),
      );
    };
    expectProblem(
      'account: { id: a, cookies: "cookie2=x" }',
      /account\.cookies: the cookie string has no "unb=<digits>"/,
    );
    expectProblem(
      'account: { id: a, cookies: "unb=1" }\nreply: { ai: { enabled: true } }',
      /reply\.ai\.apiKey: AI is enabled/,
    );
    expectProblem(
      'account: { id: a, cookiesFile: /nonexistent/c.txt }',
      /account\.cookiesFile: cannot read .*ENOENT/,
    );
    expectProblem('account: [unclosed', /not valid YAML/);
    expectProblem('- a\n- b', /\(root\): must be a mapping/);
  });

  it('environment overrides endpoints, port, database and secrets; files are read relative to the config', () => {
    writeFileSync(join(dir, 'cookies.txt'), 'unb=42; cookie2=zz\n');
    writeFileSync(join(dir, 'key.txt'), 'sk-file-key\n');
    const p = file(
      'env.yaml',
      'account: { id: a, cookiesFile: cookies.txt }\nreply: { ai: { enabled: true, apiKeyFile: key.txt } }\n',
    );
    const fromFiles = loadConfig(p, {});
    assert.equal(fromFiles.cookies, 'unb=42; cookie2=zz');
    assert.equal(fromFiles.aiApiKey, 'sk-file-key');
    assert.equal(fromFiles.config.dataDir, join(dir, 'data'));
    const env = loadConfig(p, {
      PORT: '9999',
      DATABASE_URL: 'postgres://u@h/db',
      XIANYU_COOKIES: 'unb=7',
      XIANYU_IM_URL: 'ws://127.0.0.1:1/',
      AI_API_KEY: 'sk-env',
      LOG_LEVEL: 'debug',
    });
    assert.equal(env.config.server.port, 9999);
    assert.equal(env.config.database.url, 'postgres://u@h/db');
    assert.equal(env.cookies, 'unb=7');
    assert.equal(env.config.endpoints.im, 'ws://127.0.0.1:1/');
    assert.equal(env.aiApiKey, 'sk-env');
    assert.equal(env.config.log.level, 'debug');
    assert.throws(() => loadConfig(p, { PORT: 'abc' }), /server\.port/);
  });
});
