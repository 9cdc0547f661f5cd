// Auto-delivery: the pure parts (rules, state machine, templates, parsers, http source) and the
// store on PGlite and on a real PostgreSQL server (TEST_DATABASE_URL from scripts/with-postgres.sh).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freshDatabase } from '../../test/harness/database.js';
import { configSchema } from '../src/config/schema.js';
import { parseCrashSpec } from '../src/delivery/crash.js';
import { parseOrderDetailText } from '../src/delivery/order-details.js';
import { parsePoolFile } from '../src/delivery/pools.js';
import { matchRule, parseSpec, ruleConflicts } from '../src/delivery/rules.js';
import { fetchHttpSource, type HttpSource, SourceError } from '../src/delivery/sources.js';
import { nextUnitState, type OrderFactsForPlan, orderMayMove, planOrder } from '../src/delivery/state.js';
import { DeliveryStore } from '../src/delivery/store.js';
import { renderMessage, renderUrl } from '../src/delivery/template.js';
import { canTransition } from '../src/protocol/orders.js';
import { createStore, openSql, type Sql } from '../src/store/index.js';

const rnd = () => randomBytes(4).toString('hex');

type Rule = { name: string; itemIds?: string[]; keywords?: string[]; spec?: { name: string; value: string } };

describe('delivery rules (pure)', () => {
  const rules: Rule[] = [
    { name: 'kw', keywords: ['兑换码'] },
    { name: 'item', itemIds: ['100'] },
    { name: 'item-std', itemIds: ['100'], spec: { name: '版本', value: '标准版' } },
    { name: 'item-dlx', itemIds: ['100'], spec: { name: '版本', value: '豪华版' } },
    { name: 'kw-spec', keywords: ['会员'], spec: { name: '时长', value: '1个月' } },
  ];

  it('priority: item + spec, then item, then keyword + spec, then keyword', () => {
    const std = matchRule(rules, { itemId: '100', spec: parseSpec('版本:标准版') });
    assert.equal(std.kind, 'matched');
    assert.equal(std.kind === 'matched' && std.rule.name, 'item-std');
    const dlx = matchRule(rules, { itemId: '100', spec: parseSpec('颜色：红；版本：豪华版') });
    assert.equal(dlx.kind === 'matched' && dlx.rule.name, 'item-dlx');
    const plain = matchRule(rules, { itemId: '100', spec: [] });
    assert.equal(plain.kind === 'matched' && plain.rule.name, 'item');
    const other = matchRule(rules, { itemId: '200', spec: [], title: 'Switch 兑换码' });
    assert.equal(other.kind === 'matched' && other.rule.name, 'kw');
    const ks = matchRule(rules, { itemId: '300', spec: parseSpec('时长:1个月'), title: '视频会员 兑换码' });
    assert.equal(ks.kind === 'matched' && ks.rule.name, 'kw-spec');
  });

  it('asks for the item text only when keyword rules could decide', () => {
    assert.equal(matchRule(rules, { itemId: '200', spec: [] }).kind, 'needs_item_text');
    assert.equal(matchRule(rules, { itemId: '100', spec: [] }).kind, 'matched');
    const none = matchRule(rules, { itemId: '200', spec: [], title: '二手书', description: '' });
    assert.equal(none.kind, 'none');
    assert.ok(none.verdicts.every((v) => !v.matched && v.why.length > 0));
  });

  it('two keyword rules that both hit one title are ambiguous, never a silent pick', () => {
    const r = matchRule(
      [
        { name: 'a', keywords: ['Switch'] },
        { name: 'b', keywords: ['兑换码'] },
      ],
      {
        itemId: '1',
        spec: [],
        title: 'Switch 兑换码',
      },
    );
    assert.equal(r.kind, 'ambiguous');
  });

  it('conflicts: same item (and spec) or overlapping keywords at one priority', () => {
    const c = ruleConflicts([
      { name: 'a', itemIds: ['1', '2'] },
      { name: 'b', itemIds: ['2'] },
      { name: 'c', itemIds: ['2'], spec: { name: '版本', value: 'A' } },
      { name: 'd', itemIds: ['2'], spec: { name: '版本', value: 'a ' } },
      { name: 'e', keywords: ['兑换码'] },
      { name: 'f', keywords: ['游戏兑换码'] },
      { name: 'g', keywords: ['会员'] },
    ]);
    assert.deepEqual(
      c.map((x) => [x.a, x.b]),
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
    );
    assert.match(c[0]!.message, /"a" and "b" both claim item 2/);
  });

  it('config errors name the field: conflicts, unknown pool, neither item nor keyword', () => {
    const r = configSchema.safeParse({
      account: { id: 'x', cookies: 'unb=1' },
      delivery: {
        pools: { p: { file: 'codes.txt' } },
        rules: [
          { name: 'a', itemIds: ['1'], source: { type: 'pool', pool: 'p' } },
          { name: 'b', itemIds: ['1'], source: { type: 'text', text: 'hi' } },
          { name: 'c', itemIds: ['2'], source: { type: 'pool', pool: 'nope' } },
          { name: 'd', source: { type: 'text', text: 'hi' } },
          { name: 'a', keywords: ['k'], source: { type: 'http', url: 'http://x/{order_id}' } },
        ],
      },
    });
    assert.equal(r.success, false);
    const msgs = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.ok(
      msgs.some((m) => /^delivery\.rules\.1: rules "a" and "b" both claim item 1/.test(m)),
      msgs.join('\n'),
    );
    assert.ok(msgs.some((m) => /^delivery\.rules\.2\.source\.pool: no pool "nope"/.test(m)));
    assert.ok(msgs.some((m) => /^delivery\.rules\.3\.itemIds: give either itemIds or keywords/.test(m)));
    assert.ok(msgs.some((m) => /^delivery\.rules\.4\.name: duplicate rule name/.test(m)));
  });
});

