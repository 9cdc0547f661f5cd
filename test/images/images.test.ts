// The container images, built by `make images` (scripts/images.sh), run for real with podman:
//   - the workload image, read-only root filesystem (only /tmp and the data directory writable),
//     its default non-root user, host network, against the Xianyu simulator: /health, /ready and
//     a keyword reply; its HEALTHCHECK; Debian's Chromium rendering Chinese through playwright-core;
//   - the operator image, read-only too, against the local control plane: /readyz, an account
//     reconciled into its children.
// Sizes, users, labels and health checks are checked from the image metadata.
// Skipped when podman is missing or the images for the current sources are not built
// (`make images`; `make test` builds them first).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CLUSTER_START_TIMEOUT_MS, startTestCluster, type TestCluster, waitFor } from '../cluster/harness.js';
import { freePort } from '../harness/workload-process.js';
import { type Sim, startSim } from '../sim/index.js';

const REPO = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);
const MB = 1_000_000;
const WORKLOAD_MAX = 600 * MB;
const OPERATOR_MAX = 200 * MB;

// biome-ignore lint/suspicious/noExplicitAny: podman's inspect output
type Any = any;

function tags(): { workload: string; operator: string } {
  const out = execFileSync(join(REPO, 'scripts/images.sh'), ['tags'], { encoding: 'utf8' });
  const get = (k: string) => new RegExp(`^${k}=(.+)$`, 'm').exec(out)?.[1] ?? '';
  return { workload: get('WORKLOAD_IMAGE'), operator: get('OPERATOR_IMAGE') };
}

function skipReason(): string | undefined {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'podman is not installed (make images installs it)';
  }
  const t = tags();
  for (const image of [t.workload, t.operator]) {
    try {
      execFileSync('podman', ['image', 'exists', image], { stdio: 'ignore' });
    } catch {
      return `${image} is not built for the current sources: run make images`;
    }
  }
  return undefined;
}

const SKIP = skipReason();
const IMAGES = SKIP ? { workload: '', operator: '' } : tags();
if (SKIP) process.stderr.write(`# test/images skipped: ${SKIP}\n`);

