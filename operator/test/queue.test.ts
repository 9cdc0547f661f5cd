import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMetrics } from '../src/metrics/registry.js';
import { RateLimiter, TokenBucket } from '../src/queue/rate-limiter.js';
import { runWorkers } from '../src/queue/workers.js';
import { WorkQueue } from '../src/queue/workqueue.js';

test('per-key exponential backoff, reset by forget', () => {
  const rl = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1000, qps: 1e9, burst: 1e9 });
  assert.deepEqual(
    Array.from({ length: 10 }, () => rl.when('a')),
    [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000],
  );
  assert.equal(rl.when('b'), 5, 'keys back off independently');
  assert.equal(rl.retries('a'), 10);
  rl.forget('a');
  assert.equal(rl.when('a'), 5);
});

test('the overall token bucket bounds retries of all keys together', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 3, () => now);
  assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 0, 0]);
  assert.equal(bucket.reserve(), 100);
  assert.equal(bucket.reserve(), 200);
  now = 1000; // ten tokens' worth later, but the burst caps the refill
  assert.equal(bucket.reserve(), 0);
  const rl = new RateLimiter({ baseDelayMs: 1, qps: 10, burst: 1, now: () => now });
  assert.equal(rl.when('x'), 1);
  assert.equal(rl.when('y'), 100, 'a fresh key still waits for the bucket');
});

test('de-duplication: a key is queued once, and re-runs once if added while processing', async () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('a');
  q.add('b');
  assert.equal(q.length, 2);
  const k = await q.get();
  assert.equal(k, 'a');
  q.add('a'); // while processing: not queued yet
  q.add('a');
  assert.equal(q.length, 1);
  q.done('a');
  assert.equal(q.length, 2, 'a queued again after done');
  assert.equal(await q.get(), 'b');
  assert.equal(await q.get(), 'a');
  q.shutDown();
  assert.equal(await q.get(), undefined);
});

test('addAfter keeps the earliest time; shutDown cancels delayed adds', async () => {
  const q = new WorkQueue();
  q.addAfter('a', 200);
  q.addAfter('a', 20);
  q.addAfter('a', 500);
  await sleep(60);
  assert.equal(q.length, 1);
  q.addAfter('b', 30);
  q.shutDown();
  await sleep(60);
  assert.equal(q.length, 0, 'shutDown drops queued keys and cancels delayed adds');
  assert.equal(await q.get(), undefined);
});

test('workers: bounded concurrency, never the same key twice at once, errors back off, metrics', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const q = new WorkQueue(new RateLimiter({ baseDelayMs: 10 }), metrics);
  let running = 0;
  let maxRunning = 0;
  const perKey = new Map<string, number>();
  let failuresLeft = 3;
  const seen: string[] = [];
  const workers = runWorkers({
    queue: q,
    concurrency: 3,
    controller: 'xianyuaccount',
    metrics,
    reconcile: async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      assert.equal(perKey.get(key), 1, `${key} processed twice at once`);
      await sleep(15);
      perKey.set(key, 0);
      running--;
      seen.push(key);
      if (key === 'flaky' && failuresLeft-- > 0) throw new Error('boom');
      return undefined;
    },
  });
  for (let i = 0; i < 10; i++) q.add(`k${i}`);
  q.add('flaky');
  await sleep(5);
  for (let i = 0; i < 10; i++) q.add(`k${i}`); // some are being processed: they run again once
  const deadline = Date.now() + 5000;
  while ((q.pending > 0 || seen.filter((k) => k === 'flaky').length < 4) && Date.now() < deadline)
    await sleep(10);
  q.shutDown();
  await workers.stopped;
  assert.equal(maxRunning, 3);
  assert.equal(seen.filter((k) => k === 'flaky').length, 4, 'three failures then success');
  for (let i = 0; i < 10; i++) {
    const n = seen.filter((k) => k === `k${i}`).length;
    assert.ok(n === 1 || n === 2, `k${i} ran ${n} times`);
  }
  const text = await metrics.registry.metrics();
  assert.match(text, /controller_runtime_reconcile_total\{controller="xianyuaccount",result="success"\} \d+/);
  assert.match(text, /controller_runtime_reconcile_total\{controller="xianyuaccount",result="error"\} 3/);
  assert.match(text, /controller_runtime_reconcile_errors_total\{controller="xianyuaccount"\} 3/);
  assert.match(text, /workqueue_retries_total\{controller="xianyuaccount",name="xianyuaccount"\} 3/);
  assert.match(text, /workqueue_adds_total\{controller="xianyuaccount",name="xianyuaccount"\} \d+/);
  assert.match(text, /workqueue_depth\{controller="xianyuaccount",name="xianyuaccount"\} 0/);
  assert.match(
    text,
    /workqueue_queue_duration_seconds_count\{controller="xianyuaccount",name="xianyuaccount"\} \d+/,
  );
  assert.match(text, /workqueue_work_duration_seconds_count/);
  assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="xianyuaccount"\} \d+/);
  assert.match(text, /controller_runtime_max_concurrent_reconciles\{controller="xianyuaccount"\} 3/);
});
