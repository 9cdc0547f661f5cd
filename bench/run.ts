// `make bench`: drives the built workload through the simulator on loopback and prints reply
// latency, sustained throughput and memory beside the targets and the previous run.
// Results go to bench/results.json and bench/RESULTS.md. Run with --help for options.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { simEnv, startWorkloadProcess, type WorkloadProcess } from '../test/harness/workload-process.js';
import { type Seller, type Sim, startSim } from '../test/sim/index.js';
import { type Result, type Run, report } from './table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    'database-url': { type: 'string' },
    'no-write': { type: 'boolean' },
  },
});
if (values.help) {
  console.log(`Usage: node --import tsx bench/run.ts [--database-url URL] [--no-write]

Measures the reply workload (workload/dist/main.js) against the simulator on loopback:
  latency     p50/p99 from the buyer's push to the reply arriving, at 100 messages/s over 50 chats
  throughput  the highest offered rate (messages/s) answered completely and on time
  memory      workload RSS after 10 000 messages
Storage is embedded PGlite unless --database-url (or DATABASE_URL) names a PostgreSQL server.
Writes bench/results.json and bench/RESULTS.md unless --no-write.`);
  process.exit(0);
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

class Driver {
  private pending = new Map<string, number[]>();
  latencies: number[] = [];
  replies = 0;
  sent = 0;
  chats: string[] = [];

  constructor(
    private readonly sim: Sim,
    private readonly seller: Seller,
    private readonly itemId: string,
  ) {
    sim.onSend((s) => {
      if (s.sellerId !== seller.unb) return;
      this.replies++;
      const q = this.pending.get(s.chatId);
      const t0 = q?.shift();
      if (t0 !== undefined) this.latencies.push(performance.now() - t0);
    });
  }

  async openChats(n: number): Promise<void> {
    // One message per chat first, so every chat exists before measuring.
    for (let i = this.chats.length; i < n; i++) {
      const buyerId = String(3_300_000_000 + i);
      const { chatId } = await this.sim.buyerSays({
        sellerId: this.seller.unb,
        buyerId,
        buyerNick: `买家${i}`,
        itemId: this.itemId,
        text: '你好',
      });
      this.chats.push(chatId);
      this.sent++;
    }
    await this.settle(30_000);
  }

  /** Sends `rate` messages/s for `seconds`, round-robin over the first `chats` chats. */
  async offer(rate: number, seconds: number, chats: number, record: boolean): Promise<void> {
    const tickMs = 10;
    const total = Math.round(rate * seconds);
    const start = performance.now();
    let n = 0;
    while (n < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      const batch: Promise<unknown>[] = [];
      for (; n < due; n++) {
        const idx = n % chats;
        const chatId = this.chats[idx]!;
        if (record) {
          const q = this.pending.get(chatId) ?? [];
          q.push(performance.now());
          this.pending.set(chatId, q);
        }
        this.sent++;
        batch.push(
          this.sim.buyerSays({
            sellerId: this.seller.unb,
            buyerId: String(3_300_000_000 + idx),
            itemId: this.itemId,
            text: n % 3 === 0 ? '请问怎么发货' : `第${n}条消息`,
          }),
        );
      }
      await Promise.all(batch);
      await sleep(tickMs);
    }
  }

  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.replies < this.sent) {
      if (performance.now() > deadline) return false;
      await sleep(5);
    }
    return true;
  }

  resetLatency(): void {
    this.latencies = [];
    this.pending.clear();
  }
}