describe('delivery state machine (pure)', () => {
  const base: OrderFactsForPlan = {
    status: 'pending_ship',
    deliveryState: 'pending',
    bargain: false,
    freeShippingDone: false,
    detailsKnown: false,
    quantity: 3,
    confirmWanted: undefined,
  };
  const opt = { freeShipping: true, wantDetails: true };

  it('unit transitions go forward only', () => {
    assert.equal(nextUnitState('claimed', 'send'), 'sent');
    assert.equal(nextUnitState('sent', 'confirm'), 'confirmed');
    assert.equal(nextUnitState('sent', 'send'), undefined);
    assert.equal(nextUnitState('confirmed', 'send'), undefined);
    assert.equal(nextUnitState('claimed', 'release'), 'released');
    assert.equal(nextUnitState('sent', 'release'), undefined);
  });

  it('paid order: details, claim all units, send each, confirm, finish', () => {
    assert.deepEqual(planOrder(base, [], opt), { kind: 'details' });
    const known = { ...base, detailsKnown: true };
    assert.deepEqual(planOrder(known, [], opt), { kind: 'claim', units: [0, 1, 2] });
    const units = [0, 1, 2].map((unit) => ({ unit, state: 'claimed' as const }));
    assert.deepEqual(planOrder({ ...known, confirmWanted: true }, units, opt), { kind: 'send', unit: 0 });
    const sent = units.map((u) => ({ ...u, state: 'sent' as const }));
    assert.deepEqual(planOrder({ ...known, confirmWanted: true }, sent, opt), { kind: 'confirm' });
    assert.deepEqual(planOrder({ ...known, confirmWanted: false }, sent, opt), {
      kind: 'finish',
      state: 'delivered',
    });
    const conf = units.map((u) => ({ ...u, state: 'confirmed' as const }));
    assert.deepEqual(planOrder({ ...known, confirmWanted: true }, conf, opt), {
      kind: 'finish',
      state: 'confirmed',
    });
    assert.equal(planOrder({ ...known, deliveryState: 'confirmed' }, conf, opt).kind, 'idle');
  });

  it('a half-claimed order (crash mid-order) claims only the missing units', () => {
    const p = planOrder({ ...base, detailsKnown: true }, [{ unit: 1, state: 'sent' }], opt);
    assert.deepEqual(p, { kind: 'claim', units: [0, 2] });
  });

  it('bargain orders release free shipping first', () => {
    assert.deepEqual(planOrder({ ...base, bargain: true }, [], opt), { kind: 'free_shipping' });
    assert.deepEqual(planOrder({ ...base, bargain: true }, [], { ...opt, freeShipping: false }), {
      kind: 'details',
    });
  });

  it('refund or close before the send releases reserved units; sent ones stay', () => {
    const units = [
      { unit: 0, state: 'sent' as const },
      { unit: 1, state: 'claimed' as const },
    ];
    assert.deepEqual(planOrder({ ...base, status: 'refunding' }, units, opt), {
      kind: 'release',
      units: [1],
    });
    assert.deepEqual(
      planOrder({ ...base, status: 'cancelled', deliveryState: 'delivering' }, [units[0]!], opt),
      {
        kind: 'finish',
        state: 'cancelled',
      },
    );
    assert.equal(planOrder({ ...base, status: 'processing', deliveryState: 'none' }, [], opt).kind, 'idle');
    // refund cancelled: goods are owed again
    assert.equal(
      planOrder({ ...base, status: 'refund_cancelled', detailsKnown: true }, [], opt).kind,
      'claim',
    );
  });

  it('an order shipped meanwhile is confirmed without a second consign call', () => {
    const sent = [{ unit: 0, state: 'sent' as const }];
    assert.deepEqual(planOrder({ ...base, status: 'shipped', quantity: 1, confirmWanted: true }, sent, opt), {
      kind: 'finish',
      state: 'confirmed',
    });
  });

  it('order status never moves backwards except into refund/cancel', () => {
    assert.equal(canTransition('shipped', 'pending_ship'), false);
    assert.equal(canTransition('pending_ship', 'shipped'), true);
    assert.equal(canTransition('completed', 'refunding'), true);
    assert.equal(canTransition('refunding', 'refund_cancelled'), true);
    assert.equal(orderMayMove('refunding', 'pending_ship'), false);
    assert.equal(orderMayMove('refund_cancelled', 'shipped'), true);
    assert.equal(canTransition('cancelled', 'pending_ship'), false);
  });
});

