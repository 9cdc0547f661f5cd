import type { Logger } from 'pino';
import { API_VERSION, KIND, PAUSED_ANNOTATION } from '../api/group.js';
import { formatIssues, type XianyuAccount, XianyuAccountSpec } from '../api/schema.js';
import type { KubeClient } from '../kube/client.js';
import type { Informer, KObject } from '../kube/informer.js';
import { pathFor, RESOURCES, resourceByKind } from '../kube/resources.js';
import {
  desiredChildren,
  type KubeObject,
  type ManifestOptions,
  referencedSecrets,
} from '../manifests/children.js';
import { childName } from '../manifests/names.js';
import { workloadConfigProblems } from '../manifests/workload-config.js';
import type { ReconcileResult } from '../queue/workers.js';
import { applyReasons, withAppliedHash } from './compare.js';
import type { EventRecorder } from './events.js';
import {
  type ConfigProblem,
  conditionsToApply,
  type DeploymentView,
  operatorStatus,
  statusUpToDate,
  transitions,
} from './status.js';

// reconcile(namespace/name): read the account and its world from the informer caches, apply
// the children that differ from their desired state, and write the status when it changed.
// Level-triggered: nothing here depends on which event queued the key.

export type AccountObject = XianyuAccount & KObject;

/** A Secret as cached: its key names only (the operator never keeps Secret values). */
export interface SecretView extends KObject {
  keys: string[];
}

export function secretView(obj: KObject): SecretView {
  const data = (obj.data ?? {}) as Record<string, unknown>;
  const { name, namespace, uid, resourceVersion } = obj.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, uid, resourceVersion },
    keys: Object.keys(data),
  };
}

export interface Caches {
  accounts: Informer<AccountObject>;
  secrets: Informer<SecretView>;
  /** One informer per child kind (ServiceMonitor only when its CRD exists). */
  children: Map<string, Informer<KObject>>;
}

function rvNewer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  try {
    return BigInt(a) > BigInt(b);
  } catch {
    return false;
  }
}

export class AccountReconciler {
  /** Objects this process wrote, until the informer has seen that version (avoids repeat writes). */
  private readonly recent = new Map<string, KObject>();

  constructor(
    private readonly client: KubeClient,
    private readonly caches: Caches,
    private readonly manifests: () => ManifestOptions,
    private readonly events: EventRecorder,
    private readonly log: Logger,
  ) {}

