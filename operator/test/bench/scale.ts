// Scale benchmark: N accounts created at once against the local control plane.
//   node --import tsx operator/test/bench/scale.ts [--accounts 1000] [--concurrency 4] [--json FILE]
// Reports: seconds until every account is reconciled (children applied, observedGeneration
// current), operator RSS, API writes per account, and the writes of a second pass (a fresh
// operator process looking at every unchanged account), which must be zero.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startTestCluster, waitFor } from '../../../test/cluster/harness.js';
import { KubeClient } from '../../src/kube/client.js';
import { pathFor, RESOURCES } from '../../src/kube/resources.js';
import { type OperatorProcess, REPO, startOperatorProcess, sumMetric } from '../support/operator-process.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '4' },
    json: { type: 'string' },
  },
});
const N = Number(values.accounts);

function reconcileWrites(text: string): number {
  return (
    sumMetric(text, 'xianyu_operator_api_writes_total') -
    sumMetric(text, 'xianyu_operator_api_writes_total', { resource: 'leases' })
  );
}

async function rssMiB(op: OperatorProcess): Promise<number> {
  return sumMetric(await op.metricsText(), 'process_resident_memory_bytes') / 2 ** 20;
}

async function main() {
  execFileSync(join(REPO, 'node_modules/.bin/tsc'), ['-b', join(REPO, 'operator')], { stdio: 'inherit' });
  const cluster = await startTestCluster();
  const api = new KubeClient(cluster.kc);
  const ops: OperatorProcess[] = [];
  try {
    await cluster.installCrd(join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml'), 'xianyuaccounts.xianyu.io');
    const ns = await cluster.namespace('bench');
    await api.create(pathFor(RESOURCES.Secret, ns), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cookies' },
      stringData: { cookies: 'unb=2200000001' },
    });
    const args = [
      '--watch-namespaces',
      ns,
      '--concurrency',
      values.concurrency!,
      '--workload-image',
      'bench/workload:1',
    ];
    const op = await startOperatorProcess({ kubeconfig: cluster.kubeconfigPath, args, built: true });
    ops.push(op);
    await op.waitForLog((l) => l.msg === 'caches synced');

    const names = Array.from({ length: N }, (_, i) => `acct-${String(i).padStart(4, '0')}`);
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < names.length) {
          const name = names[next++]!;
          await api.create(pathFor(RESOURCES.XianyuAccount, ns), {
            apiVersion: 'xianyu.io/v1alpha1',
            kind: 'XianyuAccount',
            metadata: { name },
            spec: {
              credentials: { cookiesSecretRef: { name: 'cookies' } },
              reply: { default: { text: '您好' } },
            },
          });
        }
      }),
    );
    const createdMs = Date.now() - started;
    let peakRss = 0;
    await waitFor(
      `all ${N} accounts reconciled`,
      async () => {
        peakRss = Math.max(peakRss, await rssMiB(op));
        const list = await api.get<{
          items: { metadata: { generation: number }; status?: { observedGeneration?: number } }[];
        }>(pathFor(RESOURCES.XianyuAccount, ns));
        const done = list.items.filter((a) => a.status?.observedGeneration === a.metadata.generation).length;
        return done === N ? true : undefined;
      },
      600_000,
    );
    const reconciledMs = Date.now() - started;
    const deployments = await api.get<{ items: unknown[] }>(pathFor(RESOURCES.Deployment, ns));
    // Let the world settle (pods scheduled or not, Deployment statuses, Ready transitions)
    // so the second pass sees no change: writes stable for 5 s.
    let stable = 0;
    let last = -1;
    while (stable < 5) {
      await new Promise((r) => setTimeout(r, 1000));
      const w = reconcileWrites(await op.metricsText());
      stable = w === last ? stable + 1 : 0;
      last = w;
    }
    const text = await op.metricsText();
    const firstWrites = reconcileWrites(text);
    const rss = await rssMiB(op);
    peakRss = Math.max(peakRss, rss);
    await op.stop();

    // Second pass: a new operator process reconciles every unchanged account.
    const op2 = await startOperatorProcess({ kubeconfig: cluster.kubeconfigPath, args, built: true });
    ops.push(op2);
    const secondStarted = Date.now();
    await op2.waitForLog((l) => l.msg === 'caches synced');
    await waitFor(
      'second pass done',
      async () => {
        const t = await op2.metricsText();
        return sumMetric(t, 'controller_runtime_reconcile_total') >= N &&
          sumMetric(t, 'workqueue_depth') === 0
          ? true
          : undefined;
      },
      600_000,
    );
    const secondMs = Date.now() - secondStarted;
    const secondText = await op2.metricsText();
    const result = {
      accounts: N,
      concurrency: Number(values.concurrency),
      createSeconds: createdMs / 1000,
      reconciledSeconds: reconciledMs / 1000,
      deployments: deployments.items.length,
      writesPerAccount: firstWrites / N,
      operatorRssMiB: Math.round(rss),
      operatorPeakRssMiB: Math.round(peakRss),
      secondPassSeconds: secondMs / 1000,
      secondPassWrites: reconcileWrites(secondText),
      secondPassRssMiB: Math.round(await rssMiB(op2)),
      secondPassWritesByResource: Object.fromEntries(
        secondText
          .split('\n')
          .filter((l) => l.startsWith('xianyu_operator_api_writes_total{'))
          .map((l) => [l.slice(l.indexOf('{'), l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]),
      ),
      reconcileErrors: sumMetric(text, 'controller_runtime_reconcile_errors_total'),
      secondPassReconcileErrors: sumMetric(secondText, 'controller_runtime_reconcile_errors_total'),
    };
    console.log(JSON.stringify(result, null, 2));
    const repeated = op2
      .logs()
      .filter((l) => l.level !== 'info' || l.msg === 'applying child' || l.msg === 'status updated');
    if (repeated.length) console.log('second-pass writes, first 5:', JSON.stringify(repeated.slice(0, 5)));
    if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']).catch(() => {});
  } finally {
    await Promise.allSettled(ops.map((o) => o.stop('SIGKILL')));
    api.close();
    await cluster.stop();
  }
}

await main();
