import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { encode } from '@msgpack/msgpack';
import { HISTORY_FIRST_CURSOR, IM_APP_KEY, IM_UA, MTOP_APP_KEY } from '../src/protocol/constants.js';
import {
  getCookie,
  mergeSetCookies,
  parseCookies,
  readUnb,
  serializeCookies,
} from '../src/protocol/cookies.js';
import {
  ackDiffFrame,
  ackFrame,
  frameMid,
  heartbeatFrame,
  isResponse,
  listUserMessagesFrame,
  parseFrame,
  parseHistoryResponse,
  parseSendResponse,
  registerFrame,
  sendImageFrame,
  sendTextFrame,
  syncEntries,
} from '../src/protocol/frames.js';
import { deviceId, mid, uuid } from '../src/protocol/ids.js';
import {
  canTransition,
  cardInfo,
  extractOrderId,
  isDeliveryTrigger,
  isSystemText,
  orderStatusOf,
} from '../src/protocol/orders.js';
import { decodePushEntry, decodeSyncPush } from '../src/protocol/push.js';
import { mtopQuery, mtopSign, signToken } from '../src/protocol/sign.js';
import type { ChatMessage, DecodedEntry } from '../src/protocol/types.js';

// ---- fixtures: MessagePack with small-integer map keys, exactly like the real service ----

/** Encodes like the service: a Map keeps its integer keys; Uint8Array becomes bin. */
function pack(v: unknown): Uint8Array {
  if (v instanceof Map) {
    const parts: Uint8Array[] = [];
    const n = v.size;
    parts.push(n < 16 ? Uint8Array.of(0x80 + n) : Uint8Array.of(0xde, n >> 8, n & 0xff));
    for (const [k, val] of v) parts.push(pack(k), pack(val));
    return Buffer.concat(parts);
  }
  if (Array.isArray(v)) {
    const parts: Uint8Array[] = [
      v.length < 16 ? Uint8Array.of(0x90 + v.length) : Uint8Array.of(0xdc, 0, v.length),
    ];
    for (const x of v) parts.push(pack(x));
    return Buffer.concat(parts);
  }
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) return pack(new Map(Object.entries(v)));
  return encode(v);
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const entry = (m: unknown) => ({ data: b64(pack(m)), objectType: 40000, timestamp: Date.now() });
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

function chat(d: DecodedEntry): ChatMessage {
  assert.equal(d.kind, 'chat', `expected chat, got ${JSON.stringify(d)}`);
  return (d as { message: ChatMessage }).message;
}

const ORDER_ID = '4105829912345678901';
const cardJson = (title: string, button: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    contentType: 26,
    dxCard: {
      item: {
        main: {
          exContent: {
            title,
            desc: '闲鱼小店 商品 ¥9.90',
            button: { text: button, targetUrl: `fleamarket://order_detail?orderId=${ORDER_ID}&role=seller` },
          },
          targetUrl: `fleamarket://order_detail?id=${ORDER_ID}&role=seller`,
          clickParam: { event: 'click' },
        },
      },
      template: { name: 'idlefish_message_trade_chat_card', version: '1' },
    },
    ...extra,
  });

/** The doc's real "buyer placed the order, unpaid" card (§1.7). */
function realCard(): Map<number, unknown> {
  return new Map<number, unknown>([
    [
      1,
      new Map<number, unknown>([
        [1, '3149637063@goofish'],
        [2, '47983389096@goofish'],
        [3, '3416565274542.PNM'],
        [4, 0],
        [5, 1742458817389],
        [
          6,
          new Map<number, unknown>([
            [1, 101],
            [
              3,
              new Map<number, unknown>([
                [1, ''],
                [2, '[我已拍下，待付款]'],
                [3, ''],
                [4, 26],
                [5, cardJson('我已拍下，待付款', '修改价格')],
              ]),
            ],
          ]),
        ],
        [7, 0],
        [8, 1],
        [9, 0],
        [
          10,
          {
            senderUserId: '3149637063',
            reminderTitle: '买家小王',
            reminderContent: '[我已拍下，待付款]',
            reminderNotice: '买家小王: [我已拍下，待付款]',
            detailNotice: '[我已拍下，待付款]',
            reminderUrl:
              'fleamarket://message_chat?itemId=897654321012&peerUserId=3149637063&peerUserNick=%E4%B9%B0%E5%AE%B6&sid=47983389096&messageId=3416565274542.PNM&adv=no',
            bizTag: '{"sourceId":"S:1","taskName":"trade","materialId":"m1","taskId":"t1"}',
            extJson: `{"updateKey":"47983389096:${ORDER_ID}:1_not_pay_seller","contentType":"26","msgArgs":{}}`,
            redReminder: '等待买家付款',
            redReminderStyle: '1',
            receiver: '2200000000001',
            sessionType: '1',
            senderUserType: '0',
          },
        ],
        [12, 1],
      ]),
    ],
    [3, { needPush: 'true' }],
  ]);
}

