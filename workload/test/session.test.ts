import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Sim, startSim } from '../../test/sim/index.js';
import { type Config, configSchema } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { getCookie } from '../src/protocol/cookies.js';
import type { ChatMessage } from '../src/protocol/types.js';
import { NotRegisteredError, SendRejectedError } from '../src/session/errors.js';
import type { SessionState, SessionStatus } from '../src/session/types.js';
import { XianyuSession } from '../src/session/xianyu-session.js';

// The IM session against the simulator over real loopback sockets. Synchronisation is by
// condition with a deadline (sim.waitFor / event promises), never by sleeping.

let sim: Sim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim.close();
});

const TOKEN_API = 'mtop.taobao.idlemessage.pc.login.token';

function fastConfig(session: Record<string, number> = {}): Config {
  return configSchema.parse({
    account: { id: 'test', cookies: 'unused' },
    endpoints: { api: sim.url, im: sim.imUrl, passport: sim.url },
    session: {
      heartbeatIntervalMs: 250,
      heartbeatTimeoutMs: 200,
      registerSettleMs: 0,
      backoffInitialMs: 30,
      backoffMaxMs: 200,
      tokenRefreshIntervalMs: 3_600_000,
      tokenRefreshJitterMs: 0,
      tokenRetryIntervalMs: 1_000,
      riskControlBackoffMs: 60_000,
      messageMaxAgeMs: 300_000,
      dedupCapacity: 1_000,
      ...session,
    },
  });
}

interface Harness {
  session: XianyuSession;
  seller: { unb: string; nick: string; cookies: string };
  itemId: string;
  messages: ChatMessage[];
  states: SessionStatus[];
  logs: string[];
  metrics: Metrics;
  /** Resolves with the n-th time the session reached `state` (1-based, counted from the start). */
  reached(state: SessionState, n?: number, timeoutMs?: number): Promise<SessionStatus>;
  message(pred: (m: ChatMessage) => boolean, timeoutMs?: number): Promise<ChatMessage>;
  count(kind: string): Promise<number>;
  stop(): Promise<void>;
}

function harness(
  session: Record<string, number> = {},
  o: { start?: boolean; setup?: (unb: string) => void } = {},
): Harness {
  const seller = sim.createSeller();
  const item = sim.createItem({ sellerId: seller.unb, title: '二手 Kindle', price: '199.00' });
  o.setup?.(seller.unb);
  const logs: string[] = [];
  const log = createLogger('debug', { write: (s: string) => void logs.push(s) });
  const metrics = createMetrics('test');
  const s = new XianyuSession({ config: fastConfig(session), cookies: seller.cookies, log, metrics });
  const messages: ChatMessage[] = [];
  const states: SessionStatus[] = [];
  s.on('message', (m) => messages.push(m));
  s.on('state', (st) => states.push(st));
  if (o.start !== false) s.start();
  return {
    session: s,
    seller,
    itemId: item.itemId,
    messages,
    states,
    logs,
    metrics,
    reached: (state, n = 1, timeoutMs = 5_000) =>
      sim.waitFor(() => states.filter((x) => x.state === state)[n - 1], timeoutMs),
    message: (pred, timeoutMs = 5_000) => sim.waitFor(() => messages.find(pred), timeoutMs),
    count: async (kind) => {
      const m = await metrics.messagesReceived.get();
      return m.values.find((v) => v.labels.kind === kind)?.value ?? 0;
    },
    stop: () => s.stop(),
  };
}

const BUYER = '3149637063';

