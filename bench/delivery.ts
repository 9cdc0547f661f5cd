// `make bench` (delivery part): four workload processes (four seller accounts) deliver from ONE
// shared code pool on the real PostgreSQL server; measures deliveries per second (paid card →
// code sent → shipment confirmed) and the paid → sent latency at a steady rate.
// Results: bench/delivery.json and bench/DELIVERY.md. Run with --help for options.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freshDatabase } from '../test/harness/database.js';
import { simEnv, startWorkloadProcess, type WorkloadProcess } from '../test/harness/workload-process.js';
import { type Seller, startSim } from '../test/sim/index.js';
import { type Result, report } from './table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    'database-url': { type: 'string' },
    orders: { type: 'string', default: '4000' },
    rate: { type: 'string', default: '100' },
    'no-write': { type: 'boolean' },
  },
});
if (values.help) {
  console.log(`Usage: node --import tsx bench/delivery.ts [--database-url URL] [--orders N] [--rate R] [--no-write]

Four built workloads (workload/dist/main.js), one seller account each, all configured with the
same pool file, on one PostgreSQL database (--database-url, DATABASE_URL or TEST_DATABASE_URL):
  throughput  N paid orders pushed at once (N/4 per account): deliveries per second, counted from
              the first paid card to the last shipment confirmed
  warm-up     100 paid orders right after start (reported, not counted below)
  latency     paid → sent p50/p99 at R paid orders per second over the four accounts
Prints this run beside the previous one (bench/delivery.json); writes bench/delivery.json and
bench/DELIVERY.md unless --no-write.`);
  process.exit(0);
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const PROCS = 4;
const ORDERS = Number(values.orders);
const RATE = Number(values.rate);
const LATENCY_ORDERS = Math.max(200, RATE * 10);
const WARMUP_ORDERS = 100;

/** CPU seconds a process used (user + system), with its waited-for children when asked (Linux /proc). */
function cpuSeconds(pid: number, withChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14-17 of stat (utime stime cutime cstime), counted from the state field as 3.
    const [ut, st, cut, cst] = [f[11], f[12], f[13], f[14]].map(Number) as [number, number, number, number];
    return (ut + st + (withChildren ? cut + cst : 0)) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0; // gone
  }
}

