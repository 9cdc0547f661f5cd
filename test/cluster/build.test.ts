// build.sh: binaries are cached outside the clone under a key that follows the pinned versions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, constants, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CLUSTER_START_TIMEOUT_MS } from './harness.js';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'helm',
  'kubeconform',
];

async function buildSh(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const started = Date.now();
  const { stdout, stderr } = await run('bash', [script, ...args], {
    env: { ...process.env, ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return { dir: stdout.trim(), stderr, ms: Date.now() - started };
}

test('the cache key follows the pinned versions and the Go version, not the clone', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'build-key-'));
  try {
    // A copy of the files the key is made from, as a second clone would have them.
    const clone = join(tmp, 'clone');
    await mkdir(join(clone, 'go'), { recursive: true });
    for (const f of ['build.sh', 'versions.env', 'go/go.sum']) await copyFile(join(HERE, f), join(clone, f));
    const env = { XIANYU_K8S_CACHE: join(tmp, 'cache'), XIANYU_K8S_BIN: '' };
    const here = await buildSh(join(HERE, 'build.sh'), ['--print-dir'], env);
    const copy = await buildSh(join(clone, 'build.sh'), ['--print-dir'], env);
    assert.equal(copy.dir, here.dir, 'same versions, same folder');
    assert.ok(here.dir.startsWith(join(tmp, 'cache')));
    const versions = await readFile(join(clone, 'versions.env'), 'utf8');
    await writeFile(
      join(clone, 'versions.env'),
      versions.replace(/^HELM_VERSION=.*$/m, 'HELM_VERSION=v3.0.0'),
    );
    const bumped = await buildSh(join(clone, 'build.sh'), ['--print-dir'], env);
    assert.notEqual(bumped.dir, here.dir, 'a version bump builds into a new folder');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('a warm build reuses every cached binary', { timeout: CLUSTER_START_TIMEOUT_MS }, async () => {
  const script = join(HERE, 'build.sh');
  const env = { XIANYU_K8S_BIN: '' };
  await buildSh(script, [], env); // cold on a fresh machine; `make test` has run it already
  const warm = await buildSh(script, [], env);
  assert.doesNotMatch(warm.stderr, /building/, 'nothing is rebuilt');
  assert.ok(warm.ms < 10_000, `warm check took ${warm.ms} ms`);
  for (const bin of BINARIES) await access(join(warm.dir, bin), constants.X_OK);
  await access(join(warm.dir, 'kwok-stages.yaml'), constants.R_OK);
  assert.equal(warm.dir, (await buildSh(script, ['--print-dir'], env)).dir);

  // XIANYU_K8S_BIN points at a ready folder and skips the build; a folder lacking a binary fails.
  assert.equal((await buildSh(script, [], { XIANYU_K8S_BIN: warm.dir })).dir, warm.dir);
  const empty = await mkdtemp(join(tmpdir(), 'no-bins-'));
  try {
    await assert.rejects(buildSh(script, [], { XIANYU_K8S_BIN: empty }), /has no etcd/);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});