/** Like sim.waitFor, for async conditions (prom-client reads are async). */
async function until(fn: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`until: condition not met within ${timeoutMs} ms: ${fn}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function roundTrip(h: Harness, text: string): Promise<ChatMessage> {
  const { messageId } = await sim.buyerSays({
    sellerId: h.seller.unb,
    buyerId: BUYER,
    buyerNick: '买家小王',
    text,
    itemId: h.itemId,
  });
  return h.message((m) => m.messageId === messageId);
}

describe('XianyuSession against the simulator', () => {
  it('registers (§1.4 frames, Cookie on the upgrade) and receives a buyer message', async () => {
    const h = harness();
    try {
      const st = await h.reached('registered');
      assert.ok(st.connectedSince instanceof Date);
      const m = await roundTrip(h, '你好，还在吗？');
      assert.equal(m.text, '你好，还在吗？');
      assert.equal(m.senderId, BUYER);
      assert.equal(m.senderName, '买家小王');
      assert.equal(m.itemId, h.itemId);
      assert.equal(m.contentType, 1);
      assert.equal(m.isSystem, false);
      assert.equal(m.isGroup, false);
      assert.equal(m.isOwnEcho, undefined);
      assert.ok(h.session.status().lastMessageAt);
      const frames = sim.frames(h.seller.unb);
      const reg = frames.find((f) => f.lwp === '/reg');
      assert.ok(reg);
      assert.equal(reg.headers['app-key'], '444e9908a51d1cb236a27862abc769c9');
      assert.equal(reg.headers.did, h.session.deviceId);
      const ackDiff = frames.find((f) => f.lwp === '/r/SyncStatus/ackDiff');
      assert.ok(ackDiff, 'ackDiff sent after /reg');
      assert.equal(await h.count('chat'), 1);
      // the token call carried the device id and the common params
      const token = sim
        .mtopCalls()
        .find((c) => c.api === TOKEN_API && c.cookieHeader.includes(`unb=${h.seller.unb}`));
      assert.deepEqual(token?.data, {
        appKey: '444e9908a51d1cb236a27862abc769c9',
        deviceId: h.session.deviceId,
      });
      assert.equal(token?.query.appKey, '34839810');
    } finally {
      await h.stop();
    }
  });

  it('decodes the simulator trade cards and group chats (codec vs sim shapes)', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      const paid = await sim.pushTradeCard({
        sellerId: h.seller.unb,
        buyerId: BUYER,
        itemId: h.itemId,
        orderId: '4105829912345678901',
        kind: 'paid',
      });
      const card = await h.message((m) => m.messageId === paid.messageId);
      assert.equal(card.text, '[我已付款，等待你发货]');
      assert.equal(card.contentType, 26);
      assert.equal(card.orderId, '4105829912345678901');
      assert.equal(card.cardTitle, '我已付款，等待你发货');
      assert.equal(card.cardButton, '去发货');
      assert.equal(card.redReminder, '等待卖家发货');
      assert.equal(card.itemId, h.itemId);
      assert.equal(card.chatId, paid.chatId);
      assert.equal(card.isSystem, true);
      const unpaid = await sim.pushTradeCard({
        sellerId: h.seller.unb,
        buyerId: BUYER,
        itemId: h.itemId,
        orderId: '4105829912345678902',
        kind: 'unpaid',
      });
      assert.equal((await h.message((m) => m.messageId === unpaid.messageId)).orderId, '4105829912345678902');
      const group = await sim.buyerSays({
        sellerId: h.seller.unb,
        buyerId: '5550001111',
        text: '群里有人吗',
        itemId: h.itemId,
        sessionType: '30',
      });
      assert.equal((await h.message((m) => m.messageId === group.messageId)).isGroup, true);
      assert.equal(await h.count('system'), 2);
      assert.equal(await h.count('group'), 1);
    } finally {
      await h.stop();
    }
  });

  it('acks every push (§1.6) and sends heartbeats', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      await roundTrip(h, '一');
      await roundTrip(h, '二');
      await sim.pushTyping({ sellerId: h.seller.unb, buyerId: BUYER });
      await sim.pushSystemNotice({ sellerId: h.seller.unb });
      await sim.waitFor(() => {
        const p = sim.pushes(h.seller.unb);
        return p.length >= 5 && p.every((x) => x.acked);
      });
      assert.ok(sim.pushes(h.seller.unb).some((p) => p.lwp === '/s/vulcan'));
      await sim.waitFor(() => sim.frames(h.seller.unb).some((f) => f.lwp === '/!'));
      assert.equal(await h.count('typing'), 1);
      assert.equal(await h.count('notice'), 1);
      // answers to our own requests are not acked: every ack names a push
      const acks = sim.frames(h.seller.unb).filter((f) => f.code === 200 && !f.lwp);
      assert.ok(
        acks.every((a) => a.ackOf),
        'an ack was sent for a response frame',
      );
    } finally {
      await h.stop();
    }
  });

  it('de-duplicates duplicated pushes', async () => {
    const h = harness({}, { setup: (unb) => sim.inject.duplicatePushes(unb, true) });
    try {
      await h.reached('registered');
      const m = await roundTrip(h, '重复吗');
      await roundTrip(h, '第二条');
      await until(async () => (await h.count('duplicate')) >= 2);
      await sim.waitFor(() =>
        sim
          .pushes(h.seller.unb)
          .filter((p) => p.lwp === '/s/sync')
          .every((p) => p.acked),
      );
      assert.equal(h.messages.filter((x) => x.messageId === m.messageId).length, 1);
      assert.equal(h.messages.length, 2);
    } finally {
      await h.stop();
    }
  });

  it('drops expired messages (created 10 min ago)', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      const old = await sim.buyerSays({
        sellerId: h.seller.unb,
        buyerId: BUYER,
        text: '十分钟前',
        itemId: h.itemId,
        createdAt: Date.now() - 600_000,
      });
      await roundTrip(h, '现在');
      await until(async () => (await h.count('expired')) === 1);
      assert.equal(
        h.messages.some((m) => m.messageId === old.messageId),
        false,
      );
    } finally {
      await h.stop();
    }
  });

  for (const closeFrame of [true, false]) {
    it(`reconnects after a dropped socket ${closeFrame ? 'with' : 'without'} a close frame`, async () => {
      const h = harness();
      try {
        await h.reached('registered');
        await roundTrip(h, '之前');
        sim.inject.dropSockets(h.seller.unb, { closeFrame });
        await h.reached('backoff');
        await h.reached('registered', 2);
        assert.equal(h.session.status().reconnects, 1);
        const m = await roundTrip(h, '之后');
        assert.equal(m.text, '之后');
        const reconnects = await h.metrics.reconnects.get();
        assert.equal(reconnects.values.find((v) => v.labels.cause === 'server_close')?.value, 1);
      } finally {
        await h.stop();
      }
    });
  }

  it('detects a silent (half-open) link and reconnects (dead_link)', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      sim.inject.silent(h.seller.unb, true);
      const st = await h.reached('backoff', 1, 3_000);
      assert.equal(st.reason, 'dead_link');
      sim.inject.silent(h.seller.unb, false);
      await h.reached('registered', 2, 8_000);
      const reconnects = await h.metrics.reconnects.get();
      assert.equal(reconnects.values.find((v) => v.labels.cause === 'dead_link')?.value, 1);
      await roundTrip(h, '恢复了吗');
    } finally {
      sim.inject.silent(h.seller.unb, false);
      await h.stop();
    }
  });

  it('refreshes the token, then re-registers with the NEW token', async () => {
    const h = harness({ tokenRefreshIntervalMs: 400 });
    try {
      await h.reached('registered');
      await h.reached('registered', 2);
      await h.stop();
      const regs = sim.frames(h.seller.unb).filter((f) => f.lwp === '/reg');
      assert.ok(regs.length >= 2);
      assert.notEqual(regs[0]?.headers.token, regs[1]?.headers.token, 'second /reg uses a new token');
      const tokenCalls = sim
        .mtopCalls()
        .filter((c) => c.api === TOKEN_API && c.cookieHeader.includes(`unb=${h.seller.unb}`));
      assert.ok(tokenCalls.length >= 2);
      assert.ok(h.states.some((s) => s.state === 'backoff' && s.reason === 'token_refresh'));
      const reconnects = await h.metrics.reconnects.get();
      assert.ok((reconnects.values.find((v) => v.labels.cause === 'token_refresh')?.value ?? 0) >= 1);
    } finally {
      await h.stop();
    }
  });

  it('risk control: state risk_control, punishUrl, long backoff and no further token calls', async () => {
    const h = harness({}, { setup: (unb) => sim.inject.riskControl(unb, true) });
    const calls = () =>
      sim.mtopCalls().filter((c) => c.api === TOKEN_API && c.cookieHeader.includes(`unb=${h.seller.unb}`))
        .length;
    try {
      const st = await h.reached('risk_control');
      assert.match(st.punishUrl ?? '', /_____tmd_____\/punish\?x5secdata=.*action=captcha/);
      assert.ok(st.nextRetryAt && st.nextRetryAt.getTime() >= Date.now() + 59_000);
      assert.ok(h.logs.some((l) => l.includes('"punishUrl"') && l.includes('_____tmd_____')));
      const before = calls();
      assert.equal(before, 1);
      // observation window: nothing may touch the service while risk-controlled
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(calls(), before);
      assert.equal(h.session.status().state, 'risk_control');
      const refreshes = await h.metrics.tokenRefreshes.get();
      assert.equal(refreshes.values.find((v) => v.labels.result === 'risk_control')?.value, 1);
    } finally {
      await h.stop();
    }
  });

  it('expired login: revive fails, state login_expired with a long backoff', async () => {
    const h = harness({}, { setup: (unb) => sim.inject.sessionExpired(unb, true) });
    try {
      const st = await h.reached('login_expired');
      assert.ok(st.nextRetryAt && st.nextRetryAt.getTime() >= Date.now() + 59_000);
      assert.match(st.reason ?? '', /SESSION_EXPIRED/);
      assert.ok(h.logs.some((l) => l.includes('session revive')));
    } finally {
      await h.stop();
    }
  });

  it('stale h5 token: re-signs with the fresh _m_h5_tk and succeeds; emits cookies', async () => {
    const h = harness({}, { setup: (unb) => sim.inject.tokenExpired(unb, true) });
    const cookieEvents: string[] = [];
    h.session.on('cookies', (c) => cookieEvents.push(c));
    try {
      await h.reached('registered');
      const calls = sim
        .mtopCalls()
        .filter((c) => c.api === TOKEN_API && c.cookieHeader.includes(`unb=${h.seller.unb}`));
      assert.deepEqual(
        calls.map((c) => c.ret[0]?.split('::')[0]),
        ['FAIL_SYS_TOKEN_EXOIRED', 'SUCCESS'],
      );
      assert.notEqual(calls[0]?.query.sign, calls[1]?.query.sign);
      const fresh = getCookie(sim.sellerCookies(h.seller.unb), '_m_h5_tk');
      assert.equal(getCookie(h.session.cookies(), '_m_h5_tk'), fresh);
      assert.ok(cookieEvents.length >= 1);
      // the same for a later call (item detail) after another rotation
      sim.inject.tokenExpired(h.seller.unb, true);
      const d = await h.session.mtop.getItemDetail(h.itemId);
      assert.equal(d.title, '二手 Kindle');
      assert.equal(d.soldPrice, '199.00');
    } finally {
      await h.stop();
    }
  });

  it('flags the echo of its own send (isOwnEcho) but not a seller typing by hand', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      const buyer = await roundTrip(h, '在吗');
      const sent = await h.session.sendText(buyer.chatId, BUYER, '在的，亲');
      assert.match(sent.messageId, /\.PNM$/);
      const echo = await h.message((m) => m.messageId === sent.messageId);
      assert.equal(echo.senderId, h.seller.unb);
      assert.equal(echo.isOwnEcho, true);
      const record = sim.sent(h.seller.unb).at(-1);
      assert.equal(record?.text, '在的，亲');
      assert.deepEqual(record?.toUserIds, [BUYER]);
      const manual = await sim.sellerSaysByHand({
        sellerId: h.seller.unb,
        chatId: buyer.chatId,
        buyerId: BUYER,
        text: '我来回答',
      });
      const human = await h.message((m) => m.messageId === manual.messageId);
      assert.equal(human.senderId, h.seller.unb);
      assert.equal(human.isOwnEcho, undefined);
      assert.equal(await h.count('own'), 2);
    } finally {
      await h.stop();
    }
  });

  it('rejects a CSI_FORBID send with SendRejectedError; rejects sends when not registered', async () => {
    const h = harness({}, { start: false });
    try {
      await assert.rejects(h.session.sendText('1', BUYER, 'x'), NotRegisteredError);
      h.session.start();
      await h.reached('registered');
      const buyer = await roundTrip(h, '能便宜点吗');
      sim.inject.csiForbid(/违规词/);
      await assert.rejects(h.session.sendText(buyer.chatId, BUYER, '这是违规词'), (err: unknown) => {
        assert.ok(err instanceof SendRejectedError);
        assert.equal(err.reason, 'CSI_FORBID');
        return true;
      });
      sim.inject.csiForbid(null);
      const ok = await h.session.sendText(buyer.chatId, BUYER, '可以的');
      assert.ok(ok.messageId);
    } finally {
      sim.inject.csiForbid(null);
      await h.stop();
    }
  });

  it('survives malformed frames and pushes', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      await sim.inject.malformedPush(h.seller.unb);
      await until(async () => (await h.count('malformed')) >= 3);
      await roundTrip(h, '还活着吗');
      assert.equal(h.session.status().state, 'registered');
      assert.equal(h.session.status().reconnects, 0);
    } finally {
      await h.stop();
    }
  });

  it('a rejected /reg backs off (register_failed) and recovers', async () => {
    const h = harness({}, { setup: (unb) => sim.inject.rejectRegister(unb, true) });
    try {
      const st = await h.reached('backoff');
      assert.match(st.reason ?? '', /\/reg answered code 401/);
      sim.inject.rejectRegister(h.seller.unb, false);
      await h.reached('registered', 1, 5_000);
      await roundTrip(h, '好了');
    } finally {
      await h.stop();
    }
  });

  it('lists chat history (§1.10 listUserMessages)', async () => {
    const h = harness();
    try {
      await h.reached('registered');
      const m = await roundTrip(h, '历史一');
      await h.session.sendText(m.chatId, BUYER, '历史二');
      const page = await h.session.listUserMessages(m.chatId);
      assert.deepEqual(
        page.messages.map((x) => x.text),
        ['历史二', '历史一'],
      );
      assert.equal(page.messages[1]?.senderId, BUYER);
      assert.equal(page.hasMore, false);
    } finally {
      await h.stop();
    }
  });

  it('stop() closes cleanly and never reconnects; no secrets in logs', async () => {
    const h = harness();
    await h.reached('registered');
    await roundTrip(h, '再见');
    await h.stop();
    assert.equal(h.session.status().state, 'stopped');
    await sim.waitFor(() => sim.connections(h.seller.unb) === 0);
    const calls = sim.mtopCalls().length;
    const frames = sim.frames(h.seller.unb).length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sim.mtopCalls().length, calls);
    assert.equal(sim.frames(h.seller.unb).length, frames);
    await assert.rejects(h.session.sendText('1', BUYER, 'x'), NotRegisteredError);
    const secrets = [getCookie(h.seller.cookies, 'cookie2'), getCookie(h.seller.cookies, '_m_h5_tk')];
    const regToken = sim.frames(h.seller.unb).find((f) => f.lwp === '/reg')?.headers.token;
    for (const s of [...secrets, regToken]) {
      assert.ok(typeof s === 'string' && s.length > 8);
      assert.equal(
        h.logs.some((l) => l.includes(s)),
        false,
        'a secret reached the log',
      );
    }
  });
});
