import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAiClient } from '../src/ai/client.js';
import { type ConfigInput, configSchema } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import type { ChatMessage } from '../src/protocol/types.js';
import { Responder } from '../src/reply/responder.js';
import { createStore, openSql } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';

// The responder around the reply engine, on a real PGlite store and a real HTTP AI endpoint
// on loopback; only the IM send is a recording function here (the session has its own tests).

const SELLER = '2200000001';
let store: Store;
let ai: { server: Server; url: string; answers: string[]; delayMs: number; calls: number };
const log = createLogger('silent');

before(async () => {
  store = await createStore(await openSql({ dataDir: mkdtempSync(join(tmpdir(), 'xianyu-resp-')) }));
  const state = { answers: [] as string[], delayMs: 0, calls: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.calls++;
      const text = state.answers.shift() ?? '好的';
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: text } }] }));
      }, state.delayMs);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  ai = Object.assign(state, { server, url: `http://127.0.0.1:${port}/v1` });
});
after(async () => {
  ai.server.closeAllConnections();
  ai.server.close();
  await store.close();
});

let seq = 0;
function msg(over: Partial<ChatMessage> = {}): ChatMessage {
  seq++;
  return {
    messageId: `m${seq}-${Math.random()}`,
    chatId: `chat-${seq}`,
    senderId: '3149637063',
    senderName: '小王',
    text: '你好',
    contentType: 1,
    createdAt: Date.now(),
    isGroup: false,
    isSystem: false,
    ...over,
  };
}

function setup(reply: ConfigInput['reply'], accountId = `acct-${Math.random()}`) {
  const config = configSchema.parse({
    account: { id: accountId, cookies: `unb=${SELLER}` },
    reply: { debounceMs: 0, ...reply },
  });
  const sent: { chatId: string; to: string; text: string; at: number }[] = [];
  const metrics = createMetrics(accountId);
  const responder = new Responder({
    config,
    sellerId: SELLER,
    send: async (chatId, to, text) => {
      sent.push({ chatId, to, text, at: performance.now() });
      return { messageId: `out-${sent.length}-${Math.random()}` };
    },
    store,
    ai: createAiClient({
      baseURL: ai.url,
      model: 'm',
      apiKey: 'sk-test',
      timeoutMs: config.reply.ai.timeoutMs,
    }),
    itemInfo: async (itemId) => ({ itemId, title: '游戏卡', price: '100', fetchedAt: new Date() }),
    metrics,
    log,
  });
  const settle = () => responder.idle();
  return { responder, sent, settle, metrics, config };
}