/** The PostgreSQL server's CPU seconds: the postmaster, its exited backends and the live ones. */
async function postgresCpu(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
  );
  const checkpointer = rows[0]?.pid;
  if (!checkpointer) return Number.NaN;
  const ppidOf = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  };
  const postmaster = ppidOf(checkpointer);
  let total = cpuSeconds(postmaster, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (ppidOf(Number(d)) === postmaster) total += cpuSeconds(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

const round1 = (v: number) => Number(v.toFixed(1));

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]!.toFixed(1);
  const admin = values['database-url'] ?? process.env.DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!admin)
    throw new Error(
      'needs PostgreSQL: --database-url, DATABASE_URL or TEST_DATABASE_URL (make bench starts one)',
    );
  const dbUrl = await freshDatabase('bench_delivery', admin);

  const sim = await startSim();
  const dir = mkdtempSync(join(tmpdir(), 'xianyu-bench-dl-'));
  const poolFile = join(dir, 'codes.txt');
  const totalCodes = ORDERS + LATENCY_ORDERS + WARMUP_ORDERS + 100;
  writeFileSync(
    poolFile,
    `${Array.from({ length: totalCodes }, (_, i) => `BENCH-${i}-${Math.random().toString(36).slice(2, 10)}`).join('\n')}\n`,
  );
  const accounts: { seller: Seller; itemId: string; wl?: WorkloadProcess }[] = [];
  for (let i = 0; i < PROCS; i++) {
    const seller = sim.createSeller();
    const itemId = sim.createItem({ sellerId: seller.unb, title: '激活码', price: '1' }).itemId;
    accounts.push({ seller, itemId });
  }
  const sentAt = new Map<string, number>();
  const confirmed = new Map<string, number>();
  const paidAt = new Map<string, number>();
  sim.onSend((s) => {
    const m = /#(\d+)$/.exec(s.text ?? '');
    if (m?.[1] && !sentAt.has(m[1])) sentAt.set(m[1], performance.now());
  });
  sim.onShipped((o) => {
    if (!confirmed.has(o.orderId)) confirmed.set(o.orderId, performance.now());
  });
  try {
    await Promise.all(
      accounts.map(async (a, i) => {
        a.wl = await startWorkloadProcess({
          config: {
            account: { id: `bench-${i}` },
            session: { registerSettleMs: 0 },
            log: { level: 'warn' },
            reply: { debounceMs: 0 },
            delivery: {
              unitIntervalMs: 0,
              concurrency: 64,
              pools: { shared: { file: poolFile, lowStock: 0 } },
              rules: [
                {
                  name: 'codes',
                  itemIds: [a.itemId],
                  source: { type: 'pool', pool: 'shared' },
                  message: '{code} #{order_id}',
                },
              ],
            },
          },
          env: {
            ...simEnv(sim, a.seller),
            DATABASE_URL: dbUrl,
          },
          dir: mkdtempSync(join(tmpdir(), `xianyu-bench-dl-${i}-`)),
        });
      }),
    );
    // Every process has imported (or seen) the shared pool before the clock starts.
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    for (;;) {
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pool_codes WHERE pool = 'shared'",
      );
      if (rows[0]!.n === totalCodes) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    let nextOrder = 6_000_000_000_000;
    const push = async (a: (typeof accounts)[number], n: number) => {
      const orderId = String(nextOrder++);
      paidAt.set(orderId, performance.now());
      await sim.pushTradeCard({
        sellerId: a.seller.unb,
        buyerId: String(3_900_000_000 + n),
        itemId: a.itemId,
        orderId,
        kind: 'paid',
      });
      return orderId;
    };
    const waitShipped = async (ids: string[], timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!ids.every((id) => confirmed.has(id))) {
        if (Date.now() > deadline)
          throw new Error(
            `only ${ids.filter((id) => confirmed.has(id)).length}/${ids.length} delivered in time`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    // Warm-up, not measured: a few orders per account, so that the latency phase measures the
    // steady state and not the first calls of each code path, connection and prepared statement.
    const warmIds: string[] = [];
    for (let i = 0; i < WARMUP_ORDERS; i++) {
      warmIds.push(await push(accounts[i % PROCS]!, 50_000 + i));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitShipped(warmIds, 60_000);
    const warm = warmIds.map((id) => sentAt.get(id)! - paidAt.get(id)!).sort((a, b) => a - b);

    // Latency at a steady rate (first, on a quiet system).
    log(`latency: ${LATENCY_ORDERS} paid orders at ${RATE}/s over ${PROCS} accounts`);
    const latIds: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < LATENCY_ORDERS; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      latIds.push(await push(accounts[i % PROCS]!, i));
    }
    await waitShipped(latIds, 60_000);
    const lat = latIds.map((id) => sentAt.get(id)! - paidAt.get(id)!).sort((a, b) => a - b);

    // Throughput: everything at once.
    log(`throughput: ${ORDERS} paid orders at once over ${PROCS} accounts`);
    const ids: string[] = [];
    const cpu0 = {
      workloads: accounts.reduce((t, a) => t + cpuSeconds(a.wl!.child.pid!), 0),
      postgres: await postgresCpu(db),
      sim: process.cpuUsage(),
    };
    const start = performance.now();
    for (let i = 0; i < ORDERS; i++) ids.push(await push(accounts[i % PROCS]!, 100_000 + i));
    await waitShipped(ids, 300_000);
    const cpuMs = (s: number) => Number(((s * 1000) / ORDERS).toFixed(2));
    const cpu = {
      workloads: cpuMs(accounts.reduce((t, a) => t + cpuSeconds(a.wl!.child.pid!), 0) - cpu0.workloads),
      postgres: cpuMs((await postgresCpu(db)) - cpu0.postgres),
      sim: cpuMs(((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0.sim))),
    };
    log(`CPU per delivery: ${JSON.stringify(cpu)} ms`);
    const end = Math.max(...ids.map((id) => confirmed.get(id)!));
    const perSecond = ORDERS / ((end - start) / 1000);
    const sentPerSecond = ORDERS / ((Math.max(...ids.map((id) => sentAt.get(id)!)) - start) / 1000);

    const warnings = new Map<string, number>();
    for (const a of accounts) {
      for (const l of a.wl!.logs()) {
        if (l.level === 'warn' || l.level === 'error') {
          const k = `${String(l.msg)}${l.reason ? ` (${String(l.reason)})` : ''}`;
          warnings.set(k, (warnings.get(k) ?? 0) + 1);
        }
      }
    }
    if (warnings.size) log(`workload warnings: ${JSON.stringify(Object.fromEntries(warnings))}`);

    // Exactly once, also at speed.
    const { rows } = await db.query<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT code_id)::int AS d FROM delivery_units',
    );
    await db.end();
    const sends = sim.sent().length;
    const expected = ORDERS + LATENCY_ORDERS + WARMUP_ORDERS;
    if (rows[0]!.n !== expected || rows[0]!.d !== expected || sends !== expected) {
      throw new Error(
        `exactly-once violated: units ${rows[0]!.n}, distinct codes ${rows[0]!.d}, sends ${sends}, orders ${expected}`,
      );
    }

    const info = (name: string, value: number, unit: string) => ({
      name,
      value,
      unit,
      target: '-',
      ok: true,
    });
    const results: Result[] = [
      {
        name: 'deliveries per second (paid → sent → confirmed)',
        value: Math.round(perSecond),
        unit: '/s',
        target: '≥ 500',
        ok: perSecond >= 500,
      },
      info('codes sent per second', Math.round(sentPerSecond), '/s'),
      info('CPU per delivery, the 4 workloads', cpu.workloads, 'ms'),
      info('CPU per delivery, PostgreSQL', cpu.postgres, 'ms'),
      info('CPU per delivery, simulator', cpu.sim, 'ms'),
      info(`paid → sent p50, first ${WARMUP_ORDERS} orders after start`, round1(percentile(warm, 50)), 'ms'),
      info(`paid → sent max, first ${WARMUP_ORDERS} orders after start`, round1(percentile(warm, 100)), 'ms'),
      info(`paid → sent p50 at ${RATE}/s`, round1(percentile(lat, 50)), 'ms'),
      {
        name: `paid → sent p99 at ${RATE}/s`,
        value: round1(percentile(lat, 99)),
        unit: 'ms',
        target: '≤ 50',
        ok: percentile(lat, 99) <= 50,
      },
    ];
    report({
      title: 'Auto-delivery benchmark',
      file: 'delivery',
      about: `\`make bench\` → \`bench/delivery.ts\`: four workload processes (one seller account each) deliver
from one shared code pool on one PostgreSQL database (scripts/with-postgres.sh, fsync off); every
order is one unit; the simulator runs in the bench process on the same CPUs. ${WARMUP_ORDERS} warm-up
orders right after start are reported apart; then ${LATENCY_ORDERS} orders at ${RATE}/s (latency), then
${ORDERS} at once (throughput, first paid card to last shipment confirmed). 2 CPUs give 4 ms of CPU
per delivery at 500/s. Load average before the run: ${loadAtStart}.`,
      runs: [{ variant: `${PROCS} processes, one pool`, results }],
      write: !values['no-write'],
    });
  } finally {
    await Promise.all(accounts.map((a) => a.wl?.stop()));
    await sim.close();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`bench/delivery: ${err.message}`);
    process.exit(1);
  },
);