async function runOnce(dbUrl: string | undefined, nodeOptions = ''): Promise<Result[]> {
  const sim = await startSim();
  const seller = sim.createSeller({ nick: 'bench' });
  const item = sim.createItem({ sellerId: seller.unb, title: '激活码', price: '10' });
  const dir = mkdtempSync(join(tmpdir(), 'xianyu-bench-'));
  let wl: WorkloadProcess | undefined;
  const results: Result[] = [];
  try {
    wl = await startWorkloadProcess({
      dir,
      config: {
        account: { id: 'bench' },
        session: { registerSettleMs: 0 },
        reply: {
          debounceMs: 0,
          rateLimit: { perMinute: 100_000_000 },
          default: { text: '您好，在的' },
          keywords: [{ match: ['发货'], reply: '自动发货，{item_title}' }],
        },
        log: { level: 'warn' },
      },
      env: {
        NODE_OPTIONS: nodeOptions,
        ...simEnv(sim, seller),
        LOG_LEVEL: 'warn',
        ...(dbUrl ? { DATABASE_URL: dbUrl } : {}),
      },
    });
    const pid = wl.child.pid!;
    const d = new Driver(sim, seller, item.itemId);
    log(`bench: workload pid ${pid} on ${dbUrl ? 'PostgreSQL' : 'PGlite'}; opening 50 chats`);
    await d.openChats(50);

    log('bench: warm-up 500 messages');
    await d.offer(250, 2, 50, false);
    await d.settle(30_000);

    log('bench: latency at 100 messages/s over 50 chats for 10 s');
    d.resetLatency();
    await d.offer(100, 10, 50, true);
    await d.settle(30_000);
    const lat = [...d.latencies].sort((a, b) => a - b);
    results.push({
      name: 'reply latency p50 (100 msg/s, 50 chats)',
      value: percentile(lat, 50),
      unit: 'ms',
      target: '-',
      ok: true,
    });
    const p99 = percentile(lat, 99);
    results.push({
      name: 'reply latency p99 (100 msg/s, 50 chats)',
      value: p99,
      unit: 'ms',
      target: '≤ 5',
      ok: p99 <= 5,
    });

    const remaining = Math.max(0, 10_000 - d.sent);
    log(`bench: ${remaining} more messages to reach 10 000`);
    if (remaining > 0) {
      await d.offer(500, remaining / 500, 50, false);
      await d.settle(60_000);
    }
    const rss = rssMiB(pid);
    results.push({
      name: 'RSS after 10 000 messages (500 msg/s)',
      value: rss,
      unit: 'MiB',
      target: '≤ 80',
      ok: rss <= 80,
    });
    let best = 0;
    for (const rate of [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000]) {
      log(`bench: throughput ${rate} messages/s for 3 s`);
      const before = d.replies;
      const start = performance.now();
      await d.offer(rate, 3, 50, false);
      const onTime = await d.settle(2_000);
      const elapsed = (performance.now() - start) / 1000;
      const achieved = (d.replies - before) / elapsed;
      log(`bench:   answered ${Math.round(achieved)}/s${onTime ? '' : ' (backlog after 2 s)'}`);
      if (!onTime || achieved < rate * 0.9) {
        await d.settle(60_000);
        break;
      }
      best = rate;
    }
    results.push({
      name: 'highest sustained rate',
      value: best,
      unit: 'msg/s',
      target: '≥ 2000',
      ok: best >= 2000,
    });

    results.push({
      name: 'replies / messages',
      value: d.replies / d.sent,
      unit: '',
      target: '= 1',
      ok: d.replies === d.sent,
    });
  } finally {
    await wl?.stop('SIGTERM');
    await sim.close();
  }
  return results;
}

/** The V8 flags the workload image runs with (ENV NODE_OPTIONS in Dockerfile.workload), if any. */
function imageNodeOptions(): string {
  const dockerfile = new URL('../Dockerfile.workload', import.meta.url).pathname;
  const m = /^\s*(?:ENV\s+)?NODE_OPTIONS="([^"]+)"/m.exec(readFileSync(dockerfile, 'utf8'));
  return m?.[1] ?? '';
}

async function main(): Promise<number> {
  const dbUrl = values['database-url'] ?? process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  const runs: Run[] = [];
  const imageFlags = imageNodeOptions();
  if (dbUrl) {
    runs.push({ variant: 'PostgreSQL', results: await runOnce(dbUrl) });
    if (imageFlags) {
      log(`bench: again with the workload image's NODE_OPTIONS (${imageFlags})`);
      runs.push({ variant: `PostgreSQL, ${imageFlags}`, results: await runOnce(dbUrl, imageFlags) });
    }
  } else log('bench: no PostgreSQL URL (run through `make bench`): PGlite only');
  runs.push({ variant: 'PGlite', results: await runOnce(undefined) });
  report({
    title: 'Reply workload benchmark',
    file: 'results',
    about:
      "Produced by `make bench` (bench/run.ts). Latency is measured from the simulator pushing a buyer's message to the simulator receiving the reply, over real loopback sockets; the simulator runs in the benchmark's process, the workload in its own. Targets apply to the deployed shape (PostgreSQL server); embedded PGlite is measured beside it.",
    runs,
    write: !values['no-write'],
  });
  // The targets are for the deployed shape (a PostgreSQL server); PGlite is reported beside it.
  return 0; // missed targets show as MISSED in the table; only a failure to measure is an error
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`bench failed: ${err.stack}`);
    process.exit(1);
  },
);