async function podman(args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await run('podman', args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`podman ${args.join(' ')}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The run flags this machine needs (docs/machine-notes): runc, host network, explicit ulimits. */
const RUN = [
  '--runtime',
  'runc',
  'run',
  '--network=host',
  '--ulimit',
  'nofile=1024:1024',
  '--ulimit',
  'nproc=1024:1024',
];
/** Read-only root; /tmp is the only tmpfs (podman's automatic /run and /var/tmp tmpfs are off). */
const READ_ONLY = ['--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,mode=1777,size=128m'];

const containers: string[] = [];
async function start(args: string[]): Promise<string> {
  const id = (await podman([...RUN, '-d', ...READ_ONLY, ...args])).trim();
  containers.push(id);
  return id;
}
async function logs(id: string): Promise<string> {
  return await podman(['logs', '--tail', '40', id]).catch((e: Error) => e.message);
}
async function exec(id: string, cmd: string[], env: string[] = []): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('podman', ['exec', ...env.flatMap((e) => ['-e', e]), id, ...cmd], {
      timeout: 60_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as Error & { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}
async function inspect(image: string): Promise<Any> {
  return JSON.parse(await podman(['image', 'inspect', image]))[0];
}
async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(3000) })).status;
  } catch {
    return 0;
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'xianyu-images-'));
chmodSync(tmp, 0o755);
after(async () => {
  for (const id of containers) await podman(['rm', '-f', '-t', '2', id]).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
});

/** podman keeps HEALTHCHECK (docker format) at the top level of `image inspect`. */
const healthcheck = (meta: Any): string[] => (meta.Healthcheck ?? meta.Config.Healthcheck).Test;

function checkMetadata(meta: Any, want: { user: string; title: string; maxBytes: number }) {
  assert.equal(meta.Config.User, want.user, 'non-root user');
  assert.ok(meta.Size <= want.maxBytes, `${Math.round(meta.Size / MB)} MB <= ${want.maxBytes / MB} MB`);
  const labels = meta.Config.Labels ?? meta.Labels;
  assert.equal(labels['org.opencontainers.image.title'], want.title);
  for (const k of ['source', 'version', 'revision', 'created', 'licenses', 'description'])
    assert.ok(labels[`org.opencontainers.image.${k}`], `label org.opencontainers.image.${k}`);
  const hc = (meta.Healthcheck ?? meta.Config.Healthcheck)?.Test as string[] | undefined;
  assert.ok(hc && hc.length > 1, 'HEALTHCHECK present');
  assert.ok(!hc.join(' ').includes('curl'), 'HEALTHCHECK needs no curl');
  return hc;
}

describe('workload image', { skip: SKIP }, () => {
  let sim: Sim;
  before(async () => {
    sim = await startSim();
  });
  after(async () => {
    await sim?.close();
  });

  test('metadata: non-root, under 600 MB, OCI labels, HEALTHCHECK without curl', async () => {
    const meta = await inspect(IMAGES.workload);
    checkMetadata(meta, { user: '10001:10001', title: 'xianyu-workload', maxBytes: WORKLOAD_MAX });
    process.stderr.write(`# workload image ${IMAGES.workload}: ${Math.round(meta.Size / MB)} MB\n`);
  });

  test('read-only root, default user: /health, /ready and a keyword reply against the simulator', async () => {
    const seller = sim.createSeller();
    sim.createItem({ sellerId: seller.unb, title: '测试商品', price: '9.90' });
    const port = await freePort();
    const dir = join(tmp, 'workload');
    mkdirSync(join(dir, 'data'), { recursive: true });
    chownSync(join(dir, 'data'), 10001, 10001);
    writeFileSync(
      join(dir, 'config.yaml'),
      stringify({
        account: { id: `img-${seller.unb}` },
        server: { host: '127.0.0.1' },
        session: { registerSettleMs: 0, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 1000 },
        reply: {
          debounceMs: 0,
          default: { text: '您好' },
          keywords: [{ match: ['发货'], reply: '自动发货，请稍等' }],
        },
      }),
    );
    chmodSync(join(dir, 'config.yaml'), 0o644);
    const id = await start([
      '-v',
      `${join(dir, 'config.yaml')}:/etc/xianyu/config.yaml:ro`,
      '-v',
      `${join(dir, 'data')}:/var/lib/xianyu`,
      '-e',
      `PORT=${port}`,
      '-e',
      `XIANYU_COOKIES=${seller.cookies}`,
      '-e',
      `XIANYU_API_URL=${sim.url}`,
      '-e',
      `XIANYU_IM_URL=${sim.imUrl}`,
      '-e',
      `XIANYU_PASSPORT_URL=${sim.url}`,
      IMAGES.workload,
    ]);
    const base = `http://127.0.0.1:${port}`;
    try {
      // PGlite's first start in an empty folder (WASM compile + initdb) takes seconds alone and has
      // taken a minute with the whole suite running beside it: a deadline with room.
      await waitFor('workload /health', async () => (await httpStatus(`${base}/health`)) === 200, 150_000);
      await waitFor('workload /ready', async () => (await httpStatus(`${base}/ready`)) === 200, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logs(id)}`);
    }
    const { chatId } = await sim.buyerSays({
      sellerId: seller.unb,
      buyerId: '3200000001',
      text: '什么时候发货',
    });
    const sent = await sim.waitFor(() => sim.sent(seller.unb).find((s) => s.chatId === chatId), 15_000);
    assert.match(JSON.stringify(sent), /自动发货，请稍等/);

    // The process is the image's non-root user; the root filesystem refuses writes, the data dir takes them.
    assert.equal((await exec(id, ['id', '-u'])).out.trim(), '10001');
    assert.notEqual((await exec(id, ['touch', '/app/x'])).code, 0, 'root filesystem is read-only');
    assert.equal((await exec(id, ['touch', '/var/lib/xianyu/x'])).code, 0, 'the data directory is writable');
    // PGlite keeps its files in the data directory.
    assert.equal((await exec(id, ['test', '-d', '/var/lib/xianyu/data'])).code, 0);

    // The HEALTHCHECK command passes while /health answers 200 and fails when nothing answers.
    const hc = healthcheck(await inspect(IMAGES.workload));
    const cmd = hc[0] === 'CMD' ? hc.slice(1) : ['sh', '-c', hc[1]!];
    assert.equal((await exec(id, cmd, [`PORT=${port}`])).code, 0, 'healthy');
    assert.notEqual((await exec(id, cmd, ['PORT=1'])).code, 0, 'unhealthy when /health does not answer');
  });

  test("Debian's Chromium renders Chinese through playwright-core, non-root, read-only root", async () => {
    const script = join(tmp, 'browser.mjs');
    writeFileSync(
      script,
      `const { chromium } = await import('/app/node_modules/playwright-core/index.mjs');
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu',
  '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const p = await b.newPage();
await p.setContent('<html><body style="font-family: sans-serif">规格:红色 数量:2</body></html>');
const text = await p.innerText('body');
const cjk = await p.evaluate(() => document.fonts.check('16px "Noto Sans CJK SC"'));
console.log(JSON.stringify({ text, cjk, version: b.version() }));
await b.close();
`,
    );
    chmodSync(script, 0o644);
    const out = await podman(
      [
        ...RUN,
        '--rm',
        ...READ_ONLY,
        '-v',
        `${script}:/browser.mjs:ro`,
        '--entrypoint',
        'node',
        IMAGES.workload,
        '/browser.mjs',
      ],
      120_000,
    );
    const line = out.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, out);
    const r = JSON.parse(line);
    assert.equal(r.text, '规格:红色 数量:2');
    assert.equal(r.cjk, true, 'Noto Sans CJK is installed');
    assert.match(r.version, /^\d+\./);
  });

  test('one browser, no compilers, no npm, no package caches', async () => {
    const out = await podman([
      ...RUN,
      '--rm',
      '--entrypoint',
      'sh',
      IMAGES.workload,
      '-c',
      'for c in gcc cc g++ make npm npx curl wget firefox google-chrome; do command -v $c; done; ' +
        'find / -xdev \\( -name ms-playwright -o -name "chrome-linux*" \\) 2>/dev/null; ' +
        'ls /var/lib/apt/lists | wc -l; ls /usr/lib/chromium/chromium-headless-shell',
    ]);
    const lines = out.trim().split('\n');
    assert.deepEqual(lines, ['0', '/usr/lib/chromium/chromium-headless-shell'], out);
  });
});

describe('operator image', { skip: SKIP }, () => {
  let cluster: TestCluster;
  before(
    async () => {
      // A private control plane: this suite applies the cluster-scoped CRD itself.
      cluster = await startTestCluster({ private: true });
      await cluster.installCrd(join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml'), 'xianyuaccounts.xianyu.io');
    },
    { timeout: CLUSTER_START_TIMEOUT_MS },
  );
  after(async () => {
    await cluster?.stop();
  });

  test('metadata: non-root, under 200 MB, OCI labels, HEALTHCHECK without curl', async () => {
    const meta = await inspect(IMAGES.operator);
    checkMetadata(meta, { user: '65532:65532', title: 'xianyu-operator', maxBytes: OPERATOR_MAX });
    process.stderr.write(`# operator image ${IMAGES.operator}: ${Math.round(meta.Size / MB)} MB\n`);
  });

  test('read-only root, non-root: becomes ready against the control plane and reconciles an account', async () => {
    const ns = await cluster.namespace('imgop');
    const kubeconfig = join(tmp, 'operator.kubeconfig');
    copyFileSync(cluster.kubeconfigPath, kubeconfig);
    chmodSync(kubeconfig, 0o644);
    const port = await freePort();
    const id = await start([
      '-v',
      `${kubeconfig}:/etc/xianyu/kubeconfig:ro`,
      IMAGES.operator,
      '--kubeconfig',
      '/etc/xianyu/kubeconfig',
      '--metrics-host',
      '127.0.0.1',
      '--metrics-port',
      String(port),
      '--watch-namespaces',
      ns,
      '--workload-image',
      IMAGES.workload,
      '--leader-elect',
      '--leader-election-namespace',
      ns,
    ]);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor('operator /readyz', async () => (await httpStatus(`${base}/readyz`)) === 200, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logs(id)}`);
    }
    await cluster.kubectl([
      'create',
      'secret',
      'generic',
      'cookies',
      '-n',
      ns,
      '--from-literal=cookies=unb=1; cookie2=x',
    ]);
    const account = join(tmp, 'account.yaml');
    writeFileSync(
      account,
      stringify({
        apiVersion: 'xianyu.io/v1alpha1',
        kind: 'XianyuAccount',
        metadata: { name: 'shop', namespace: ns },
        spec: {
          credentials: { cookiesSecretRef: { name: 'cookies' } },
          reply: { default: { text: '您好' } },
        },
      }),
    );
    await cluster.kubectl(['apply', '-f', account]);
    try {
      const dep = await waitFor(
        'workload Deployment created by the operator image',
        async () => {
          const out = await cluster
            .kubectl(['get', 'deployment', 'xianyu-shop', '-n', ns, '-o', 'json'])
            .catch(() => '');
          return out ? JSON.parse(out) : undefined;
        },
        60_000,
      );
      assert.equal(dep.spec.template.spec.containers[0].image, IMAGES.workload);
      await waitFor(
        'status.observedGeneration',
        async () => {
          const a = JSON.parse(await cluster.kubectl(['get', 'xya', 'shop', '-n', ns, '-o', 'json']));
          return a.status?.observedGeneration === a.metadata.generation;
        },
        60_000,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await logs(id)}`);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /controller_runtime_reconcile_total\{[^}]*result="success"[^}]*\} [1-9]/);
    assert.match(metrics, /leader_election_master_status\{[^}]*\} 1/);
    // No shell in the image: the health check is node itself.
    const hc = healthcheck(await inspect(IMAGES.operator));
    assert.equal((await exec(id, hc.slice(1), [`METRICS_PORT=${port}`])).code, 0);
    assert.notEqual((await exec(id, ['/bin/sh', '-c', 'true'])).code, 0, 'no shell');
    assert.notEqual(
      (await exec(id, ['/usr/local/bin/node', '-e', "require('fs').writeFileSync('/app/x','')"])).code,
      0,
    );
  });
});