  /** Informer handlers call this so `recent` entries end once the cache has caught up. */
  observe(kind: string, type: 'add' | 'update' | 'delete', obj: KObject): void {
    const key = `${kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
    const mine = this.recent.get(key);
    if (!mine) return;
    if (type === 'delete' || !rvNewer(mine.metadata.resourceVersion, obj.metadata.resourceVersion))
      this.recent.delete(key);
  }

  private remember(kind: string, obj: KObject): void {
    this.recent.set(`${kind}/${obj.metadata.namespace}/${obj.metadata.name}`, obj);
  }

  private current<T extends KObject>(
    kind: string,
    informer: Informer<T> | undefined,
    ns: string,
    name: string,
  ): T | undefined {
    const cached = informer?.get(ns, name);
    const mine = this.recent.get(`${kind}/${ns}/${name}`) as T | undefined;
    if (mine && (!cached || rvNewer(mine.metadata.resourceVersion, cached.metadata.resourceVersion)))
      return mine;
    return cached;
  }

  /** Accounts (namespace/name keys) that reference Secret `name` in `namespace`. */
  accountsUsingSecret(
    namespace: string,
    name: string,
    defaults: Pick<ManifestOptions, 'defaultDatabaseSecret'>,
  ): string[] {
    const keys: string[] = [];
    for (const a of this.caches.accounts.list(namespace)) {
      const parsed = XianyuAccountSpec.safeParse(a.spec);
      if (parsed.success && referencedSecrets(parsed.data, defaults).some((r) => r.ref.name === name)) {
        keys.push(`${namespace}/${a.metadata.name}`);
      }
    }
    return keys;
  }

  private checkSecrets(ns: string, spec: XianyuAccountSpec, opts: ManifestOptions) {
    const versions: Record<string, string> = {};
    for (const { field, ref } of referencedSecrets(spec, opts)) {
      const secret = this.caches.secrets.get(ns, ref.name);
      if (!secret) {
        return {
          problem: {
            reason: 'SecretNotFound',
            message: `Secret "${ref.name}" (${field}) not found in namespace ${ns}`,
          } as ConfigProblem,
          versions,
        };
      }
      if (!secret.keys.includes(ref.key)) {
        return {
          problem: {
            reason: 'SecretKeyNotFound',
            message: `Secret "${ref.name}" (${field}) has no key "${ref.key}"`,
          } as ConfigProblem,
          versions,
        };
      }
      versions[ref.name] = secret.metadata.resourceVersion ?? '';
    }
    return { problem: undefined, versions };
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const slash = key.indexOf('/');
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const account = this.current('XianyuAccount', this.caches.accounts, ns, name);
    // Deleted: owner references let the garbage collector remove the children.
    if (!account || account.metadata.deletionTimestamp) return undefined;
    const log = this.log.child({ account: key });
    const opts = this.manifests();
    const generation = account.metadata.generation ?? 1;
    const regarding = {
      name,
      namespace: ns,
      uid: account.metadata.uid,
      resourceVersion: account.metadata.resourceVersion,
    };

    let problem: ConfigProblem | undefined;
    const parsed = XianyuAccountSpec.safeParse(account.spec);
    let secretVersions: Record<string, string> = {};
    if (!parsed.success) {
      problem = { reason: 'InvalidSpec', message: formatIssues(parsed.error) };
    } else {
      const refused = workloadConfigProblems({ name, namespace: ns }, parsed.data);
      if (refused) problem = { reason: 'WorkloadConfigInvalid', message: refused };
      else {
        const checked = this.checkSecrets(ns, parsed.data, opts);
        problem = checked.problem;
        secretVersions = checked.versions;
      }
    }
    const annotation = account.metadata.annotations?.[PAUSED_ANNOTATION];
    const pausedByAnnotation = annotation !== undefined && annotation !== 'false';
    const pausedBySpec = parsed.success && parsed.data.paused === true;
    const paused = pausedBySpec || pausedByAnnotation;
    const deploymentName = childName(name);
    let deployment = this.current('Deployment', this.caches.children.get('Deployment'), ns, deploymentName) as
      | (KObject & DeploymentView)
      | undefined;

    if (!problem && parsed.success) {
      const desired = desiredChildren(
        {
          account: { name, namespace: ns, uid: account.metadata.uid },
          spec: parsed.data,
          paused,
          secretVersions,
        },
        opts,
      ).map(withAppliedHash);
      const created: string[] = [];
      const changed: string[] = [];
      const corrected: string[] = [];
      // Everything the pod needs first (in parallel), then the Deployment that starts it.
      const applyOne = async (obj: KubeObject) => {
        const observed = this.current(obj.kind, this.caches.children.get(obj.kind), ns, obj.metadata.name);
        const reasons = applyReasons(obj, observed);
        if (!reasons.length) return;
        log.info({ kind: obj.kind, name: obj.metadata.name, reasons: reasons.slice(0, 5) }, 'applying child');
        const result = await this.client.apply<KObject>(
          pathFor(resourceByKind(obj.kind), ns, obj.metadata.name),
          obj,
        );
        this.remember(obj.kind, result);
        if (obj.kind === 'Deployment') deployment = result as KObject & DeploymentView;
        if (!observed) created.push(obj.kind);
        else if (reasons[0] === 'desired state changed') changed.push(obj.kind);
        else corrected.push(`${obj.kind} (${reasons[0]!.replace('drift at ', '')})`);
      };
      await Promise.all(desired.filter((o) => o.kind !== 'Deployment').map(applyOne));
      for (const o of desired.filter((o) => o.kind === 'Deployment')) await applyOne(o);
      const order = desired.map((o) => o.kind);
      const byOrder = (a: string, b: string) =>
        order.indexOf(a.split(' ')[0]!) - order.indexOf(b.split(' ')[0]!);
      created.sort(byOrder);
      changed.sort(byOrder);
      corrected.sort(byOrder);
      if (created.length) {
        await this.events.emit(
          regarding,
          'Normal',
          'Created',
          `Created ${created.join(', ')} ${deploymentName}`,
        );
      }
      if (changed.length) {
        await this.events.emit(
          regarding,
          'Normal',
          'Updated',
          `Updated ${changed.join(', ')} ${deploymentName} to the new spec`,
        );
      }
      if (corrected.length) {
        await this.events.emit(
          regarding,
          'Warning',
          'DriftCorrected',
          `Restored ${corrected.join(', ')} of ${deploymentName}: changed outside the operator`,
        );
      }
    }

    const want = operatorStatus({
      generation,
      problem,
      paused,
      pausedBy: pausedBySpec ? 'spec' : pausedByAnnotation ? 'annotation' : undefined,
      deploymentName,
      deployment,
    });
    if (!statusUpToDate(account.status, want)) {
      const result = await this.client.apply<AccountObject>(
        pathFor(RESOURCES.XianyuAccount, ns, name, 'status'),
        {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name, namespace: ns },
          status: {
            phase: want.phase,
            observedGeneration: want.observedGeneration,
            deploymentName: want.deploymentName,
            conditions: conditionsToApply(account.status, want, new Date()),
          },
        },
      );
      this.remember('XianyuAccount', result);
      log.info({ phase: want.phase, generation }, 'status updated');
      for (const t of transitions(account.status, want))
        await this.events.emit(regarding, t.type, t.reason, t.message);
    }
    return undefined;
  }
}
