import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.js';
import { ApiError, type KubeClient } from './client.js';
import { pathFor, type ResourceType } from './resources.js';

// List + watch into an in-memory cache, like client-go's reflector and informer:
// - lists page by page, then watches from the list's resourceVersion with bookmarks;
// - a watch the server ends is resumed from the last resourceVersion;
// - 410 Gone (too old a resourceVersion) relists, and the cache is diffed so handlers see
//   adds, updates and deletes they missed;
// - a watchdog aborts a watch that delivers nothing (not even a bookmark) for idleTimeoutMs;
// - connection errors retry with exponential backoff; `stale` turns true after staleAfterMs
//   without a working watch, which /readyz reports.
// One Informer serves one resource type in all namespaces or in a list of namespaces.

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid: string; kind: string; name: string; controller?: boolean }[];
    deletionTimestamp?: string;
    managedFields?: unknown;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export type EventType = 'add' | 'update' | 'delete';
export type Handler<T> = (type: EventType, obj: T, old?: T) => void;

export interface InformerOptions<T extends KObject> {
  client: KubeClient;
  resource: ResourceType;
  /** Undefined or empty: all namespaces. */
  namespaces?: string[];
  labelSelector?: string;
  /** Applied to every object before it is cached (default: drop managedFields). */
  transform?: (obj: KObject) => T;
  idleTimeoutMs?: number;
  staleAfterMs?: number;
  pageSize?: number;
  log?: Logger;
  metrics?: Metrics;
}

export function stripManagedFields<T extends KObject>(obj: KObject): T {
  if (obj.metadata?.managedFields) {
    const { managedFields: _, ...metadata } = obj.metadata;
    return { ...obj, metadata } as T;
  }
  return obj as T;
}

