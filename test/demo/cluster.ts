// `make demo`, Kubernetes part: a local control plane (built from Go modules), the operator,
// and a XianyuAccount applied like a user would; the operator renders its children, the
// account's workload (run locally with what its pod would get) connects to the simulator,
// answers a buyer and reports Connected into the account's status. Run with --help.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeClient } from '../../operator/src/kube/client.js';
import { pathFor, RESOURCES } from '../../operator/src/kube/resources.js';
import {
  type OperatorProcess,
  REPO,
  startOperatorProcess,
} from '../../operator/test/support/operator-process.js';
import { startTestCluster, type TestCluster, waitFor } from '../cluster/harness.js';
import { createAccount, runAccountLocally } from '../harness/local-account.js';
import type { WorkloadProcess } from '../harness/workload-process.js';
import { type Sim, startSim } from '../sim/index.js';

const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log(`Usage: node --import tsx test/demo/cluster.ts

Starts (or reuses, see test/cluster/README.md) a local Kubernetes control plane, installs the
XianyuAccount CRD, runs the operator, applies an account, and shows what a user sees with
kubectl while the account's workload answers a buyer through the simulator.`);
  process.exit(0);
}

const say = (s: string) => process.stdout.write(`${s}\n`);
// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are read loosely here
type Any = any;

async function main(): Promise<number> {
  let cluster: TestCluster | undefined;
  let api: KubeClient | undefined;
  let sim: Sim | undefined;
  let op: OperatorProcess | undefined;
  let wl: WorkloadProcess | undefined;
  try {
    say(
      '\nKubernetes: starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)',
    );
    const started = Date.now();
    cluster = await startTestCluster({ log: (l) => say(`  ${l}`) });
    say(`  ready in ${((Date.now() - started) / 1000).toFixed(1)} s; kubeconfig ${cluster.kubeconfigPath}`);
    api = new KubeClient(cluster.kc);
    await cluster.installCrd(join(REPO, 'crds/xianyu.io_xianyuaccounts.yaml'), 'xianyuaccounts.xianyu.io');
    const ns = await cluster.namespace('demo');
    op = await startOperatorProcess({
      kubeconfig: cluster.kubeconfigPath,
      args: ['--watch-namespaces', ns, '--workload-image', 'localhost/xianyu-workload:dev'],
    });
    say(`  operator running (namespace ${ns})`);

    sim = await startSim();
    const seller = sim.createSeller({ nick: '集群小店' });
    sim.createItem({ sellerId: seller.unb, title: '会员兑换码', price: '30' });
    say(`\n$ kubectl apply -f account.yaml   # XianyuAccount "shop" + its cookies Secret`);
    await createAccount(api, ns, 'shop', seller, {
      reply: { default: { text: '您好，在的～' }, keywords: [{ match: ['发货'], reply: '付款后自动发货' }] },
    });
    const a = api;
    await waitFor('the account Running', async () => {
      const acc = await a.get<Any>(pathFor(RESOURCES.XianyuAccount, ns, 'shop'));
      return acc.status?.phase === 'Running' && acc.status.observedGeneration === acc.metadata.generation;
    });
    say(`$ kubectl get xya,deploy,pods -n ${ns}`);
    say(indent(await cluster.kubectl(['get', 'xya,deploy,pods', '-n', ns])));

    say("the account's workload connects (run locally: kwok pods have no containers)");
    wl = await runAccountLocally({ api, cluster, ns, name: 'shop', sim, seller });
    await waitFor('Connected=True', async () => {
      const acc = await a.get<Any>(pathFor(RESOURCES.XianyuAccount, ns, 'shop'));
      return acc.status?.conditions?.some((c: Any) => c.type === 'Connected' && c.status === 'True');
    });
    const { chatId } = await sim.buyerSays({
      sellerId: seller.unb,
      buyerId: '3500000001',
      buyerNick: '小赵',
      text: '什么时候发货',
    });
    const s = sim;
    const reply = await s.waitFor(() => s.sent(seller.unb).find((m) => m.chatId === chatId), 10_000);
    say(`  小赵 → 什么时候发货\n  机器人 ← ${reply.text}`);
    say(`$ kubectl get xya -n ${ns}`);
    say(indent(await cluster.kubectl(['get', 'xya', '-n', ns])));
    say(`$ kubectl describe xya shop -n ${ns}   (conditions)`);
    const described = await cluster.kubectl(['describe', 'xya', 'shop', '-n', ns]);
    say(indent(described.slice(described.indexOf('Conditions:'), described.indexOf('Events:')).trimEnd()));
    const code = await wl.stop('SIGTERM');
    say(`\nKubernetes demo: account reconciled, Connected reported, buyer answered; workload exit ${code}`);
    return code === 0 ? 0 : 1;
  } catch (err) {
    say(`Kubernetes demo failed: ${(err as Error).message}`);
    if (wl) for (const l of wl.output().slice(-20)) say(`    ${l}`);
    return 1;
  } finally {
    await wl?.stop('SIGKILL').catch(() => {});
    await op?.stop('SIGKILL').catch(() => {});
    api?.close();
    await cluster?.stop().catch(() => {});
    await sim?.close().catch(() => {});
  }
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

main().then((code) => process.exit(code));