function textMessage(o: {
  sender?: string;
  cid?: string;
  wireId?: string;
  text?: string | Uint8Array;
  createdAt?: number;
  ext?: Record<string, unknown>;
  needPush?: string;
}) {
  const sender = o.sender ?? '1111111111';
  const text = o.text ?? '你好，在吗';
  return new Map<number, unknown>([
    [
      1,
      new Map<number, unknown>([
        [1, `${sender}@goofish`],
        [2, `${o.cid ?? '50000000001'}@goofish`],
        [3, o.wireId ?? '4000000000001.PNM'],
        [4, 0],
        [5, o.createdAt ?? 1742458817389],
        [
          6,
          new Map<number, unknown>([
            [1, 101],
            [
              3,
              new Map<number, unknown>([
                [1, ''],
                [2, typeof text === 'string' ? text : ''],
                [3, ''],
                [4, 1],
                [5, JSON.stringify({ contentType: 1, text: { text: typeof text === 'string' ? text : '' } })],
              ]),
            ],
          ]),
        ],
        [
          10,
          {
            senderUserId: sender,
            senderNick: '小李',
            reminderTitle: '小李',
            reminderContent: text,
            reminderUrl: `fleamarket://message_chat?itemId=700000000001&peerUserId=${sender}&sid=${o.cid ?? '50000000001'}&adv=no`,
            sessionType: '1',
            ...o.ext,
          },
        ],
      ]),
    ],
    [3, { needPush: o.needPush ?? 'true' }],
  ]);
}

// ---- sign ----

describe('mtop sign', () => {
  const data = `{"appKey":"${IM_APP_KEY}","deviceId":"5F1C0E0A-1B2C-4D3E-8F90-A1B2C3D4E5F6-2200000000001"}`;

  it('matches md5 hex of token&t&appKey&data (node:crypto)', () => {
    const expected = createHash('md5').update(`abc123def456&1742458817389&34839810&${data}`).digest('hex');
    assert.equal(mtopSign('abc123def456', 1742458817389, data), expected);
    assert.equal(mtopSign('abc123def456', '1742458817389', data), expected);
  });

  it('matches literal vectors computed with md5sum', () => {
    assert.equal(mtopSign('abc123def456', 1742458817389, data), '766c32727b5a1c327a61a3a86274f808');
    assert.equal(mtopSign('', 1700000000000, '{}'), '682fdab74a53471d2bf2a6994077bb71');
    assert.equal(mtopSign('tk', 1, '{"itemId":"1234567890"}'), '39652aa2eaf69b74a523e551190c6371');
  });

  it('takes the token from _m_h5_tk before the first underscore', () => {
    assert.equal(signToken('unb=1; _m_h5_tk=abc123def456_1742460000000; _m_h5_tk_enc=zzz'), 'abc123def456');
    assert.equal(signToken('unb=1'), '');
  });

  it('builds the common query params with a matching sign', () => {
    const cookies = 'unb=2200000000001; _m_h5_tk=abc123def456_1742460000000';
    const q = mtopQuery({
      api: 'mtop.x.y',
      version: '1.0',
      data,
      cookies,
      t: 1742458817389,
      extra: { sm: 'sm' },
    });
    assert.equal(q.get('jsv'), '2.7.2');
    assert.equal(q.get('appKey'), MTOP_APP_KEY);
    assert.equal(q.get('t'), '1742458817389');
    assert.equal(q.get('sign'), '766c32727b5a1c327a61a3a86274f808');
    assert.equal(q.get('v'), '1.0');
    assert.equal(q.get('type'), 'originaljson');
    assert.equal(q.get('accountSite'), 'xianyu');
    assert.equal(q.get('dataType'), 'json');
    assert.equal(q.get('timeout'), '20000');
    assert.equal(q.get('api'), 'mtop.x.y');
    assert.equal(q.get('sessionOption'), 'AutoLoginOnly');
    assert.equal(q.get('sm'), 'sm');
  });
});

