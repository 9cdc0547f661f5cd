import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { KubeClient } from '../src/kube/client.js';
import { Informer, type KObject } from '../src/kube/informer.js';
import { RESOURCES } from '../src/kube/resources.js';
import { createMetrics } from '../src/metrics/registry.js';
import { sumMetric } from './support/operator-process.js';

// The informer against a scripted fake API server (plain HTTP): list, watch, bookmarks,
// 410 Gone, a silent watch, and a dropped connection.

type Script = (res: ServerResponse, query: URLSearchParams) => void;
let lists: Script[] = [];
let watches: Script[] = [];
const seen: { kind: 'list' | 'watch'; rv: string | null }[] = [];
let url = '';
const server = createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://x');
  const watch = u.searchParams.get('watch') === 'true';
  seen.push({ kind: watch ? 'watch' : 'list', rv: u.searchParams.get('resourceVersion') });
  const script = (watch ? watches : lists).shift();
  if (!script) {
    // Nothing scripted: a watch that stays open and silent until the client goes.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    return;
  }
  script(res, u.searchParams);
});

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const cm = (name: string, rv: string) => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, managedFields: [{}] },
});
const list =
  (rv: string, items: unknown[]): Script =>
  (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ metadata: { resourceVersion: rv }, items }));
  };
const events =
  (evs: unknown[], end = true): Script =>
  (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (const e of evs) res.write(`${JSON.stringify(e)}\n`);
    if (end) res.end();
  };

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('list, watch, bookmarks, 410 Gone relist (with missed deletes), watchdog restarts a silent watch', async () => {
  seen.length = 0;
  lists = [list('10', [cm('a', '5'), cm('b', '6')]), list('30', [cm('a', '25'), cm('c', '28')])];
  watches = [
    events([
      { type: 'ADDED', object: { kind: 'ConfigMap', ...cm('d', '11') } },
      { type: 'MODIFIED', object: { kind: 'ConfigMap', ...cm('a', '12') } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } },
    ]),
    events([{ type: 'DELETED', object: cm('d', '16') }]),
    events(
      [{ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } }],
      false,
    ),
    // after the relist: a watch that says nothing (the watchdog ends it), then another one.
  ];
  const metrics = createMetrics({ defaultMetrics: false });
  const client = new KubeClient({ server: url, apply: async () => {} }, metrics);
  const informer = new Informer<KObject>({
    client,
    resource: RESOURCES.ConfigMap,
    idleTimeoutMs: 300,
    metrics,
  });
  const log: string[] = [];
  informer.on((type, obj) => log.push(`${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`));
  informer.start();
  await informer.synced;
  assert.equal(informer.hasSynced, true);
  let metricsText = '';
  await until(
    'relisted and the watchdog fired',
    () => {
      void metrics.registry.metrics().then((t) => {
        metricsText = t;
      });
      return sumMetric(metricsText, 'xianyu_operator_watch_restarts_total', { reason: 'idle' }) >= 1;
    },
    8000,
  );
  await informer.stop();
  client.close();

  assert.deepEqual(log, [
    'add a@5',
    'add b@6',
    'add d@11',
    'update a@12',
    'delete d@16',
    // relist after 410: a changed, b deleted while we were away, c new
    'update a@25',
    'add c@28',
    'delete b@6',
  ]);
  assert.deepEqual(
    informer
      .list()
      .map((o) => o.metadata.name)
      .sort(),
    ['a', 'c'],
  );
  const cached = informer.get('ns', 'a')!;
  assert.equal(cached.metadata.managedFields, undefined, 'managedFields dropped');
  assert.equal(cached.kind, 'ConfigMap', 'listed objects carry their kind');
  assert.equal(cached.apiVersion, 'v1');
  // Watches resumed from the last resourceVersion: after the bookmark (15), after the delete (16).
  assert.deepEqual(
    seen.slice(0, 6).map((s) => `${s.kind}:${s.rv ?? ''}`),
    ['list:', 'watch:10', 'watch:15', 'watch:16', 'list:', 'watch:30'],
  );
  assert.ok(
    seen.filter((s) => s.kind === 'watch' && s.rv === '30').length >= 2,
    'the watchdog restarted the watch',
  );
  assert.equal(sumMetric(metricsText, 'xianyu_operator_watch_restarts_total', { reason: 'gone' }), 1);
});

test('a failing API server makes the informer stale after staleAfterMs, and it recovers', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  seen.length = 0;
  lists = [
    (res) => {
      res.writeHead(503).end('{"reason":"ServiceUnavailable"}');
    },
    (res) => {
      res.writeHead(503).end('{"reason":"ServiceUnavailable"}');
    },
    (res) => {
      res.writeHead(503).end('{"reason":"ServiceUnavailable"}');
    },
    list('50', [cm('x', '50')]),
  ];
  watches = [];
  const client = new KubeClient({ server: url, apply: async () => {} }, metrics);
  const informer = new Informer<KObject>({
    client,
    resource: RESOURCES.ConfigMap,
    staleAfterMs: 100,
    metrics,
  });
  informer.start();
  await until('stale', () => informer.stale, 3000);
  assert.equal(informer.hasSynced, false);
  await informer.synced;
  await until('fresh again', () => !informer.stale, 5000);
  assert.equal(informer.get('ns', 'x')?.metadata.resourceVersion, '50');
  await informer.stop();
  client.close();
});
