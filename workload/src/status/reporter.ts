import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Logger } from '../log.js';
import type { RuntimeCondition } from './conditions.js';

// Reports the workload's runtime conditions into its XianyuAccount status by server-side apply
// with its own field manager, through the narrow Role the operator grants (patch of this one
// account's status). Outside a cluster (no API server, token or account name) it stays off.

export const FIELD_MANAGER = 'xianyu-workload';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeTarget {
  server: string;
  tokenFile: string;
  caFile: string;
  namespace: string;
  name: string;
}

/** In a pod: the service-account mount and the env the operator sets; locally: XIANYU_KUBE_*. */
export function kubeTargetFromEnv(
  env: NodeJS.ProcessEnv,
  exists: (p: string) => boolean,
): KubeTarget | undefined {
  const name = env.XIANYU_ACCOUNT_NAME;
  const namespace = env.XIANYU_ACCOUNT_NAMESPACE;
  const host = env.KUBERNETES_SERVICE_HOST;
  const server =
    env.XIANYU_KUBE_API ??
    (host
      ? `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`
      : undefined);
  const tokenFile = env.XIANYU_KUBE_TOKEN_FILE ?? `${SA_DIR}/token`;
  const caFile = env.XIANYU_KUBE_CA_FILE ?? `${SA_DIR}/ca.crt`;
  if (!name || !namespace || !server || !exists(tokenFile) || !exists(caFile)) return undefined;
  return { server, tokenFile, caFile, namespace, name };
}

interface Stored extends RuntimeCondition {
  lastTransitionTime: string;
}

export class StatusReporter {
  private conditions = new Map<string, Stored>();
  private connectedSince: Date | undefined;
  private lastMessageTime: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private failures = 0;
  private lastSent = '';

  constructor(
    private readonly target: KubeTarget,
    private readonly log: Logger,
    private readonly opts: { debounceMs?: number } = {},
  ) {}

  /** Merges conditions (by type); schedules a report when anything a human would see changed. */
  update(conds: RuntimeCondition[], times: { connectedSince?: Date; lastMessageTime?: Date } = {}): void {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    for (const c of conds) {
      const prev = this.conditions.get(c.type);
      const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : now;
      this.conditions.set(c.type, { ...c, lastTransitionTime });
    }
    if (times.connectedSince) this.connectedSince = times.connectedSince;
    if (times.lastMessageTime) this.lastMessageTime = times.lastMessageTime;
    this.schedule(this.opts.debounceMs ?? 1_000);
  }

  /** Sends what is pending now (shutdown). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.report();
    }
    await this.inflight;
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.report();
    }, ms);
    this.timer.unref();
  }

  private body(): Record<string, unknown> {
    const status: Record<string, unknown> = {
      conditions: [...this.conditions.values()].sort((a, b) => a.type.localeCompare(b.type)),
    };
    if (this.connectedSince) status.connectedSince = iso(this.connectedSince);
    if (this.lastMessageTime) status.lastMessageTime = iso(this.lastMessageTime);
    return {
      apiVersion: 'xianyu.io/v1alpha1',
      kind: 'XianyuAccount',
      metadata: { name: this.target.name, namespace: this.target.namespace },
      status,
    };
  }

  private async report(): Promise<void> {
    await this.inflight;
    const body = JSON.stringify(this.body());
    if (body === this.lastSent) return; // nothing changed since the last successful write
    this.inflight = this.apply(body).then(
      () => {
        this.lastSent = body;
        this.failures = 0;
        this.log.debug({ account: this.target.name }, 'status reported');
      },
      (err: Error) => {
        this.failures++;
        const retryMs = Math.min(60_000, 1_000 * 2 ** Math.min(this.failures, 6));
        this.log.warn({ err, retryMs }, 'could not report status to the XianyuAccount');
        this.schedule(retryMs);
      },
    );
    await this.inflight;
  }

  private apply(body: string): Promise<void> {
    const t = this.target;
    const url = new URL(
      `/apis/xianyu.io/v1alpha1/namespaces/${encodeURIComponent(t.namespace)}/xianyuaccounts/${encodeURIComponent(t.name)}/status`,
      t.server,
    );
    url.searchParams.set('fieldManager', FIELD_MANAGER);
    url.searchParams.set('force', 'true');
    // Projected service-account tokens rotate: read the file for every request.
    const token = readFileSync(t.tokenFile, 'utf8').trim();
    const ca = readFileSync(t.caFile);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'PATCH',
          ca,
          timeout: 10_000,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/apply-patch+yaml',
            accept: 'application/json',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode && res.statusCode < 300) return resolve();
            let message = '';
            try {
              message =
                (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message?: string }).message ?? '';
            } catch {
              // not a Status object
            }
            reject(new Error(`API server answered ${res.statusCode}${message ? `: ${message}` : ''}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('API server did not answer within 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}