// ---- ids ----

describe('ids', () => {
  it('mid = random 0-999 + epoch ms + " 0"', () => {
    for (let i = 0; i < 200; i++) {
      const m = mid(1742458817389);
      const match = /^(\d{0,3})1742458817389 0$/.exec(m);
      assert.ok(match, m);
      assert.ok(Number(match[1] || 0) < 1000);
    }
    assert.match(mid(), /^\d{13,16} 0$/);
    const ms = Date.now() + 60_000; // one frozen millisecond, later than any mid issued so far
    const mids = Array.from({ length: 3000 }, () => mid(ms));
    assert.equal(new Set(mids).size, 3000, 'mids never repeat, even within one millisecond');
    assert.ok(
      mids.every((m) => new RegExp(`^\\d{1,3}(${ms}|${ms + 1}|${ms + 2}) 0$`).test(m)),
      mids[0],
    );
  });

  it('uuid = "-" + epoch ms + "1"', () => {
    assert.equal(uuid(1742458817389), '-17424588173891');
    assert.match(uuid(), /^-\d{13}1$/);
    const many = Array.from({ length: 5000 }, () => uuid(1742458817389));
    assert.equal(new Set(many).size, 5000, 'uuids never repeat, even within one millisecond');
  });

  it('device id = upper-case UUIDv4 + "-" + unb', () => {
    for (let i = 0; i < 50; i++) {
      const did = deviceId('2200000000001');
      assert.match(
        did,
        /^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}-2200000000001$/,
      );
      assert.equal(did.slice(0, 36).length, 36);
      assert.equal(did[14], '4');
    }
  });
});

// ---- cookies ----

