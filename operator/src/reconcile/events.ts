import type { Logger } from 'pino';
import { API_VERSION, KIND } from '../api/group.js';
import type { KubeClient } from '../kube/client.js';
import { pathFor, RESOURCES } from '../kube/resources.js';
import { microTime } from '../leader/lease.js';
import type { Metrics } from '../metrics/registry.js';

// Kubernetes Events (events.k8s.io/v1; `kubectl describe xya NAME` shows them). Notes are
// built by the reconciler from field paths and names, never from Secret contents.

export const REPORTING_CONTROLLER = 'xianyu.io/operator';

export interface Regarding {
  name: string;
  namespace: string;
  uid: string;
  resourceVersion?: string;
}

export class EventRecorder {
  private seq = 0;
  constructor(
    private readonly client: KubeClient,
    private readonly instance: string,
    private readonly log?: Logger,
    private readonly metrics?: Metrics,
  ) {}

  async emit(
    regarding: Regarding,
    type: 'Normal' | 'Warning',
    reason: string,
    note: string,
    action = 'Reconcile',
  ): Promise<void> {
    const now = new Date();
    this.seq = (this.seq + 1) % 1e6;
    const name = `${regarding.name}.${now.getTime().toString(16)}${this.seq.toString(16)}`;
    this.metrics?.events.inc({ type, reason });
    try {
      await this.client.create(pathFor(RESOURCES.Event, regarding.namespace), {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name, namespace: regarding.namespace },
        eventTime: microTime(now),
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.instance.slice(0, 128),
        action,
        reason,
        type,
        note: note.slice(0, 1024),
        regarding: { apiVersion: API_VERSION, kind: KIND, ...regarding },
      });
    } catch (err) {
      this.log?.warn({ err: { message: (err as Error).message }, reason }, 'could not record an event');
    }
  }
}