describe('delivery helpers (pure)', () => {
  it('templates fill the placeholders; URLs are encoded', () => {
    const v = {
      order_id: '42',
      item_id: '7',
      item_title: 'T',
      quantity: 2,
      buyer_name: '小王',
      buyer_id: '9',
      spec: '版本:标准版',
      unit: 1,
      code: 'C-1',
    };
    assert.equal(
      renderMessage('{buyer_name} {code} {order_id} x{quantity} {item_title} {x}', v),
      '小王 C-1 42 x2 T {x}',
    );
    assert.equal(
      renderUrl('http://h/c?o={order_id}&s={spec}', v),
      'http://h/c?o=42&s=%E7%89%88%E6%9C%AC%3A%E6%A0%87%E5%87%86%E7%89%88',
    );
  });

  it('pool files: one code per line, blanks skipped, duplicates once', () => {
    assert.deepEqual(parsePoolFile('A\r\n\n B \nA\nC'), ['A', 'B', 'C']);
  });

  it('order page text: quantity, spec, amount', () => {
    const d = parseOrderDetailText(
      '等待卖家发货\nSwitch 兑换码\n版本:豪华版\n¥9.90\nx3\n实付款 ¥29.70\n订单编号:123',
    );
    assert.deepEqual(d, { quantity: 3, spec: [{ name: '版本', value: '豪华版' }], amount: '29.70' });
    assert.deepEqual(parseOrderDetailText('实付款 ¥1'), { quantity: 1, spec: [], amount: '1' });
  });

  it('crash hook spec is strict', () => {
    assert.deepEqual(
      [...parseCrashSpec('after-claim:0.5, mid-import')],
      [
        ['after-claim', 0.5],
        ['mid-import', 1],
      ],
    );
    assert.throws(() => parseCrashSpec('after-clam:0.1'), /bad entry/);
    assert.throws(() => parseCrashSpec('after-send:2'), /bad entry/);
  });

  describe('http source', () => {
    const src: HttpSource = {
      type: 'http',
      url: 'http://codes.example/issue?order={order_id}&unit={unit}',
      method: 'GET',
      headers: {},
      timeoutMs: 50,
      retries: 3,
      retryDelayMs: 10,
    };
    const vals = {
      order_id: '1',
      item_id: '',
      item_title: '',
      quantity: 1,
      buyer_name: '',
      buyer_id: '',
      spec: '',
      unit: 2,
    };
    const pauses: number[] = [];
    const sleep = async (ms: number) => {
      pauses.push(ms);
    };

    it('retries 5xx and timeouts with doubling pauses, then succeeds', async () => {
      pauses.length = 0;
      const urls: string[] = [];
      let n = 0;
      const fake = (async (url: string) => {
        urls.push(url);
        n++;
        if (n === 1) return new Response('busy', { status: 503 });
        if (n === 2) throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
        return new Response(' CODE-9 \n', { status: 200 });
      }) as unknown as typeof fetch;
      const r = await fetchHttpSource(src, vals, { fetch: fake, sleep });
      assert.deepEqual(r, { value: 'CODE-9', attempts: 3 });
      assert.deepEqual(pauses, [10, 20]);
      assert.equal(urls[0], 'http://codes.example/issue?order=1&unit=2');
    });

    it('gives up after the bounded retries; 4xx is not retried; JSON field', async () => {
      pauses.length = 0;
      const always503 = (async () => new Response('', { status: 503 })) as unknown as typeof fetch;
      await assert.rejects(
        fetchHttpSource(src, vals, { fetch: always503, sleep }),
        /503 \(after 4 attempts\)/,
      );
      assert.equal(pauses.length, 3);
      let calls = 0;
      const notFound = (async () => {
        calls++;
        return new Response('', { status: 404 });
      }) as unknown as typeof fetch;
      await assert.rejects(fetchHttpSource(src, vals, { fetch: notFound, sleep }), (e: unknown) => {
        return e instanceof SourceError && !e.retryable;
      });
      assert.equal(calls, 1);
      const json = (async () => new Response('{"data":{"code":"J-1"}}')) as unknown as typeof fetch;
      assert.equal(
        (await fetchHttpSource({ ...src, field: 'data.code' }, vals, { fetch: json, sleep })).value,
        'J-1',
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------

interface Db {
  name: string;
  open(): Promise<Sql[]>;
  close(): Promise<void>;
}

function pgliteDb(): Db {
  let dir = '';
  let sql: Sql | undefined;
  return {
    name: 'PGlite',
    async open() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xianyu-delivery-'));
      sql = await openSql({ dataDir: dir });
      await createStore(sql);
      return [sql];
    },
    async close() {
      await sql?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresDb(): Db {
  const sqls: Sql[] = [];
  return {
    name: 'PostgreSQL',
    async open() {
      const url = await freshDatabase('delivery');
      for (let i = 0; i < 4; i++) sqls.push(await openSql({ url, dataDir: '' }));
      await createStore(sqls[0]!);
      return sqls;
    },
    async close() {
      for (const s of sqls) await s.close();
    },
  };
}

for (const db of [pgliteDb(), postgresDb()]) {
  describe(`delivery store on ${db.name}`, () => {
    let sqls: Sql[];
    let st: DeliveryStore;
    before(async () => {
      sqls = await db.open();
      st = new DeliveryStore(sqls[0]!);
    });
    after(() => db.close());

    const paid = (
      acct: string,
      orderId: string,
      status: 'pending_ship' | 'shipped' | 'refunding' = 'pending_ship',
    ) =>
      st.applyOrderEvent(acct, {
        orderId,
        chatId: 'c1',
        buyerId: 'b1',
        itemId: 'i1',
        status,
        at: new Date(),
      });

    it('orders: status forward only; out-of-order messages do not undo; payable once', async () => {
      const a = `a-${rnd()}`;
      const first = await paid(a, 'o1', 'shipped');
      assert.equal(first.order.status, 'shipped');
      assert.equal(first.becamePayable, false);
      const late = await paid(a, 'o1', 'pending_ship');
      assert.equal(late.order.status, 'shipped', 'a late paid card does not move shipped back');
      assert.equal(late.changed, false);
      const p = await paid(a, 'o2');
      assert.equal(p.becamePayable, true);
      assert.equal(p.order.deliveryState, 'pending');
      const again = await paid(a, 'o2');
      assert.equal(again.becamePayable, false);
      const refund = await paid(a, 'o2', 'refunding');
      assert.equal(refund.order.status, 'refunding');
      const latePaid = await paid(a, 'o2');
      assert.equal(latePaid.order.status, 'refunding', 'a late paid card does not end a refund');
      assert.deepEqual(await st.openOrders(a), ['o2']);
    });

    it('pool import is idempotent; changed files add, withdraw and restore', async () => {
      const pool = `p-${rnd()}`;
      let r = await st.importPool(pool, ['A', 'B', 'C'], 'h1', { batchSize: 2 });
      assert.deepEqual(r, { added: 3, withdrawn: 0, restored: 0 });
      r = await st.importPool(pool, ['A', 'B', 'C'], 'h1');
      assert.equal(r.added, 0);
      assert.equal(await st.poolFileHash(pool), 'h1');
      r = await st.importPool(pool, ['A', 'D'], 'h2');
      assert.deepEqual(r, { added: 1, withdrawn: 2, restored: 0 });
      assert.deepEqual(await st.stock([pool]), [{ pool, free: 2, claimed: 0, withdrawn: 2 }]);
      r = await st.importPool(pool, ['A', 'B', 'D'], 'h3');
      assert.deepEqual(r, { added: 0, withdrawn: 0, restored: 1 });
    });

    it('claim: all units or none; each code once; out of stock then restock', async () => {
      const a = `a-${rnd()}`;
      const pool = `p-${rnd()}`;
      await st.importPool(pool, ['X1', 'X2'], 'h');
      await paid(a, 'o1');
      const claim = (units: number[]) =>
        st.claim({
          accountId: a,
          orderId: 'o1',
          rule: 'r',
          confirmWanted: true,
          units,
          kind: 'text',
          sendAfter: new Date(),
          pool,
          render: (u, code) => `unit ${u}: ${code}`,
        });
      const short = await claim([0, 1, 2]);
      assert.deepEqual(short, { ok: false, reason: 'out_of_stock', free: 2 });
      assert.deepEqual((await st.stock([pool]))[0]?.free, 2, 'nothing reserved by a failed claim');
      await st.importPool(pool, ['X1', 'X2', 'X3'], 'h2');
      const ok = await claim([0, 1, 2]);
      assert.ok(ok.ok);
      assert.deepEqual(
        ok.units.map((u) => u.payload),
        ['unit 0: X1', 'unit 1: X2', 'unit 2: X3'],
      );
      await st.importPool(pool, ['X1', 'X2', 'X3', 'X4'], 'h3');
      await assert.rejects(claim([1]), /duplicate key|unique/i, 'a unit is claimed once (pool)');
      await assert.rejects(
        st.claim({
          accountId: a,
          orderId: 'o1',
          rule: 'r',
          confirmWanted: true,
          units: [2],
          kind: 'text',
          sendAfter: new Date(),
          render: () => 't',
        }),
        /duplicate key|unique/i,
        'a unit is claimed once (text)',
      );
      assert.equal((await st.stock([pool]))[0]?.free, 1, 'the failed claim reserved nothing');
      assert.equal(await st.markSent(a, 'o1', 0, 'm0'), true);
      assert.equal(await st.markSent(a, 'o1', 0, 'm0b'), false, 'sent only once');
      // refund: the unsent units go back to the pool, the sent one stays
      assert.equal(await st.release(a, 'o1', [0, 1, 2]), 2);
      assert.deepEqual(await st.stock([pool]), [{ pool, free: 3, claimed: 1, withdrawn: 0 }]);
    });

    it('concurrent claimers on one pool never share a code (SKIP LOCKED)', async () => {
      const pool = `p-${rnd()}`;
      const codes = Array.from({ length: 120 }, (_, i) => `K${i}`);
      await st.importPool(pool, codes, 'h');
      const stores = sqls.map((s) => new DeliveryStore(s));
      const accounts = stores.map(() => `a-${rnd()}`);
      let claimed = 0;
      await Promise.all(
        stores.map(async (s, k) => {
          for (let i = 0; i < 40; i++) {
            const orderId = `o${i}`;
            await s.applyOrderEvent(accounts[k]!, {
              orderId,
              chatId: 'c',
              buyerId: 'b',
              status: 'pending_ship',
              at: new Date(),
            });
            const r = await s.claim({
              accountId: accounts[k]!,
              orderId,
              rule: 'r',
              confirmWanted: false,
              units: [0],
              kind: 'text',
              sendAfter: new Date(),
              pool,
              render: (_u, c) => c ?? '',
            });
            if (r.ok) claimed++;
          }
        }),
      );
      const perStore = stores.length * 40;
      assert.equal(claimed, Math.min(perStore, codes.length));
      const { rows } = await sqls[0]!.query<{ n: number; d: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT code_id)::int AS d FROM delivery_units WHERE account_id = ANY($1::text[])`,
        [accounts],
      );
      assert.equal(rows[0]!.n, claimed);
      assert.equal(rows[0]!.d, claimed);
      const [s] = await st.stock([pool]);
      assert.equal(s!.free + s!.claimed, codes.length);
    });
  });
}
