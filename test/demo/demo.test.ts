import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

// `make demo` must keep working: both scripts run here exactly as the Makefile runs them.

async function run(
  script: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(script, import.meta.url).pathname], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out };
}

test('the demo conversation passes every check', { timeout: 180_000 }, async () => {
  const { code, out } = await run('./run.ts');
  assert.equal(code, 0, out);
  assert.match(out, /checks: \d+ passed, 0 failed/);
});

test('the Kubernetes part of the demo reconciles an account and reports Connected', {
  timeout: 300_000,
}, async () => {
  const { code, out } = await run('./cluster.ts');
  assert.equal(code, 0, out);
  assert.match(out, /\n\s+shop\s+Running\s+True\s+True\s+True\s+/);
});