describe('cookies', () => {
  const jar = 'unb=2200000000001; cookie2=c2; _m_h5_tk=old_1; t=tt';

  it('parses, reads and serialises in order', () => {
    const m = parseCookies(`${jar}; empty=; =bad; novalue`);
    assert.deepEqual([...m.keys()], ['unb', 'cookie2', '_m_h5_tk', 't', 'empty']);
    assert.equal(serializeCookies(parseCookies(jar)), jar);
    assert.equal(getCookie(jar, 'cookie2'), 'c2');
    assert.equal(readUnb(jar), '2200000000001');
    assert.equal(readUnb('cookie2=x'), undefined);
  });

  it('merges Set-Cookie headers (replace, add, delete) via Headers.getSetCookie()', () => {
    const h = new Headers();
    h.append(
      'Set-Cookie',
      '_m_h5_tk=new_2; Path=/; Domain=.goofish.com; Expires=Wed, 21 Oct 2099 07:28:00 GMT',
    );
    h.append('Set-Cookie', '_m_h5_tk_enc=enc2; Path=/');
    h.append('Set-Cookie', 't=gone; Max-Age=0');
    h.append('Set-Cookie', 'cookie2=c2; Path=/');
    const r = mergeSetCookies(jar, h);
    assert.equal(r.changed, true);
    assert.deepEqual(r.names.sort(), ['_m_h5_tk', '_m_h5_tk_enc', 't']);
    assert.equal(r.cookies, 'unb=2200000000001; cookie2=c2; _m_h5_tk=new_2; _m_h5_tk_enc=enc2');
  });

  it('reports no change for identical values and past Expires deletes', () => {
    assert.equal(mergeSetCookies(jar, ['cookie2=c2; Path=/']).changed, false);
    const r = mergeSetCookies(jar, ['cookie2=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    assert.equal(getCookie(r.cookies, 'cookie2'), undefined);
  });
});

// ---- frames ----

describe('lwp frames', () => {
  it('/reg carries every header of §1.4 and no body', () => {
    const f = registerFrame({ token: 'TOKEN', deviceId: 'DID-1', mid: '1 0' });
    assert.equal(f.lwp, '/reg');
    assert.equal('body' in f, false);
    assert.deepEqual(f.headers, {
      'cache-header': 'app-key token ua wv',
      'app-key': '444e9908a51d1cb236a27862abc769c9',
      token: 'TOKEN',
      ua: IM_UA,
      dt: 'j',
      wv: 'im:3,au:3,sy:6',
      sync: '0,0;0;0;',
      did: 'DID-1',
      mid: '1 0',
    });
    assert.ok(
      IM_UA.endsWith(
        ' DingTalk(2.1.5) OS(Windows/10) Browser(Chrome/133.0.0.0) DingWeb/2.1.5 IMPaaS DingWeb/2.1.5',
      ),
    );
  });

  it('ackDiff says "caught up now"', () => {
    const f = ackDiffFrame({ mid: '2 0', now: 1742458817389 });
    assert.equal(f.lwp, '/r/SyncStatus/ackDiff');
    assert.deepEqual(f.body, [
      {
        pipeline: 'sync',
        tooLong2Tag: 'PNM,1',
        channel: 'sync',
        topic: 'sync',
        highPts: 0,
        pts: 1742458817389000,
        seq: 0,
        timestamp: 1742458817389,
      },
    ]);
  });

  it('heartbeat and acks', () => {
    assert.deepEqual(heartbeatFrame('3 0'), { lwp: '/!', headers: { mid: '3 0' } });
    const push = {
      lwp: '/s/sync',
      headers: { mid: '9 0', sid: 'S1', 'app-key': 'k', ua: 'u', dt: 'j', other: 'x' },
    };
    assert.deepEqual(ackFrame(push, 'new 0'), {
      code: 200,
      headers: { mid: '9 0', sid: 'S1', 'app-key': 'k', ua: 'u', dt: 'j' },
    });
    assert.deepEqual(ackFrame({ lwp: '/s/vulcan' }, 'new 0'), {
      code: 200,
      headers: { mid: 'new 0', sid: '' },
    });
  });

  it('sendByReceiverScope text body exactly per §1.10', () => {
    const f = sendTextFrame({
      mid: '4 0',
      uuid: '-17424588173891',
      chatId: '47983389096',
      toUserId: '3149637063',
      myUserId: '2200000000001',
      text: '你好，在的',
    });
    assert.deepEqual(f, {
      lwp: '/r/MessageSend/sendByReceiverScope',
      headers: { mid: '4 0' },
      body: [
        {
          uuid: '-17424588173891',
          cid: '47983389096@goofish',
          conversationType: 1,
          content: {
            contentType: 101,
            custom: {
              type: 1,
              data: Buffer.from('{"contentType":1,"text":{"text":"你好，在的"}}').toString('base64'),
            },
          },
          redPointPolicy: 0,
          extension: { extJson: '{}' },
          ctx: { appVersion: '1.0', platform: 'web' },
          mtags: {},
          msgReadStatusSetting: 1,
        },
        { actualReceivers: ['3149637063@goofish', '2200000000001@goofish'] },
      ],
    });
  });

  it('image send uses the same envelope', () => {
    const f = sendImageFrame({
      mid: '5 0',
      uuid: '-1',
      chatId: '1@goofish',
      toUserId: '2',
      myUserId: '3',
      url: 'https://img.alicdn.com/x.jpg',
    });
    const data = ((f.body as Array<{ content: { custom: { data: string } } }>)[0]?.content.custom.data ??
      '') as string;
    assert.deepEqual(JSON.parse(Buffer.from(data, 'base64').toString()), {
      contentType: 2,
      image: { pics: [{ height: 600, type: 0, url: 'https://img.alicdn.com/x.jpg', width: 800 }] },
    });
    assert.equal((f.body as Array<{ cid: string }>)[0]?.cid, '1@goofish');
  });

  it('listUserMessages request and response', () => {
    assert.deepEqual(listUserMessagesFrame({ mid: '6 0', chatId: '47983389096' }).body, [
      '47983389096@goofish',
      false,
      HISTORY_FIRST_CURSOR,
      20,
      false,
    ]);
    const page = parseHistoryResponse({
      code: 200,
      headers: { mid: '6 0' },
      body: {
        hasMore: 1,
        nextCursor: 1742458000000,
        userMessageModels: [
          {
            message: {
              messageId: 'm1.PNM',
              createAt: 1742458000001,
              extension: { reminderTitle: '小李', senderUserId: '1111' },
              content: {
                custom: {
                  data: Buffer.from('{"contentType":1,"text":{"text":"卡密: ABC"}}').toString('base64'),
                },
              },
            },
          },
          { message: {} },
        ],
      },
    });
    assert.equal(page.hasMore, true);
    assert.equal(page.nextCursor, 1742458000000);
    assert.equal(page.messages.length, 2);
    assert.deepEqual(page.messages[0], {
      messageId: 'm1.PNM',
      senderId: '1111',
      senderName: '小李',
      content: { contentType: 1, text: { text: '卡密: ABC' } },
      text: '卡密: ABC',
      createdAt: 1742458000001,
    });
  });

  it('parses responses: code, mid, messageId, CSI_FORBID reason', () => {
    const ok = parseFrame('{"code":200,"headers":{"mid":"4 0"},"body":{"messageId":"3416565274542.PNM"}}');
    assert.ok(ok);
    assert.equal(frameMid(ok), '4 0');
    assert.equal(isResponse(ok), true);
    assert.deepEqual(parseSendResponse(ok), { ok: true, messageId: '3416565274542.PNM' });
    assert.deepEqual(
      parseSendResponse({ code: 200, headers: { mid: '4 0' }, body: { reason: 'CSI_FORBID' } }),
      {
        ok: false,
        reason: 'CSI_FORBID',
      },
    );
    assert.equal(parseSendResponse({ code: 500, body: {} }).ok, false);
    assert.equal(parseFrame('not json'), undefined);
    assert.equal(parseFrame('[1,2]'), undefined);
    assert.equal(isResponse({ lwp: '/s/sync', headers: { mid: '1' } }), false);
    assert.deepEqual(syncEntries({ body: { syncPushPackage: { data: [{ data: 'x' }] } } }), [{ data: 'x' }]);
    assert.equal(syncEntries({ body: { syncPushPackage: { data: [] } } }), undefined);
    assert.equal(syncEntries({ code: 200, body: {} }), undefined);
  });
});

// ---- sync push decoding ----

describe('sync push entries', () => {
  it('decodes the real "[我已拍下，待付款]" card', () => {
    const m = chat(decodePushEntry(entry(realCard())));
    assert.equal(m.chatId, '47983389096');
    assert.equal(m.senderId, '3149637063');
    assert.equal(m.senderName, '买家小王');
    assert.equal(m.messageId, '3416565274542.PNM');
    assert.equal(m.createdAt, 1742458817389);
    assert.equal(m.text, '[我已拍下，待付款]');
    assert.equal(m.contentType, 26);
    assert.equal(m.itemId, '897654321012');
    assert.equal(m.orderId, ORDER_ID);
    assert.equal(m.cardTitle, '我已拍下，待付款');
    assert.equal(m.cardButton, '修改价格');
    assert.equal(m.redReminder, '等待买家付款');
    assert.equal(m.isGroup, false);
    assert.equal(m.isSystem, true);
    assert.equal(orderStatusOf(m), 'processing');
  });

  it('decodes a buyer text message with string keys and bin strings', () => {
    const m = chat(
      decodePushEntry(
        entry(textMessage({ text: bytes('这个还在吗？'), ext: { senderNick: bytes('小李') } })),
        {
          now: 1,
        },
      ),
    );
    assert.equal(m.text, '这个还在吗？');
    assert.equal(m.senderName, '小李');
    assert.equal(m.senderId, '1111111111');
    assert.equal(m.chatId, '50000000001');
    assert.equal(m.messageId, '4000000000001.PNM');
    assert.equal(m.contentType, 1);
    assert.equal(m.itemId, '700000000001');
    assert.equal(m.isSystem, false);
    assert.equal(m.orderId, undefined);
  });

  it('prefers bizTag / extJson messageId over "1"."3"', () => {
    const biz = chat(decodePushEntry(entry(textMessage({ ext: { bizTag: '{"messageId":"biz-1"}' } }))));
    assert.equal(biz.messageId, 'biz-1');
    assert.equal(biz.serverMessageId, '4000000000001.PNM');
    const ext = chat(decodePushEntry(entry(textMessage({ ext: { extJson: '{"messageId":"ext-1"}' } }))));
    assert.equal(ext.messageId, 'ext-1');
  });

  it('flags system messages: needPush false, known strings, bracketed text; groups by sessionType 30', () => {
    assert.equal(chat(decodePushEntry(entry(textMessage({ needPush: 'false', text: 'hi' })))).isSystem, true);
    assert.equal(chat(decodePushEntry(entry(textMessage({ text: '快给ta一个评价吧~' })))).isSystem, true);
    assert.equal(chat(decodePushEntry(entry(textMessage({ text: '[图片]' })))).isSystem, true);
    assert.equal(chat(decodePushEntry(entry(textMessage({ text: '[在吗] 你好' })))).isSystem, false);
    assert.equal(chat(decodePushEntry(entry(textMessage({ ext: { sessionType: '30' } })))).isGroup, true);
  });

  it('falls back to senderUserId / reminderTitle for sender fields', () => {
    const m = textMessage({ ext: { senderNick: undefined } });
    const inner = m.get(1) as Map<number, unknown>;
    const ext = inner.get(10) as Record<string, unknown>;
    delete ext.senderNick;
    ext.reminderTitle = '标题昵称';
    const c = chat(decodePushEntry(entry(m)));
    assert.equal(c.senderName, '标题昵称');
  });

  it('decodes a paid card nested under dynamicOperation.changeContent', () => {
    const m = realCard();
    const msg = m.get(1) as Map<number, unknown>;
    const inner = (msg.get(6) as Map<number, unknown>).get(3) as Map<number, unknown>;
    const card = JSON.parse(cardJson('我已付款，等待你发货', '去发货'));
    inner.set(
      5,
      JSON.stringify({ contentType: 26, dynamicOperation: { changeContent: { dxCard: card.dxCard } } }),
    );
    inner.set(2, '[我已付款，等待你发货]');
    Object.assign(msg.get(10) as object, {
      reminderContent: '[我已付款，等待你发货]',
      redReminder: '等待卖家发货',
    });
    const c = chat(decodePushEntry(entry(m)));
    assert.equal(c.orderId, ORDER_ID);
    assert.equal(c.cardTitle, '我已付款，等待你发货');
    assert.equal(isDeliveryTrigger(c.text, c.cardTitle), true);
    assert.equal(orderStatusOf(c), 'pending_ship');
  });

  it('accepts base64 content JSON (HTTP history form)', () => {
    const m = realCard();
    const inner = ((m.get(1) as Map<number, unknown>).get(6) as Map<number, unknown>).get(3) as Map<
      number,
      unknown
    >;
    inner.set(5, Buffer.from(cardJson('t', 'b')).toString('base64'));
    assert.equal(chat(decodePushEntry(entry(m))).orderId, ORDER_ID);
  });

  it('typing indicator', () => {
    const d = decodePushEntry(entry(new Map<number, unknown>([[1, [new Map([[1, '3149637063@goofish']])]]])));
    assert.deepEqual(d, { kind: 'typing', userId: '3149637063' });
  });

  it('card update', () => {
    const d = decodePushEntry(
      entry(
        new Map<number, unknown>([
          [1, '47983389096@goofish'],
          [4, { reminderContent: '[你已发货]', updateKey: 'k' }],
        ]),
      ),
    );
    assert.equal(d.kind, 'card-update');
  });

  it('red reminder in "3"', () => {
    const d = decodePushEntry(
      entry(
        new Map<number, unknown>([
          [1, '3149637063@goofish'],
          [3, { redReminder: '交易关闭', userId: '3149637063' }],
        ]),
      ),
    );
    assert.equal(d.kind, 'red-reminder');
    assert.equal(d.kind === 'red-reminder' && d.redReminder, '交易关闭');
    assert.equal(d.kind === 'red-reminder' && d.userId, '3149637063');
  });

  it('system notice: base64 JSON with chatType', () => {
    const notice = {
      chatType: 1,
      operation: { content: { sessionArouse: { arouseChatScriptInfo: [{ chatScrip: '小闲鱼智能提示' }] } } },
    };
    const d = decodePushEntry({ data: Buffer.from(JSON.stringify(notice)).toString('base64') });
    assert.equal(d.kind, 'system-notice');
    assert.equal(d.kind === 'system-notice' && d.chatType, 1);
    // cv-cat: plain JSON first
    assert.equal(decodePushEntry({ data: JSON.stringify(notice) }).kind, 'system-notice');
  });

  it('unknown but decodable maps are "unknown"', () => {
    assert.equal(decodePushEntry(entry(new Map<number, unknown>([[7, 1]]))).kind, 'unknown');
    assert.equal(
      decodePushEntry(entry(new Map<number, unknown>([[1, { 10: { other: 1 } }]]))).kind,
      'unknown',
    );
  });

  it('malformed input never throws', () => {
    const bad: unknown[] = [
      undefined,
      null,
      42,
      {},
      { data: '' },
      { data: '!!!not base64!!!' },
      { data: b64(Uint8Array.of(0xc1)) }, // never-used msgpack byte
      { data: b64(Uint8Array.of(0xdc, 0xff)) }, // truncated array16
      { data: b64(encode(12)) }, // not a map
      { data: '{"broken json' },
      { data: b64(Uint8Array.of(0x81, 0x01)) }, // map missing its value
    ];
    for (const b of bad) {
      const d = decodePushEntry(b);
      assert.equal(d.kind, 'malformed', `${JSON.stringify(b)} → ${JSON.stringify(d)}`);
    }
    // structurally odd but decodable: still no throw
    const odd = decodePushEntry(
      entry(new Map<number, unknown>([[1, new Map<number, unknown>([[10, { reminderContent: 5 }]])]])),
    );
    assert.equal(odd.kind, 'chat');
    assert.equal(chat(odd).text, '5');
  });

  it('tolerates trailing bytes after the first msgpack value', () => {
    const buf = Buffer.concat([pack(textMessage({})), Uint8Array.of(0x00, 0x01)]);
    assert.equal(decodePushEntry({ data: buf.toString('base64') }).kind, 'chat');
  });

  it('decodes every entry of a multi-entry push', () => {
    const frame = {
      lwp: '/s/sync',
      headers: { mid: '1 0', sid: 's' },
      body: {
        syncPushPackage: {
          data: [
            entry(textMessage({ wireId: 'a.PNM', text: '一' })),
            entry(textMessage({ wireId: 'b.PNM', text: '二' })),
            { data: '%%%' },
            entry(realCard()),
          ],
        },
      },
    };
    const entries = syncEntries(frame);
    assert.ok(entries);
    const decoded = decodeSyncPush(entries);
    assert.deepEqual(
      decoded.map((d) => d.kind),
      ['chat', 'chat', 'malformed', 'chat'],
    );
    assert.deepEqual(
      decoded.filter((d) => d.kind === 'chat').map((d) => chat(d).text),
      ['一', '二', '[我已拍下，待付款]'],
    );
  });
});

// ---- orders ----

describe('order ids and §1.9 tables', () => {
  it('button targetUrl orderId=', () => {
    assert.equal(extractOrderId(JSON.parse(cardJson('x', 'y'))), ORDER_ID);
  });

  it('main.targetUrl order_detail?id= when the button has none', () => {
    const c = {
      dxCard: {
        item: {
          main: {
            exContent: { button: { text: 'b' } },
            targetUrl: 'fleamarket://order_detail?id=1234567890123&role=seller',
          },
        },
      },
    };
    assert.equal(extractOrderId(c), '1234567890123');
  });

  it('dynamicOperation.changeContent variant', () => {
    const c = {
      dynamicOperation: {
        changeContent: {
          dxCard: { item: { main: { targetUrl: 'fleamarket://order_detail?id=2234567890123' } } },
        },
      },
    };
    assert.equal(extractOrderId(c), '2234567890123');
  });

  it('bizOrderId= in an adjust_price button', () => {
    const c = {
      dxCard: {
        item: {
          main: {
            exContent: {
              button: { targetUrl: 'fleamarket://adjust_price?itemId=1&bizOrderId=3234567890123' },
            },
          },
        },
      },
    };
    assert.equal(extractOrderId(c), '3234567890123');
  });

  it('last-resort regexes', () => {
    assert.equal(extractOrderId(undefined, { a: 'see orderId:4234567890123' }), '4234567890123');
    assert.equal(extractOrderId({ x: { id: 5234567890123 } }), '5234567890123');
    assert.equal(extractOrderId({ x: { id: 12 } }), undefined);
    assert.equal(extractOrderId(undefined, 'bizOrderId=6234567890123'), '6234567890123');
    assert.equal(
      extractOrderId(undefined, { extJson: '{"updateKey":"479:7234567890123:1_not_pay_seller"}' }),
      '7234567890123',
    );
    assert.equal(extractOrderId(undefined, { text: '你好' }), undefined);
  });

  it('card info', () => {
    assert.deepEqual(cardInfo(JSON.parse(cardJson('我发起了退款申请', '已同意'))), {
      title: '我发起了退款申请',
      button: '已同意',
      orderId: ORDER_ID,
    });
    assert.deepEqual(cardInfo(null), {});
  });

  it('delivery triggers, system strings and status mapping', () => {
    assert.equal(isDeliveryTrigger('[我已付款，等待你发货]'), true);
    assert.equal(isDeliveryTrigger('xx[记得及时发货]xx'), true);
    assert.equal(isDeliveryTrigger('[卡片消息]', '我已小刀，待刀成'), true);
    assert.equal(isDeliveryTrigger('[卡片消息]', '别的'), false);
    assert.equal(isDeliveryTrigger('你好'), false);
    assert.equal(isSystemText('AI正在帮你回复消息，不错过每笔订单'), true);
    assert.equal(isSystemText('已发货'), true);
    assert.equal(isSystemText('发货了吗'), false);
    assert.equal(orderStatusOf({ text: '[买家确认收货，交易成功]' }), 'completed');
    assert.equal(orderStatusOf({ text: '你已发货' }), 'shipped');
    assert.equal(orderStatusOf({ text: '[付款完成]' }), 'pending_ship');
    assert.equal(orderStatusOf({ text: '[退款成功，钱款已原路退返]' }), 'cancelled');
    assert.equal(
      orderStatusOf({ text: '[卡片消息]', cardTitle: '我发起了退款申请', cardButton: '已同意' }),
      'refunding',
    );
    assert.equal(
      orderStatusOf({ text: '[卡片消息]', cardTitle: '我发起了退款申请', cardButton: '已撤销' }),
      'refund_cancelled',
    );
    assert.equal(orderStatusOf({ text: 'x', redReminder: '交易关闭' }), 'cancelled');
    assert.equal(orderStatusOf({ text: '你好' }), undefined);
  });

  it('status never moves backwards except into refunding/cancelled', () => {
    assert.equal(canTransition(undefined, 'processing'), true);
    assert.equal(canTransition('processing', 'pending_ship'), true);
    assert.equal(canTransition('shipped', 'pending_ship'), false);
    assert.equal(canTransition('completed', 'refunding'), true);
    assert.equal(canTransition('shipped', 'cancelled'), true);
    assert.equal(canTransition('cancelled', 'shipped'), false);
    assert.equal(canTransition('shipped', 'shipped'), false);
  });
});
