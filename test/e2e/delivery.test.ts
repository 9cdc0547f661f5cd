// Auto-delivery end to end: the built workload (child process) against the simulator, on a
// real PostgreSQL server (TEST_DATABASE_URL) and on PGlite.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { freshDatabase } from '../harness/database.js';
import {
  pollUntil,
  simEnv,
  startWorkloadProcess,
  WORKLOAD_MAIN,
  type WorkloadProcess,
} from '../harness/workload-process.js';
import { type Seller, type Sim, startSim } from '../sim/index.js';

let sim: Sim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim.close();
});

const rnd = () => Math.random().toString(36).slice(2, 8);
let nextOrder = 4_100_000_000_000 + Math.floor(Math.random() * 1e9);
const orderId = () => String(nextOrder++);

function envFor(seller: Seller, extra: Record<string, string> = {}) {
  return {
    ...simEnv(sim, seller),
    ...extra,
  };
}

const CODES = Array.from({ length: 6 }, (_, i) => `SW-${rnd().toUpperCase()}-${i}`);

describe('auto-delivery end to end on PostgreSQL', () => {
  let seller: Seller;
  let dir: string;
  let dbUrl: string;
  let wl: WorkloadProcess;
  let itemStd: string;
  let itemKw: string;
  let itemSold: string;
  let itemHttp: string;
  let codeServer: import('node:http').Server;
  let codeCalls = 0;
  const poolFile = () => join(dir, 'codes.txt');
  const config = () => ({
    account: { id: `dl-${seller.unb}` },
    session: { registerSettleMs: 0 },
    reply: { debounceMs: 0 },
    delivery: {
      unitIntervalMs: 0,
      retryIntervalMs: 500,
      poolCheckIntervalMs: 200,
      orderDetails: { source: 'http', url: `${sim.url}/order-detail?orderId={order_id}&role=seller` },
      pools: {
        switch: { file: poolFile(), lowStock: 2 },
        sold: { file: join(dir, 'sold.txt'), lowStock: 0 },
      },
      rules: [
        {
          name: 'switch-deluxe',
          itemIds: [itemStd],
          spec: { name: '版本', value: '豪华版' },
          source: { type: 'pool', pool: 'switch' },
          message: '{buyer_name} 您好，订单 {order_id} 第 {unit}/{quantity} 件：{code}',
        },
        { name: 'switch-other', itemIds: [itemStd], source: { type: 'text', text: '标准版请联系客服' } },
        { name: 'sold', itemIds: [itemSold], source: { type: 'pool', pool: 'sold' } },
        {
          name: 'by-keyword',
          keywords: ['会员'],
          source: { type: 'text', text: 'VIP-{order_id}' },
          message: '{item_title}：{code}',
          confirmShipment: false,
        },
        {
          name: 'http',
          itemIds: [itemHttp],
          source: {
            type: 'http',
            url: `http://127.0.0.1:${(codeServer.address() as { port: number }).port}/code?order={order_id}&unit={unit}`,
            retries: 3,
            retryDelayMs: 10,
          },
        },
      ],
    },
  });

  before(async () => {
    seller = sim.createSeller();
    dir = mkdtempSync(join(tmpdir(), 'xianyu-dl-'));
    writeFileSync(poolFile(), `${CODES.slice(0, 4).join('\n')}\n`);
    writeFileSync(join(dir, 'sold.txt'), '');
    itemStd = sim.createItem({
      sellerId: seller.unb,
      title: 'Switch 游戏兑换码',
      price: '9.90',
      skuList: [
        { propertyList: [{ valueText: '标准版' }], price: 990, quantity: 50 },
        { propertyList: [{ valueText: '豪华版' }], price: 1990, quantity: 50 },
      ],
    }).itemId;
    itemKw = sim.createItem({ sellerId: seller.unb, title: '视频会员月卡', price: '15' }).itemId;
    itemSold = sim.createItem({ sellerId: seller.unb, title: '售罄商品', price: '1' }).itemId;
    itemHttp = sim.createItem({ sellerId: seller.unb, title: '接口发码', price: '1' }).itemId;
    // A flaky code endpoint: every first call per unit answers 503.
    const { createServer } = await import('node:http');
    const seen = new Set<string>();
    codeServer = createServer((req, res) => {
      codeCalls++;
      const key = req.url ?? '';
      if (!seen.has(key)) {
        seen.add(key);
        res.writeHead(503).end('busy');
        return;
      }
      res.end(`HTTP-${new URL(key, 'http://x').searchParams.get('unit')}`);
    });
    await new Promise<void>((r) => codeServer.listen(0, '127.0.0.1', r));
    dbUrl = await freshDatabase('e2e_delivery');
    wl = await startWorkloadProcess({ config: config(), env: envFor(seller, { DATABASE_URL: dbUrl }), dir });
  });
  after(async () => {
    await wl?.stop();
    codeServer?.close();
  });

  const paid = async (
    itemId: string,
    o: { quantity?: number; spec?: string; kind?: 'paid' | 'bargain' } = {},
  ) => {
    const id = orderId();
    const buyerId = String(3_500_000_000 + Math.floor(Math.random() * 1e6));
    await sim.buyerSays({ sellerId: seller.unb, buyerId, buyerNick: '小王', itemId, text: '拍了' });
    const { chatId } = await sim.pushTradeCard({
      sellerId: seller.unb,
      buyerId,
      itemId,
      orderId: id,
      kind: o.kind ?? 'paid',
      ...(o.quantity ? { quantity: o.quantity } : {}),
      ...(o.spec ? { spec: o.spec } : {}),
    });
    return { orderId: id, chatId, buyerId };
  };
  const sentIn = (chatId: string) => sim.sent(seller.unb).filter((s) => s.chatId === chatId);
  const simOrder = (id: string) => sim.orders(seller.unb).find((o) => o.orderId === id);

  it('spec + quantity: N codes from the pool into the right chat, then the shipment is confirmed', async () => {
    const o = await paid(itemStd, { quantity: 2, spec: '版本:豪华版' });
    await sim.waitFor(() => simOrder(o.orderId)?.shippedAt, 10_000);
    const sent = sentIn(o.chatId).filter((s) => /第/.test(s.text ?? ''));
    assert.deepEqual(
      sent.map((s) => s.text),
      [
        `小王 您好，订单 ${o.orderId} 第 1/2 件：${CODES[0]}`,
        `小王 您好，订单 ${o.orderId} 第 2/2 件：${CODES[1]}`,
      ],
    );
    // Same item, other spec → the item rule (lower priority), fixed text.
    const std = await paid(itemStd, { spec: '版本:标准版' });
    await sim.waitFor(() => sentIn(std.chatId).find((s) => s.text === '标准版请联系客服'), 10_000);
  });

  it('keyword rule on the item title; no shipment confirmation when the rule says so', async () => {
    const o = await paid(itemKw);
    const s = await sim.waitFor(
      () => sentIn(o.chatId).find((x) => x.text?.startsWith('视频会员月卡')),
      10_000,
    );
    assert.equal(s.text, `视频会员月卡：VIP-${o.orderId}`);
    await pollUntil(async () => {
      const r = await pgQuery(dbUrl, 'SELECT delivery_state FROM orders WHERE order_id = $1', [o.orderId]);
      return r[0]?.delivery_state === 'delivered';
    });
    assert.equal(simOrder(o.orderId)?.shippedAt, undefined);
  });

  it('bargain (我已小刀，待刀成): free shipping first, then delivery', async () => {
    const o = await paid(itemStd, { kind: 'bargain', spec: '版本:豪华版' });
    await sim.waitFor(() => simOrder(o.orderId)?.shippedAt, 10_000);
    const fs = sim
      .mtopCalls()
      .find(
        (c) =>
          c.api === 'mtop.idle.groupon.activity.seller.freeshipping' &&
          (c.data as { bizOrderId?: string }).bizOrderId === o.orderId,
      );
    assert.ok(fs, 'free-shipping call');
    const first = sentIn(o.chatId).find((s) => s.text?.includes(o.orderId));
    assert.ok(first && first.at >= fs.at, 'free shipping before the code');
  });

  it('http source: retried past a 503', async () => {
    const o = await paid(itemHttp, { quantity: 2 });
    await sim.waitFor(() => sentIn(o.chatId).filter((s) => /^HTTP-/.test(s.text ?? '')).length === 2, 10_000);
    assert.deepEqual(
      sentIn(o.chatId)
        .map((s) => s.text)
        .filter((t) => t?.startsWith('HTTP-')),
      ['HTTP-1', 'HTTP-2'],
    );
    assert.ok(codeCalls >= 4);
  });

  it('out of stock: waits with a reason, delivered when the pool file gets codes', async () => {
    const o = await paid(itemSold);
    await pollUntil(
      async () => {
        const r = await pgQuery(
          dbUrl,
          'SELECT delivery_state, waiting_reason FROM orders WHERE order_id = $1',
          [o.orderId],
        );
        return r[0]?.waiting_reason === 'out_of_stock:sold';
      },
      10_000,
      'order waiting for stock',
    );
    await pollUntil(
      async () =>
        /xianyu_orders_waiting\{[^}]*reason="out_of_stock"[^}]*\} 1/.test((await wl.get('/metrics')).body),
      10_000,
      'orders waiting gauge',
    );
    await wl.waitForLog((l) => l.msg === 'notification: out_of_stock');
    writeFileSync(join(dir, 'sold.txt'), 'RESTOCK-1\n'); // a Secret changes in place
    await sim.waitFor(() => sentIn(o.chatId).find((s) => s.text === 'RESTOCK-1'), 10_000);
    await sim.waitFor(() => simOrder(o.orderId)?.shippedAt, 10_000);
  });

  it('low stock raises the notification event; stock per pool in /metrics', async () => {
    await wl.waitForLog((l) => l.msg === 'notification: low_stock');
    const metrics = (await wl.get('/metrics')).body;
    assert.match(metrics, /xianyu_delivery_stock_codes\{[^}]*pool="switch"[^}]*\} \d+/);
    assert.match(metrics, /xianyu_deliveries_total\{[^}]*result="confirmed"[^}]*\} [1-9]/);
    assert.match(metrics, /xianyu_delivery_paid_to_sent_seconds_count\{[^}]*\} [1-9]/);
  });

  it('refund card before the paid card (out of order): nothing is sent', async () => {
    writeFileSync(join(dir, 'sold.txt'), 'RESTOCK-1\n');
    const id = orderId();
    const buyerId = '3600000001';
    // The refund card overtakes the paid card (out of order): delivery must not start.
    await sim.pushTradeCard({
      sellerId: seller.unb,
      buyerId,
      itemId: itemSold,
      orderId: id,
      kind: 'refund-agreed',
    });
    const { chatId } = await sim.pushTradeCard({
      sellerId: seller.unb,
      buyerId,
      itemId: itemSold,
      orderId: id,
      kind: 'paid',
    });
    await pollUntil(async () => {
      const r = await pgQuery(dbUrl, 'SELECT status FROM orders WHERE order_id = $1', [id]);
      return r[0]?.status === 'refunding';
    });
    assert.equal(sentIn(chatId).length, 0);
  });

  it('the echo of a delivery sent by an earlier process is no manual takeover', async () => {
    const o = await paid(itemKw);
    const text = `视频会员月卡：VIP-${o.orderId}`;
    await sim.waitFor(() => sentIn(o.chatId).find((x) => x.text === text), 10_000);
    // The same text arriving as a seller message this process did not send (a replayed echo).
    const { messageId } = await sim.sellerSaysByHand({
      sellerId: seller.unb,
      chatId: o.chatId,
      buyerId: o.buyerId,
      text,
    });
    const line = await wl.waitForLog((l) => l.messageId === messageId && l.decision !== undefined);
    assert.equal(line.decision, 'ignore');
    assert.equal(line.reason, 'own_echo');
    // A message the seller really typed still pauses the bot.
    const typed = await sim.sellerSaysByHand({
      sellerId: seller.unb,
      chatId: o.chatId,
      buyerId: o.buyerId,
      text: '我来处理',
    });
    const l2 = await wl.waitForLog((l) => l.messageId === typed.messageId && l.decision !== undefined);
    assert.equal(l2.decision, 'takeover');
  });

  it('codes never appear in logs, metrics or status', async () => {
    const everything = [
      wl.output().join('\n'),
      (await wl.get('/metrics')).body,
      (await wl.get('/status')).body,
    ].join('\n');
    for (const c of [...CODES, 'RESTOCK-1', 'HTTP-1']) assert.ok(!everything.includes(c), `code ${c} leaked`);
  });

  it('orders CLI lists delivery states; redeliver re-sends the same code; explain-order says why', async () => {
    const o = await paid(itemStd, { spec: '版本:豪华版' });
    await sim.waitFor(() => simOrder(o.orderId)?.shippedAt, 10_000);
    const cfgFile = join(dir, 'config.yaml');
    const env = { ...process.env, ...envFor(seller, { DATABASE_URL: dbUrl }) };
    const list = spawnSync(process.execPath, [WORKLOAD_MAIN, 'orders', '--config', cfgFile], {
      encoding: 'utf8',
      env,
    });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${o.orderId}\\s+shipped\\s+confirmed`));
    for (const c of CODES) assert.ok(!list.stdout.includes(c), 'the orders list shows no codes');

    const before = sentIn(o.chatId).length;
    const code = sentIn(o.chatId).find((s) => s.text?.includes(o.orderId))!.text;
    const r = spawnSync(process.execPath, [WORKLOAD_MAIN, 'redeliver', o.orderId, '--config', cfgFile], {
      encoding: 'utf8',
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    const again = await sim.waitFor(
      () =>
        sentIn(o.chatId)
          .slice(before)
          .find((s) => s.text?.includes(o.orderId)),
      10_000,
    );
    assert.equal(again.text, code, 'the same code again');
    await wl.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('redelivered'));

    const ex = spawnSync(process.execPath, [WORKLOAD_MAIN, 'explain-order', o.orderId, '--config', cfgFile], {
      encoding: 'utf8',
      env,
    });
    assert.equal(ex.status, 0, ex.stderr);
    assert.match(ex.stdout, /rule: switch-deluxe/);
    assert.match(ex.stdout, /item\+spec/);
  });

  it('a second process waits on standby (not ready) and takes over when the first dies', async () => {
    const second = await startWorkloadProcess({
      config: config(),
      env: envFor(seller, { DATABASE_URL: dbUrl }),
      dir: mkdtempSync(join(tmpdir(), 'xianyu-dl2-')),
      waitReady: false,
    });
    try {
      await second.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('standby'));
      const r = await second.get('/ready');
      assert.equal(r.status, 503);
      assert.equal((r.json() as { reason: string }).reason, 'standby');
      await wl.stop('SIGKILL');
      await pollUntil(async () => (await second.get('/ready')).status === 200, 15_000, 'takeover');
      const o = await paid(itemKw);
      await sim.waitFor(
        () => sentIn(o.chatId).find((x) => x.text === `视频会员月卡：VIP-${o.orderId}`),
        10_000,
      );
    } finally {
      await second.stop();
    }
  });
});

async function pgQuery(url: string, text: string, params: unknown[]): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

describe('order details from the order page in Chromium (playwright-core)', () => {
  it('quantity and spec scraped from the rendered page decide the units and the rule', {
    // `make test` installs Chromium; only a hand-run without it may skip (never CI).
    skip:
      existsSync('/usr/bin/chromium') || process.env.CI
        ? false
        : 'Debian chromium not installed (make browser, or apt-get install -y chromium)',
  }, async () => {
    const seller = sim.createSeller();
    const dir = mkdtempSync(join(tmpdir(), 'xianyu-dl-browser-'));
    writeFileSync(join(dir, 'codes.txt'), 'BR-1\nBR-2\nBR-3\n');
    const itemId = sim.createItem({ sellerId: seller.unb, title: '兑换码', price: '1' }).itemId;
    const cfg = {
      account: { id: 'browser' },
      session: { registerSettleMs: 0 },
      delivery: {
        unitIntervalMs: 0,
        orderDetails: { source: 'browser', url: `${sim.url}/order-detail?orderId={order_id}&role=seller` },
        pools: { p: { file: join(dir, 'codes.txt') } },
        rules: [
          { name: 'std', itemIds: [itemId], source: { type: 'text', text: 'WRONG' } },
          {
            name: 'dlx',
            itemIds: [itemId],
            spec: { name: '版本', value: '豪华版' },
            source: { type: 'pool', pool: 'p' },
          },
        ],
      },
    };
    const wl = await startWorkloadProcess({ config: cfg, env: envFor(seller), dir });
    try {
      const id = orderId();
      const { chatId } = await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId: '3700000002',
        itemId,
        orderId: id,
        kind: 'paid',
        quantity: 2,
        spec: '版本:豪华版',
      });
      await sim.waitFor(() => sim.orders(seller.unb).find((o) => o.orderId === id)?.shippedAt, 30_000);
      assert.deepEqual(
        sim
          .sent(seller.unb)
          .filter((s) => s.chatId === chatId)
          .map((s) => s.text),
        ['BR-1', 'BR-2'],
      );
    } finally {
      await wl.stop();
    }
  });
});

describe('auto-delivery on PGlite', () => {
  it('delivers a paid order and confirms it (embedded database)', async () => {
    const seller = sim.createSeller();
    const dir = mkdtempSync(join(tmpdir(), 'xianyu-dl-lite-'));
    writeFileSync(join(dir, 'codes.txt'), 'LITE-1\nLITE-2\n');
    const itemId = sim.createItem({ sellerId: seller.unb, title: '兑换码', price: '1' }).itemId;
    const cfg = {
      account: { id: 'lite' },
      session: { registerSettleMs: 0 },
      delivery: {
        pools: { p: { file: join(dir, 'codes.txt') } },
        rules: [{ name: 'r', itemIds: [itemId], source: { type: 'pool', pool: 'p' } }],
      },
    };
    writeFileSync(join(dir, 'check.yaml'), stringify(cfg));
    const wl = await startWorkloadProcess({ config: cfg, env: envFor(seller), dir });
    try {
      const id = orderId();
      const { chatId } = await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId: '3700000001',
        itemId,
        orderId: id,
        kind: 'paid',
      });
      await sim.waitFor(() => sim.orders(seller.unb).find((o) => o.orderId === id)?.shippedAt, 10_000);
      assert.deepEqual(
        sim
          .sent(seller.unb)
          .filter((s) => s.chatId === chatId)
          .map((s) => s.text),
        ['LITE-1'],
      );
    } finally {
      await wl.stop();
    }
  });
});
