import type { Logger } from 'pino';
import { ApiError, isConflict, isNotFound, type KubeClient } from '../kube/client.js';
import { pathFor, RESOURCES } from '../kube/resources.js';
import type { Metrics } from '../metrics/registry.js';

// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it:
// acquire when the lease is free or its holder has not renewed for leaseDuration (measured on
// this process's clock from when the record last changed, so clock skew does not matter),
// renew every retryPeriod, give up leadership when renewals fail for renewDeadline, and
// release the lease on shutdown so a standby takes over at once.

export interface LeaderOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: Logger;
  metrics?: Metrics;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Small jitter: a standby polls every ~2 s, so a dead leader is replaced within lease + 2 polls (< 20 s).
const jitter = (ms: number) => ms * (1 + Math.random() * 0.05);

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private observed = '';
  private observedAt = 0;
  private lease?: Lease;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(private readonly o: LeaderOptions) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    o.metrics?.leader.set({ name: o.name }, 0);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get path(): string {
    return pathFor(RESOURCES.Lease, this.o.namespace, this.o.name);
  }

  /** One attempt to acquire or renew; true when this process holds the lease afterwards. */
  async tryAcquireOrRenew(now = new Date()): Promise<boolean> {
    const { client, identity } = this.o;
    let lease: Lease | undefined;
    try {
      lease = await client.get<Lease>(this.path, { timeoutMs: this.retryMs * 2 });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    // Never take the lease again once shutting down (a renewal racing release()).
    if (this.stopped) return false;
    if (!lease) {
      try {
        this.lease = await client.create<Lease>(pathFor(RESOURCES.Lease, this.o.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec,
        });
        this.observe(this.lease);
        return true;
      } catch (err) {
        if (isConflict(err) || (err instanceof ApiError && err.code === 409)) return false;
        throw err;
      }
    }
    this.observe(lease);
    const held = lease.spec ?? {};
    const mine = held.holderIdentity === identity;
    const free = !held.holderIdentity;
    const durationMs = (held.leaseDurationSeconds ?? Math.ceil(this.leaseMs / 1000)) * 1000;
    if (!mine && !free && this.observedAt + durationMs > Date.now()) return false;
    if (mine) {
      spec.acquireTime = held.acquireTime ?? spec.acquireTime;
      spec.leaseTransitions = held.leaseTransitions ?? 0;
    } else {
      spec.leaseTransitions = (held.leaseTransitions ?? 0) + 1;
    }
    try {
      this.lease = await client.update<Lease>(this.path, { ...lease, spec });
      this.observe(this.lease);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private observe(lease: Lease): void {
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observed) {
      this.observed = record;
      this.observedAt = Date.now();
    }
  }

  /**
   * Campaigns until leading, calls onStartedLeading, then renews; calls onStoppedLeading when a
   * renewal deadline is missed (the caller should stop working, as controller-runtime exits).
   */
  async run(hooks: { onStartedLeading: () => void; onStoppedLeading: () => void }): Promise<void> {
    const log = this.o.log;
    while (!this.stopped && !this.leading) {
      try {
        if (await this.tryAcquireOrRenew()) break;
      } catch (err) {
        log?.warn(
          { err: { message: (err as Error).message } },
          'leader election: cannot read or write the lease',
        );
      }
      await sleep(jitter(this.retryMs));
    }
    if (this.stopped) return;
    this.leading = true;
    this.o.metrics?.leader.set({ name: this.o.name }, 1);
    log?.info(
      { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity },
      'became the leader',
    );
    hooks.onStartedLeading();
    let lastRenew = Date.now();
    while (!this.stopped) {
      await sleep(this.retryMs);
      if (this.stopped) break;
      try {
        if (await this.tryAcquireOrRenew()) {
          lastRenew = Date.now();
          continue;
        }
      } catch (err) {
        log?.warn({ err: { message: (err as Error).message } }, 'leader election: renewal failed');
      }
      if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.o.metrics?.leader.set({ name: this.o.name }, 0);
        log?.error('leader election: lost the lease (renew deadline passed)');
        hooks.onStoppedLeading();
        return;
      }
    }
  }

  /** Stops campaigning; if leading, releases the lease so a standby can take over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    if (!this.leading) return;
    this.leading = false;
    this.o.metrics?.leader.set({ name: this.o.name }, 0);
    // Read the lease afresh (a renewal may be in flight) and retry on a conflict.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const lease = await this.o.client.get<Lease>(this.path, { timeoutMs: 5_000 });
        if (lease.spec?.holderIdentity !== this.o.identity) return;
        const now = microTime(new Date());
        await this.o.client.update(this.path, {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: now,
            acquireTime: now,
          },
        });
        this.o.log?.info('released the lease');
        return;
      } catch (err) {
        if (isConflict(err)) continue;
        this.o.log?.warn({ err: { message: (err as Error).message } }, 'could not release the lease');
        return;
      }
    }
  }
}