describe('responder', () => {
  it('debounce answers only the last message of a burst', async () => {
    const { responder, sent, settle } = setup({ debounceMs: 150, default: { text: '收到：{message}' } });
    const chatId = 'burst';
    for (const text of ['在吗', '这个', '还有货吗']) responder.handle(msg({ chatId, text }));
    await settle();
    assert.deepEqual(
      sent.map((s) => s.text),
      ['收到：还有货吗'],
    );
  });

  it('manual takeover pauses a chat and survives a restart; the bot echo does not pause', async () => {
    const accountId = `takeover-${Math.random()}`;
    const a = setup({ default: { text: '自动回复' } }, accountId);
    a.responder.handle(msg({ chatId: 'c1', text: '第一句' }));
    await a.settle();
    assert.equal(a.sent.length, 1);
    // The bot's own message echoed back by the server is not a takeover.
    a.responder.handle(msg({ chatId: 'c1', senderId: SELLER, text: '自动回复' }));
    a.responder.handle(msg({ chatId: 'c1', text: '第二句' }));
    await a.settle();
    assert.equal(a.sent.length, 2, 'echo must not pause the chat');
    // The human seller types in the app.
    a.responder.handle(msg({ chatId: 'c1', senderId: SELLER, text: '我来回答你' }));
    a.responder.handle(msg({ chatId: 'c1', text: '第三句' }));
    await a.settle();
    assert.equal(a.sent.length, 2, 'bot stays silent during the takeover');
    // A new process on the same database still sees the pause; other chats are unaffected.
    const b = setup({ default: { text: '自动回复' } }, accountId);
    b.responder.handle(msg({ chatId: 'c1', text: '第四句' }));
    b.responder.handle(msg({ chatId: 'c2', text: '别的会话' }));
    await b.settle();
    assert.deepEqual(
      b.sent.map((s) => s.chatId),
      ['c2'],
    );
  });

  it('the default reply is sent once per conversation when configured', async () => {
    const { responder, sent, settle } = setup({ default: { text: '欢迎', oncePerConversation: true } });
    for (const text of ['a', 'b', 'c']) {
      responder.handle(msg({ chatId: 'once', text }));
      await settle();
    }
    responder.handle(msg({ chatId: 'once-2' }));
    await settle();
    assert.deepEqual(
      sent.map((s) => s.chatId),
      ['once', 'once-2'],
    );
  });

  it('AI answers; on timeout the fallback rule answers instead', async () => {
    const { responder, sent, settle, metrics } = setup({
      ai: { enabled: true, apiKey: 'k', timeoutMs: 200 },
      default: { text: '稍等，马上回复您' },
    });
    ai.answers.push('成色很新，放心购买');
    responder.handle(msg({ chatId: 'ai-1', text: '成色怎么样' }));
    await settle();
    assert.equal(sent.at(-1)?.text, '成色很新，放心购买');
    ai.delayMs = 1000;
    responder.handle(msg({ chatId: 'ai-2', text: '能用多久' }));
    await settle();
    ai.delayMs = 0;
    assert.equal(sent.at(-1)?.text, '稍等，马上回复您');
    const errors = await metrics.aiErrors.get();
    assert.equal(errors.values.find((v) => v.labels.reason === 'timeout')?.value, 1);
  });

  it('bargaining: an AI offer under the floor becomes the refusal; past maxRounds the AI is not called', async () => {
    const { responder, sent, settle } = setup({
      ai: {
        enabled: true,
        apiKey: 'k',
        bargaining: { maxDiscountPercent: 10, maxRounds: 2, refusal: '不能再低了' },
      },
    });
    const chatId = 'bargain';
    ai.answers.push('最低 95 元哦', '那就 80 元给你吧');
    responder.handle(msg({ chatId, itemId: '1', text: '能便宜点吗' }));
    await settle();
    responder.handle(msg({ chatId, itemId: '1', text: '再便宜点' }));
    await settle();
    const callsBefore = ai.calls;
    responder.handle(msg({ chatId, itemId: '1', text: '最低多少' }));
    await settle();
    assert.deepEqual(
      sent.map((s) => s.text),
      ['最低 95 元哦', '不能再低了', '不能再低了'],
    );
    assert.equal(ai.calls, callsBefore, 'third round must not call the AI');
  });

  it('system strings, group chats and silent rules send nothing', async () => {
    const { responder, sent, settle } = setup({
      default: { text: 'x' },
      keywords: [{ match: '骗子', reply: '' }],
    });
    responder.handle(msg({ text: '[我已付款，等待你发货]', isSystem: true }));
    responder.handle(msg({ isGroup: true }));
    responder.handle(msg({ text: '骗子' }));
    await settle();
    assert.equal(sent.length, 0);
  });

  it('human-like delay and the per-account rate limit hold replies back', async () => {
    const d = setup({ default: { text: 'x' }, delay: { minMs: 120, maxMs: 120 } });
    const t0 = performance.now();
    d.responder.handle(msg());
    await d.settle();
    assert.ok(d.sent[0]!.at - t0 >= 115, `delay not applied: ${d.sent[0]!.at - t0} ms`);
    const r = setup({ default: { text: 'x' }, rateLimit: { perMinute: 600 } });
    const start = performance.now();
    for (let i = 0; i < 602; i++) r.responder.handle(msg());
    await r.settle();
    assert.equal(r.sent.length, 602);
    // 600 in the bucket, the 601st and 602nd wait 100 ms and 200 ms.
    assert.ok(r.sent.at(-1)!.at - start >= 190, `rate limit not applied: ${r.sent.at(-1)!.at - start} ms`);
  });
});
