import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigInput, configSchema } from '../src/config/schema.js';
import type { ChatMessage } from '../src/protocol/types.js';
import { breaksFloor, detectPriceIntent, priceFloor } from '../src/reply/bargaining.js';
import { type ConversationState, decide } from '../src/reply/engine.js';
import { fillPlaceholders } from '../src/reply/placeholders.js';

const SELLER = '2200000001';
const now = new Date('2026-11-29T12:00:00Z');
const fresh: ConversationState = { takeoverUntil: null, defaultSent: false, bargainRounds: 0 };

function rules(reply: ConfigInput['reply']) {
  return configSchema.parse({ account: { id: 'a', cookies: 'unb=1' }, reply }).reply;
}

function msg(over: Partial<ChatMessage> = {}): ChatMessage {
  return {
    messageId: 'm1',
    chatId: 'c1',
    senderId: '3149637063',
    senderName: '买家小王',
    text: '你好',
    contentType: 1,
    itemId: '900001',
    createdAt: now.getTime(),
    isGroup: false,
    isSystem: false,
    ...over,
  };
}

const ctx = { sellerId: SELLER, itemTitle: 'Switch 游戏卡', now };

describe('reply engine', () => {
  it('keyword rules: contains, exact, regex, many keywords to one reply, placeholders', () => {
    const r = rules({
      keywords: [
        { match: ['发货', '多久到'], reply: '{buyer_name} 您好，{item_title} 付款后秒发' },
        { match: '在吗', mode: 'exact', reply: '在的' },
        { match: ['^价格?\\s*\\d+$'], mode: 'regex', reply: '价格见标价 ({message})' },
      ],
    });
    assert.deepEqual(decide(msg({ text: '请问多久到呀' }), fresh, r, ctx), {
      action: 'reply',
      source: 'keyword',
      text: '买家小王 您好，Switch 游戏卡 付款后秒发',
      rule: 'keywords[0](发货|多久到)',
    });
    assert.equal(decide(msg({ text: '在吗' }), fresh, r, ctx).action, 'reply');
    assert.equal(
      decide(msg({ text: '老板在吗？' }), fresh, r, ctx).action,
      'ignore',
      'exact does not match a longer text',
    );
    const re = decide(msg({ text: '价格 100' }), fresh, r, ctx);
    assert.equal(re.action === 'reply' && re.text, '价格见标价 (价格 100)');
  });

  it('item-scoped rules win over generic ones, and only for their items', () => {
    const r = rules({
      keywords: [
        { match: '发货', reply: '通用：自动发货' },
        { match: '发货', reply: '此商品：手动发货', itemIds: ['900001'] },
      ],
    });
    const a = decide(msg({ text: '怎么发货' }), fresh, r, ctx);
    assert.equal(a.action === 'reply' && a.text, '此商品：手动发货');
    const b = decide(msg({ text: '怎么发货', itemId: '900002' }), fresh, r, ctx);
    assert.equal(b.action === 'reply' && b.text, '通用：自动发货');
  });

  it('an empty keyword reply means deliberately silent, even with a default', () => {
    const r = rules({ keywords: [{ match: '滚', reply: '' }], default: { text: '您好' } });
    assert.deepEqual(decide(msg({ text: '滚' }), fresh, r, ctx), {
      action: 'ignore',
      reason: 'silent_rule',
      rule: 'keywords[0](滚)',
    });
  });

  it('order: keyword → AI → per-item default → account default', () => {
    const r = rules({
      keywords: [{ match: '发货', reply: 'K' }],
      itemDefaults: [{ itemId: '900001', text: 'ITEM {item_id}' }],
      default: { text: 'DEFAULT' },
      ai: { enabled: true, apiKey: 'x' },
    });
    assert.equal(decide(msg({ text: '发货吗' }), fresh, r, ctx).action, 'reply');
    const ai = decide(msg({ text: '成色怎么样' }), fresh, r, ctx);
    assert.equal(ai.action, 'ai');
    assert.deepEqual(ai.action === 'ai' && ai.fallback, {
      action: 'reply',
      source: 'item',
      text: 'ITEM 900001',
      rule: 'itemDefaults[900001]',
    });
    const noAi = rules({ itemDefaults: [{ itemId: '900001', text: 'ITEM' }], default: { text: 'DEFAULT' } });
    assert.equal((decide(msg({ itemId: '900002' }), fresh, noAi, ctx) as { text: string }).text, 'DEFAULT');
    assert.equal((decide(msg(), fresh, noAi, ctx) as { text: string }).text, 'ITEM');
  });

  it('AI scope "bargaining" leaves other questions to the defaults', () => {
    const r = rules({ default: { text: 'D' }, ai: { enabled: true, apiKey: 'x', scope: 'bargaining' } });
    assert.equal(decide(msg({ text: '成色怎么样' }), fresh, r, ctx).action, 'reply');
    assert.equal(decide(msg({ text: '能便宜点吗' }), fresh, r, ctx).action, 'ai');
  });

  it('default once per conversation', () => {
    const r = rules({ default: { text: '欢迎', oncePerConversation: true } });
    assert.equal(decide(msg(), fresh, r, ctx).action, 'reply');
    assert.deepEqual(decide(msg(), { ...fresh, defaultSent: true }, r, ctx), {
      action: 'ignore',
      reason: 'default_already_sent',
      rule: 'default',
    });
  });

  it('never answers system/trade strings or group chats', () => {
    const r = rules({ default: { text: '欢迎' }, keywords: [{ match: '付款', reply: 'K' }] });
    assert.deepEqual(decide(msg({ text: '[我已付款，等待你发货]', isSystem: true }), fresh, r, ctx), {
      action: 'ignore',
      reason: 'system',
    });
    assert.deepEqual(decide(msg({ isGroup: true }), fresh, r, ctx), { action: 'ignore', reason: 'group' });
  });

  it("the seller's own message starts a takeover; the bot's echo does not", () => {
    const r = rules({ default: { text: '欢迎' }, manualTakeoverMinutes: 10 });
    assert.deepEqual(decide(msg({ senderId: SELLER }), fresh, r, ctx), {
      action: 'takeover',
      until: new Date(now.getTime() + 600_000),
    });
    assert.deepEqual(decide(msg({ senderId: SELLER, isOwnEcho: true }), fresh, r, ctx), {
      action: 'ignore',
      reason: 'own_echo',
    });
    const paused = { ...fresh, takeoverUntil: new Date(now.getTime() + 1000) };
    assert.deepEqual(decide(msg(), paused, r, ctx), { action: 'ignore', reason: 'takeover' });
    const expired = { ...fresh, takeoverUntil: new Date(now.getTime() - 1) };
    assert.equal(decide(msg(), expired, r, ctx).action, 'reply');
  });

  it('bargaining: refusal after maxRounds without calling the AI', () => {
    const r = rules({
      ai: { enabled: true, apiKey: 'x', bargaining: { maxRounds: 2, refusal: '不议价哦 {buyer_name}' } },
    });
    const within = decide(msg({ text: '能便宜点吗' }), { ...fresh, bargainRounds: 1 }, r, ctx);
    assert.equal(within.action === 'ai' && within.bargaining, true);
    assert.deepEqual(decide(msg({ text: '再便宜点吧' }), { ...fresh, bargainRounds: 2 }, r, ctx), {
      action: 'reply',
      source: 'bargain_refusal',
      text: '不议价哦 买家小王',
      rule: 'bargaining.maxRounds(2)',
    });
  });

  it('price intent, floor and floor breaking', () => {
    for (const t of ['能便宜点吗', '最低多少', '80元行吗', '包邮吗', '可以少点不'])
      assert.ok(detectPriceIntent(t), t);
    for (const t of ['你好', '什么时候发货', '成色怎么样']) assert.ok(!detectPriceIntent(t), t);
    assert.equal(priceFloor(100, { maxDiscountPercent: 10, maxRounds: 3, refusal: '' }), 90);
    assert.equal(
      priceFloor(100, { maxDiscountPercent: 30, maxDiscountAmount: 5, maxRounds: 3, refusal: '' }),
      95,
    );
    assert.equal(priceFloor(undefined, { maxDiscountPercent: 10, maxRounds: 3, refusal: '' }), undefined);
    assert.ok(breaksFloor('那就 85 元给你吧', 90));
    assert.ok(!breaksFloor('最低 92 元哦', 90));
    assert.ok(breaksFloor('¥80 包邮', 90));
  });

  it('placeholders leave unknown names alone', () => {
    assert.equal(fillPlaceholders('{a} {b} {c}', { a: 1, b: 'x' }), '1 x {c}');
  });
});