const keyOf = (o: KObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export class Informer<T extends KObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private readonly stopper = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly syncedNs = new Set<string>();
  private readonly failingSince = new Map<string, number>();
  private readonly transform: (obj: KObject) => T;
  private readonly scopes: (string | undefined)[];
  private resolveSynced!: () => void;
  /** Resolves once every namespace has been listed. */
  readonly synced: Promise<void>;
  readonly name: string;

  constructor(private readonly o: InformerOptions<T>) {
    this.transform = o.transform ?? stripManagedFields;
    this.scopes = o.namespaces?.length ? o.namespaces : [undefined];
    this.name = o.resource.plural;
    this.synced = new Promise((resolve) => {
      this.resolveSynced = resolve;
    });
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  start(): void {
    for (const ns of this.scopes) this.loops.push(this.run(ns));
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.loops);
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(`${namespace}/${name}`);
  }

  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  get size(): number {
    return this.cache.size;
  }

  get hasSynced(): boolean {
    return this.syncedNs.size === this.scopes.length;
  }

  /** True while some namespace has had no working list/watch for longer than staleAfterMs. */
  get stale(): boolean {
    const limit = this.o.staleAfterMs ?? 60_000;
    const now = Date.now();
    for (const since of this.failingSince.values()) if (now - since > limit) return true;
    return false;
  }

  private emit(type: EventType, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.o.log?.error({ err, resource: this.name }, 'informer handler failed');
      }
    }
  }

  private failing(scope: string): void {
    if (!this.failingSince.has(scope)) this.failingSince.set(scope, Date.now());
  }

  private async relist(namespace: string | undefined): Promise<string> {
    const path = pathFor(this.o.resource, namespace);
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.o.client.get<{
        metadata: { resourceVersion: string; continue?: string };
        items: KObject[];
      }>(path, {
        query: { limit: this.o.pageSize ?? 100, continue: cont, labelSelector: this.o.labelSelector },
      });
      // List items carry no apiVersion/kind; watch events do. Make cached objects alike.
      const { group, version, kind } = this.o.resource;
      const apiVersion = group ? `${group}/${version}` : version;
      for (const item of page.items) items.push(this.transform({ ...item, apiVersion, kind }));
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    // Replace this scope's part of the cache, telling handlers what changed.
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', obj, old);
    }
    for (const [key, old] of this.cache) {
      if (seen.has(key)) continue;
      if (namespace !== undefined && old.metadata.namespace !== namespace) continue;
      this.cache.delete(key);
      this.emit('delete', old);
    }
    this.o.metrics?.cacheObjects.set({ resource: this.name }, this.cache.size);
    return rv;
  }

  private async run(namespace: string | undefined): Promise<void> {
    const scope = namespace ?? '*';
    const signal = this.stopper.signal;
    const log = this.o.log?.child({ resource: this.name, namespace: scope });
    const idleMs = this.o.idleTimeoutMs ?? 5 * 60_000;
    let rv = '';
    let backoff = 200;
    while (!signal.aborted) {
      try {
        if (!rv) {
          rv = await this.relist(namespace);
          if (!this.syncedNs.has(scope)) {
            this.syncedNs.add(scope);
            if (this.hasSynced) this.resolveSynced();
          }
        }
        const watchAbort = new AbortController();
        const onStop = () => watchAbort.abort();
        signal.addEventListener('abort', onStop, { once: true });
        let lastActivity = Date.now();
        let idle = false;
        const dog = setInterval(
          () => {
            if (Date.now() - lastActivity > idleMs) {
              idle = true;
              watchAbort.abort();
            }
          },
          Math.max(50, Math.min(idleMs / 4, 10_000)),
        );
        dog.unref();
        let gone = false;
        try {
          await this.o.client.watch(
            pathFor(this.o.resource, namespace),
            {
              resourceVersion: rv,
              allowWatchBookmarks: true,
              // The server ends the watch after this; a new one resumes from rv.
              timeoutSeconds: 240 + Math.floor(Math.random() * 120),
              labelSelector: this.o.labelSelector,
            },
            (ev) => {
              lastActivity = Date.now();
              const obj = ev.object as KObject;
              switch (ev.type) {
                case 'ADDED':
                case 'MODIFIED': {
                  const t = this.transform(obj);
                  const key = keyOf(t);
                  const old = this.cache.get(key);
                  this.cache.set(key, t);
                  rv = obj.metadata.resourceVersion ?? rv;
                  this.o.metrics?.cacheObjects.set({ resource: this.name }, this.cache.size);
                  this.emit(old ? 'update' : 'add', t, old);
                  break;
                }
                case 'DELETED': {
                  const key = keyOf(obj);
                  const old = this.cache.get(key);
                  this.cache.delete(key);
                  rv = obj.metadata.resourceVersion ?? rv;
                  this.o.metrics?.cacheObjects.set({ resource: this.name }, this.cache.size);
                  this.emit('delete', this.transform(obj), old);
                  break;
                }
                case 'BOOKMARK':
                  rv = obj.metadata.resourceVersion ?? rv;
                  break;
                case 'ERROR': {
                  const status = ev.object as { code?: number; message?: string };
                  if (status.code === 410) gone = true;
                  else log?.warn({ status: status.message }, 'watch error event');
                  watchAbort.abort();
                  break;
                }
              }
            },
            watchAbort.signal,
            () => {
              this.failingSince.delete(scope);
              backoff = 200;
            },
          );
          this.o.metrics?.watchRestarts.inc({ resource: this.name, reason: 'closed' });
        } catch (err) {
          if (signal.aborted) break;
          if (gone || (err instanceof ApiError && err.code === 410)) {
            gone = true;
          } else if (idle) {
            this.o.metrics?.watchRestarts.inc({ resource: this.name, reason: 'idle' });
            log?.warn({ idleMs }, 'watch delivered nothing for too long; restarting it');
          } else if (!gone) {
            throw err;
          }
        } finally {
          clearInterval(dog);
          signal.removeEventListener('abort', onStop);
        }
        if (gone) {
          this.o.metrics?.watchRestarts.inc({ resource: this.name, reason: 'gone' });
          log?.info('resourceVersion too old (410 Gone); relisting');
          rv = '';
        }
      } catch (err) {
        if (signal.aborted) break;
        this.failing(scope);
        this.o.metrics?.watchRestarts.inc({ resource: this.name, reason: 'error' });
        log?.warn(
          { err: { message: (err as Error).message }, retryInMs: backoff },
          'list/watch failed; retrying',
        );
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 30_000);
        if (err instanceof ApiError && err.code === 410) rv = '';
      }
    }
  }
}
