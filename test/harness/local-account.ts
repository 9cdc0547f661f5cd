import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { KubeClient } from '../../operator/src/kube/client.js';
import { pathFor, RESOURCES } from '../../operator/src/kube/resources.js';
import { CONFIG_KEY } from '../../operator/src/manifests/workload-config.js';
import type { TestCluster } from '../cluster/harness.js';
import { waitFor } from '../cluster/harness.js';
import type { Seller, Sim } from '../sim/index.js';
import { simEnv, startWorkloadProcess, type WorkloadProcess } from './workload-process.js';

// kwok's pods are not real containers, so tests and the demo run an account's workload as a
// local process with what its pod would get: the config the operator rendered into the
// ConfigMap, a token of the account's ServiceAccount, and the account's name and namespace.

export async function createAccount(
  api: KubeClient,
  ns: string,
  name: string,
  seller: Seller,
  spec: Record<string, unknown>,
): Promise<void> {
  await api.create(pathFor(RESOURCES.Secret, ns), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${name}-cookies` },
    stringData: { cookies: seller.cookies },
  });
  await api.apply(
    pathFor(RESOURCES.XianyuAccount, ns, name),
    {
      apiVersion: 'xianyu.io/v1alpha1',
      kind: 'XianyuAccount',
      metadata: { name, namespace: ns },
      spec: { credentials: { cookiesSecretRef: { name: `${name}-cookies` } }, ...spec },
    },
    { fieldManager: 'xianyu-demo' },
  );
}

export async function runAccountLocally(o: {
  api: KubeClient;
  cluster: TestCluster;
  ns: string;
  name: string;
  sim: Sim;
  seller: Seller;
  env?: Record<string, string>;
}): Promise<WorkloadProcess> {
  const { api, ns, name } = o;
  const cm = await waitFor(`the ConfigMap of ${ns}/${name}`, () =>
    api
      .get<{ data: Record<string, string> }>(pathFor(RESOURCES.ConfigMap, ns, `xianyu-${name}`))
      .catch(() => undefined),
  );
  const rendered = parse(cm.data[CONFIG_KEY] ?? '') as Record<string, unknown>;
  delete rendered.dataDir; // the pod's volume path; a temp folder here
  const tr = await waitFor(`a token of ${ns}/xianyu-${name}`, () =>
    api
      .request<{ status: { token: string } }>(
        'POST',
        `${pathFor(RESOURCES.ServiceAccount, ns, `xianyu-${name}`)}/token`,
        {
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { expirationSeconds: 3600 },
          },
        },
      )
      .catch(() => undefined),
  );
  const dir = mkdtempSync(join(tmpdir(), `xianyu-${name}-`));
  writeFileSync(join(dir, 'token'), tr.status.token);
  const c = o.cluster.kc.getCurrentCluster()!;
  writeFileSync(join(dir, 'ca.crt'), Buffer.from(c.caData!, 'base64'));
  return await startWorkloadProcess({
    dir,
    config: rendered,
    env: {
      ...simEnv(o.sim, o.seller),
      XIANYU_KUBE_API: c.server,
      XIANYU_KUBE_TOKEN_FILE: join(dir, 'token'),
      XIANYU_KUBE_CA_FILE: join(dir, 'ca.crt'),
      XIANYU_ACCOUNT_NAME: name,
      XIANYU_ACCOUNT_NAMESPACE: ns,
      ...o.env,
    },
  });
}
