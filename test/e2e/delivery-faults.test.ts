// Exactly-once under SIGKILL, on the real PostgreSQL server (TEST_DATABASE_URL): two workload
// processes race for one account while the test hook XIANYU_CRASH_AT kills the holder at every
// delivery step boundary (after claim, after send before record, after record before confirm,
// mid-import); a supervisor keeps two processes alive. Over 200 paid orders with random
// quantities, afterwards: every unit has exactly one code, no code is given twice, claimed +
// free equals the imported stock, and the simulator saw each code sent exactly once, in the
// order's chat, to its buyer.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { freshDatabase } from '../harness/database.js';
import {
  pollUntil,
  simEnv,
  startWorkloadProcess,
  type WorkloadProcess,
} from '../harness/workload-process.js';
import { type Seller, type Sim, startSim } from '../sim/index.js';

const ORDERS = 200;
const POOL_SIZE = 1000;
const CRASH = 'after-claim:0.03,after-send:0.03,after-record:0.03,mid-import:0.3';

describe('exactly-once delivery under SIGKILL at every step boundary (PostgreSQL)', () => {
  let sim: Sim;
  let seller: Seller;
  let dbUrl: string;
  let dir: string;
  const procs = new Set<WorkloadProcess>();
  const crashedAt: string[] = [];
  let spawned = 0;
  let supervising = true;
  /** Starts in flight: the end of the test waits for them, so none outlives it. */
  const spawning = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    spawning.add(p);
    void p.finally(() => spawning.delete(p));
  };

  before(async () => {
    dbUrl = await freshDatabase('faults');
    sim = await startSim();
    seller = sim.createSeller();
    dir = mkdtempSync(join(tmpdir(), 'xianyu-faults-'));
  });

  after(async () => {
    supervising = false;
    await Promise.allSettled([...spawning]);
    await Promise.all([...procs].map((p) => p.stop('SIGKILL')));
    await sim?.close();
  });

  it('200 paid orders, random quantities, two racing processes, crashes everywhere', async () => {
    const codes = Array.from(
      { length: POOL_SIZE },
      (_, i) => `CODE-${String(i).padStart(4, '0')}-${Math.random().toString(36).slice(2, 8)}`,
    );
    const poolFile = join(dir, 'codes.txt');
    writeFileSync(poolFile, `${codes.join('\n')}\n`);
    const itemId = sim.createItem({ sellerId: seller.unb, title: '激活码', price: '5' }).itemId;
    const config = {
      account: { id: `faults-${seller.unb}` },
      session: { registerSettleMs: 0, heartbeatIntervalMs: 2000, heartbeatTimeoutMs: 2000 },
      reply: { debounceMs: 0 },
      log: { level: process.env.FAULTS_LOG_DIR ? 'info' : 'warn' },
      delivery: {
        unitIntervalMs: 0,
        retryIntervalMs: 500,
        poolCheckIntervalMs: 200,
        orderDetails: { source: 'http', url: `${sim.url}/order-detail?orderId={order_id}&role=seller` },
        pools: { codes: { file: poolFile, lowStock: 0 } },
        rules: [
          { name: 'codes', itemIds: [itemId], source: { type: 'pool', pool: 'codes' }, message: '{code}' },
        ],
      },
    };
    const env = {
      ...simEnv(sim, seller),
      DATABASE_URL: dbUrl,
    };

    // The supervisor: two processes for one account at all times; a dead one is replaced.
    const spawn = async (): Promise<void> => {
      const n = spawned++;
      // The first process dies at its first import batch for sure; later ones by chance.
      const crash = n === 0 ? CRASH.replace('mid-import:0.3', 'mid-import:1') : CRASH;
      const p = await startWorkloadProcess({
        config,
        env: { ...env, XIANYU_CRASH_AT: crash },
        dir: mkdtempSync(join(tmpdir(), `xianyu-faults-p${n}-`)),
        waitReady: false,
      }).catch((err: Error) => {
        // Killed by the hook before its HTTP server answered: counts like any other crash.
        const m = /SIGKILL at ([a-z-]+)/.exec(err.message);
        if (m?.[1]) crashedAt.push(m[1]);
        return undefined;
      });
      if (!p) {
        if (supervising) await spawn();
        return;
      }
      if (!supervising) {
        await p.stop('SIGKILL'); // started while the test was finishing
        return;
      }
      procs.add(p);
      p.child.once('exit', () => {
        procs.delete(p);
        if (process.env.FAULTS_LOG_DIR)
          writeFileSync(join(process.env.FAULTS_LOG_DIR, `p${n}.log`), p.output().join('\n'));
        const line = p.output().find((l) => l.startsWith('XIANYU_CRASH_AT: SIGKILL at'));
        if (line) crashedAt.push(line.replace('XIANYU_CRASH_AT: SIGKILL at ', ''));
        if (supervising) track(spawn());
      });
    };
    // The first process starts alone, so the first import is its own and it dies mid-import for
    // sure (a racing second process could import the file first); the supervisor replaces it,
    // and from then on two processes race.
    await spawn();
    await pollUntil(async () => crashedAt.includes('mid-import'), 60_000, 'the first crash at mid-import');
    await spawn();
    const stopAll = async () => {
      supervising = false;
      await Promise.allSettled([...spawning]);
      await Promise.all([...procs].map((p) => p.stop('SIGKILL')));
    };

    // 200 paid orders, each in its own chat, pushed in bursts while processes die and take over.
    const orders: { orderId: string; buyerId: string; chatId: string; quantity: number }[] = [];
    const base = 5_100_000_000_000 + Math.floor(Math.random() * 1e9);
    for (let i = 0; i < ORDERS; i++) {
      const orderId = String(base + i);
      const buyerId = String(3_800_000_000 + i);
      const quantity = 1 + Math.floor(Math.random() * 3);
      const { chatId } = await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId,
        itemId,
        orderId,
        kind: 'paid',
        quantity,
      });
      orders.push({ orderId, buyerId, chatId, quantity });
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 40));
    }
    const units = orders.reduce((n, o) => n + o.quantity, 0);

    // Wait (with a deadline) until every order is shipped in the simulator and confirmed in the database.
    const db = new pg.Client({ connectionString: dbUrl });
    await db.connect();
    try {
      const deadline = Date.now() + 100_000;
      for (;;) {
        const shipped = sim.orders(seller.unb).filter((o) => o.shippedAt).length;
        const { rows } = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM orders WHERE delivery_state = 'confirmed'",
        );
        if (shipped === ORDERS && rows[0]!.n === ORDERS) break;
        if (Date.now() > deadline) {
          const { rows: st } = await db.query<{ s: string; n: number }>(
            `SELECT delivery_state || ':' || COALESCE(waiting_reason, '-') || ':' || status AS s, count(*)::int AS n
             FROM orders GROUP BY 1`,
          );
          const known = await db.query<{ order_id: string }>('SELECT order_id FROM orders');
          const ids = new Set(known.rows.map((r) => r.order_id));
          const missing = orders.filter((o) => !ids.has(o.orderId)).map((o) => o.orderId);
          assert.fail(
            `not done in time: shipped ${shipped}/${ORDERS}, confirmed ${rows[0]!.n}; crashes ${crashedAt.length}; ` +
              `states ${JSON.stringify(st)}; never recorded ${missing.length}: ${missing.slice(0, 5).join(' ')}; ` +
              `running ${procs.size}; last lines: ${[...procs].flatMap((p) => p.output().slice(-5)).join(' | ')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await stopAll();

      // Crashes happened at every boundary.
      for (const point of ['after-claim', 'after-send', 'after-record', 'mid-import']) {
        assert.ok(crashedAt.includes(point), `a crash at ${point} (crashes: ${crashedAt.join(', ')})`);
      }

      // Every unit has exactly one code; no code twice.
      const { rows: unitRows } = await db.query<{
        order_id: string;
        unit: number;
        state: string;
        code: string | null;
      }>(
        `SELECT u.order_id, u.unit, u.state, c.code FROM delivery_units u LEFT JOIN pool_codes c ON c.id = u.code_id`,
      );
      assert.equal(unitRows.length, units, 'one row per ordered unit');
      const byOrder = new Map<string, typeof unitRows>();
      for (const r of unitRows) byOrder.set(r.order_id, [...(byOrder.get(r.order_id) ?? []), r]);
      for (const o of orders) {
        const us = byOrder.get(o.orderId) ?? [];
        assert.deepEqual(
          us.map((u) => u.unit).sort((a, b) => a - b),
          Array.from({ length: o.quantity }, (_, i) => i),
          `order ${o.orderId} has units 0..${o.quantity - 1}`,
        );
        for (const u of us) {
          assert.ok(u.code, `order ${o.orderId} unit ${u.unit} has a code`);
          assert.equal(u.state, 'confirmed');
        }
      }
      const given = unitRows.map((u) => u.code!);
      assert.equal(new Set(given).size, given.length, 'no code given twice');

      // claimed + free = imported stock (and the stock is exactly the file).
      const { rows: stock } = await db.query<{
        free: number;
        claimed: number;
        total: number;
        withdrawn: number;
      }>(
        `SELECT count(*) FILTER (WHERE account_id IS NULL AND NOT withdrawn)::int AS free,
                count(*) FILTER (WHERE account_id IS NOT NULL)::int AS claimed,
                count(*) FILTER (WHERE withdrawn)::int AS withdrawn,
                count(*)::int AS total
         FROM pool_codes WHERE pool = 'codes'`,
      );
      assert.deepEqual(stock[0], { free: POOL_SIZE - units, claimed: units, withdrawn: 0, total: POOL_SIZE });
      const { rows: orphans } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pool_codes c WHERE c.account_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM delivery_units u WHERE u.code_id = c.id)`,
      );
      assert.equal(orphans[0]!.n, 0, 'every claimed code belongs to a unit');

      // The simulator's record: each code sent exactly once, in its order's chat, to its buyer.
      const sent = sim.sent(seller.unb);
      const byText = new Map<string, typeof sent>();
      for (const s of sent) byText.set(s.text ?? '', [...(byText.get(s.text ?? '') ?? []), s]);
      const inFile = new Set(codes);
      for (const s of sent) assert.ok(inFile.has(s.text ?? ''), 'only codes were sent');
      for (const o of orders) {
        for (const u of byOrder.get(o.orderId)!) {
          const copies = byText.get(u.code!) ?? [];
          assert.equal(
            copies.length,
            1,
            `code of order ${o.orderId} unit ${u.unit} sent ${copies.length} times`,
          );
          assert.equal(copies[0]!.chatId, o.chatId, 'in the order chat');
          assert.deepEqual(copies[0]!.toUserIds, [o.buyerId], 'to the buyer');
        }
      }
      assert.equal(sent.length, units, 'nothing else was sent');
      process.stderr.write(
        `# faults: ${ORDERS} orders, ${units} units, ${crashedAt.length} SIGKILLs (${[
          'after-claim',
          'after-send',
          'after-record',
          'mid-import',
        ]
          .map((p) => `${p} ${crashedAt.filter((c) => c === p).length}`)
          .join(', ')}), ${spawned} processes\n`,
      );
    } finally {
      await db.end();
    }
  });
});
