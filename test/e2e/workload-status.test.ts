import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KubeClient } from '../../operator/src/kube/client.js';
import { pathFor, RESOURCES } from '../../operator/src/kube/resources.js';
import {
  type OperatorProcess,
  REPO,
  startOperatorProcess,
} from '../../operator/test/support/operator-process.js';
import { CLUSTER_START_TIMEOUT_MS, startTestCluster, type TestCluster, waitFor } from '../cluster/harness.js';
import { createAccount, runAccountLocally } from '../harness/local-account.js';
import type { WorkloadProcess } from '../harness/workload-process.js';
import { type Sim, startSim } from '../sim/index.js';

// The real workload (built dist/main.js) runs as a local process with the config the operator
// rendered and a token of the account's ServiceAccount, against the simulator, and reports its
// runtime conditions into the XianyuAccount status through the narrow Role.

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are read loosely in tests
type Any = any;
let cluster: TestCluster;
let api: KubeClient;
let sim: Sim;
let op: OperatorProcess | undefined;
let wl: WorkloadProcess | undefined;

before(
  async () => {
    sim = await startSim();
    cluster = await startTestCluster();
    api = new KubeClient(cluster.kc);
    await cluster.installCrd(join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml'), 'xianyuaccounts.xianyu.io');
  },
  { timeout: CLUSTER_START_TIMEOUT_MS },
);

after(async () => {
  await wl?.stop('SIGKILL');
  await op?.stop('SIGKILL');
  api?.close();
  await cluster?.stop();
  await sim?.close();
});

const cond = (obj: Any, type: string) => obj?.status?.conditions?.find((c: Any) => c.type === type);

test('the workload reports Connected into its account status with its own field manager', async () => {
  const ns = await cluster.namespace('wl-status');
  op = await startOperatorProcess({
    kubeconfig: cluster.kubeconfigPath,
    args: ['--watch-namespaces', ns, '--workload-image', 'registry.local/xianyu-workload:test'],
  });
  const seller = sim.createSeller();
  sim.createItem({ sellerId: seller.unb, title: '激活码', price: '5' });
  await createAccount(api, ns, 'shop', seller, {
    reply: { keywords: [{ match: ['发货'], reply: '自动发货' }] },
  });
  wl = await runAccountLocally({ api, cluster, ns, name: 'shop', sim, seller });
  const connected = await waitFor('Connected=True reported by the workload', async () => {
    const a = await api.get<Any>(pathFor(RESOURCES.XianyuAccount, ns, 'shop'));
    return cond(a, 'Connected')?.status === 'True' ? a : undefined;
  });
  assert.equal(cond(connected, 'LoginValid')?.status, 'True');
  assert.ok(Date.parse(connected.status.connectedSince) > 0);
  const managers = (connected.metadata.managedFields as Any[]).map((m) => m.manager);
  assert.ok(managers.includes('xianyu-workload'), managers.join(','));
  assert.ok(cond(connected, 'ConfigValid'), "the operator's conditions stay beside the workload's");
  assert.match(
    await cluster.kubectl(['get', 'xya', '-n', ns, 'shop']),
    /\nshop\s+\S+\s+\S+\s+True\s+True\s+/,
  );

  // It answers buyers while reporting, and a clean stop is reported too.
  const { chatId } = await sim.buyerSays({ sellerId: seller.unb, buyerId: '3400000001', text: '发货吗' });
  await sim.waitFor(
    () => sim.sent(seller.unb).find((s) => s.chatId === chatId && s.text === '自动发货'),
    10_000,
  );
  assert.equal(await wl.stop('SIGTERM'), 0);
  const stopped = await api.get<Any>(pathFor(RESOURCES.XianyuAccount, ns, 'shop'));
  assert.deepEqual(
    { status: cond(stopped, 'Connected')?.status, reason: cond(stopped, 'Connected')?.reason },
    { status: 'False', reason: 'Stopped' },
  );
  assert.ok(
    !JSON.stringify(stopped.status).includes(seller.cookies.split(';')[1]!.split('=')[1]!),
    'no cookie in status',
  );
});

test('a workload that refuses its config says why in the account status before it exits', async () => {
  const ns = await cluster.namespace('wl-badcfg');
  const bad = await startOperatorProcess({
    kubeconfig: cluster.kubeconfigPath,
    args: ['--watch-namespaces', ns, '--workload-image', 'registry.local/xianyu-workload:test'],
  });
  try {
    const seller = sim.createSeller();
    await createAccount(api, ns, 'shop', seller, {});
    // The operator renders only configs the workload accepts; what it cannot see (here an
    // environment override, in real life a workload of another version) the workload reports.
    await assert.rejects(
      runAccountLocally({ api, cluster, ns, name: 'shop', sim, seller, env: { LOG_LEVEL: 'loud' } }),
      /workload exited with 2/,
    );
    const a = await waitFor('Connected=False ConfigInvalid', async () => {
      const acc = await api.get<Any>(pathFor(RESOURCES.XianyuAccount, ns, 'shop'));
      return cond(acc, 'Connected')?.reason === 'ConfigInvalid' ? acc : undefined;
    });
    assert.equal(cond(a, 'Connected')?.status, 'False');
    assert.match(cond(a, 'Connected')?.message, /log\.level/);
    assert.match(await cluster.kubectl(['describe', 'xya', '-n', ns, 'shop']), /ConfigInvalid/);
    assert.ok(
      !JSON.stringify(a.status).includes(seller.cookies.split(';')[1]!.split('=')[1]!),
      'no cookie in status',
    );
  } finally {
    await bad.stop('SIGKILL');
  }
});
