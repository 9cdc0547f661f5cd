// Exercises the simulator through real sockets with a tiny hand-written client (not the product's).
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decode } from '@msgpack/msgpack';
import { WebSocket } from 'ws';
import { type Seller, type Sim, startSim } from './index.js';
import { encodeMsgpack } from './msgpack.js';

const IM_APP_KEY = '444e9908a51d1cb236a27862abc769c9';
const UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36';
const REG_UA = `${UA} DingTalk(2.1.5) OS(Windows/10) Browser(Chrome/133.0.0.0) DingWeb/2.1.5 IMPaaS DingWeb/2.1.5`;

type Json = Record<string, unknown>;

// ---- tiny client -------------------------------------------------------------------------

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
let midSeq = 0;
const mid = () => `${midSeq++ % 1000}${Date.now()} 0`;
const deviceId = (unb: string) => `${randomUUID().toUpperCase()}-${unb}`;
const cookieValue = (cookies: string, name: string) =>
  cookies
    .split(';')
    .map((p) => p.trim())
    .find((p) => p.startsWith(`${name}=`))
    ?.slice(name.length + 1);

/** name=value merge of Set-Cookie lines into a cookie string. */
function mergeCookies(cookies: string, setCookies: string[]): string {
  const jar = new Map(
    cookies.split(';').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as [string, string];
    }),
  );
  for (const line of setCookies) {
    const pair = line.split(';')[0] ?? '';
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

async function mtop(
  sim: Sim,
  cookies: string,
  api: string,
  data: unknown,
  o: { sign?: string; version?: string } = {},
): Promise<{ body: Json & { ret: string[]; data: Json }; setCookies: string[] }> {
  const t = String(Date.now());
  const dataStr = JSON.stringify(data);
  const token = (cookieValue(cookies, '_m_h5_tk') ?? '').split('_')[0];
  const sign = o.sign ?? md5(`${token}&${t}&34839810&${dataStr}`);
  const q = new URLSearchParams({
    jsv: '2.7.2',
    appKey: '34839810',
    t,
    sign,
    v: o.version ?? '1.0',
    type: 'originaljson',
    accountSite: 'xianyu',
    dataType: 'json',
    timeout: '20000',
    api,
    sessionOption: 'AutoLoginOnly',
  });
  const res = await fetch(`${sim.url}/h5/${api}/${o.version ?? '1.0'}/?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
    body: new URLSearchParams({ data: dataStr }).toString(),
  });
  return { body: (await res.json()) as never, setCookies: res.headers.getSetCookie() };
}

class Client {
  readonly received: Json[] = [];
  readonly raw: string[] = [];
  closeCode?: number;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const text = d.toString();
      this.raw.push(text);
      try {
        this.received.push(JSON.parse(text) as Json);
      } catch {
        /* junk frames land only in raw */
      }
    });
    ws.on('close', (code) => {
      this.closeCode = code;
    });
  }

  static connect(sim: Sim, cookies?: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(sim.imUrl, {
        headers: {
          Origin: 'https://www.goofish.com',
          'User-Agent': UA,
          ...(cookies ? { Cookie: cookies } : {}),
        },
      });
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(frame: Json): void {
    this.ws.send(JSON.stringify(frame));
  }

  request(sim: Sim, lwp: string, body?: unknown, headers: Json = {}): Promise<Json> {
    const m = mid();
    this.send({ lwp, headers: { mid: m, ...headers }, ...(body === undefined ? {} : { body }) });
    return this.reply(sim, m);
  }

  reply(sim: Sim, m: string): Promise<Json> {
    return sim.waitFor(() =>
      this.received.find((f) => (f.headers as Json | undefined)?.mid === m && 'code' in f),
    );
  }

  register(sim: Sim, token: string, did: string): Promise<Json> {
    return this.request(sim, '/reg', undefined, {
      'cache-header': 'app-key token ua wv',
      'app-key': IM_APP_KEY,
      token,
      ua: REG_UA,
      dt: 'j',
      wv: 'im:3,au:3,sy:6',
      sync: '0,0;0;0;',
      did,
    });
  }

  /** Acks a push like protocol 1.6. */
  ack(f: Json): void {
    const h = f.headers as Json;
    this.send({ code: 200, headers: { mid: h.mid, sid: h.sid ?? '' } });
  }

  syncPushes(): Json[] {
    return this.received.filter((f) => f.lwp === '/s/sync');
  }
}

/** base64 → msgpack → JSON round trip, like the client's decoder. */
const decodeEntry = (entry: unknown): Json =>
  JSON.parse(JSON.stringify(decode(Buffer.from((entry as { data: string }).data, 'base64')))) as Json;
const entriesOf = (push: Json): unknown[] =>
  ((push.body as Json).syncPushPackage as { data: unknown[] }).data;

async function login(
  sim: Sim,
  seller: Seller,
): Promise<{ client: Client; token: string; did: string; cookies: string }> {
  const did = deviceId(seller.unb);
  const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
    appKey: IM_APP_KEY,
    deviceId: did,
  });
  assert.deepEqual(r.body.ret, ['SUCCESS::调用成功']);
  const token = r.body.data.accessToken as string;
  const cookies = mergeCookies(seller.cookies, r.setCookies);
  const client = await Client.connect(sim, cookies);
  const reg = await client.register(sim, token, did);
  assert.equal(reg.code, 200);
  await sim.waitFor(() => client.received.find((f) => f.lwp === '/s/vulcan'));
  return { client, token, did, cookies };
}

// ---- tests ---------------------------------------------------------------------------------

describe('xianyu simulator', () => {
  let sim: Sim;
  const clients: Client[] = [];
  before(async () => {
    sim = await startSim();
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await sim.close();
  });
  const session = async (seller: Seller) => {
    const s = await login(sim, seller);
    clients.push(s.client);
    return s;
  };

  it('encodes integer-keyed maps as msgpack int keys, decodable by @msgpack/msgpack', () => {
    assert.deepEqual([...encodeMsgpack(new Map([[1, 'a']]))], [0x81, 0x01, 0xa1, 0x61]);
    const long = 'x'.repeat(70000);
    const v = new Map<number, unknown>([
      [1, { s: '中文', n: -1, m: -200, big: 1742458817389, neg: -5_000_000_000, f: 1.5, t: true, z: null }],
      [2, [1, 300, 70000, 5_000_000_000, long, 'y'.repeat(40), 'w'.repeat(300)]],
      [3, new Uint8Array([1, 2, 3])],
      [4, new Map(Array.from({ length: 20 }, (_, i) => [i, i]))],
    ]);
    const back = decode(encodeMsgpack(v)) as Record<string, unknown>;
    assert.deepEqual(back['1'], {
      s: '中文',
      n: -1,
      m: -200,
      big: 1742458817389,
      neg: -5_000_000_000,
      f: 1.5,
      t: true,
      z: null,
    });
    assert.deepEqual(back['2'], [1, 300, 70000, 5_000_000_000, long, 'y'.repeat(40), 'w'.repeat(300)]);
    assert.deepEqual([...(back['3'] as Uint8Array)], [1, 2, 3]);
    assert.equal(Object.keys(back['4'] as object).length, 20);
  });

  describe('mtop', () => {
    it('accepts a correct sign and rejects a wrong one with the real shape', async () => {
      const seller = sim.createSeller();
      const good = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(good.body.ret, ['SUCCESS::调用成功']);
      assert.equal(good.body.api, 'mtop.taobao.idlemessage.pc.loginuser.get');
      assert.equal(good.body.v, '1.0');
      const bad = await mtop(
        sim,
        seller.cookies,
        'mtop.taobao.idlemessage.pc.loginuser.get',
        {},
        { sign: 'deadbeef' },
      );
      assert.deepEqual(bad.body.ret, ['FAIL_SYS_ILLEGAL_ACCESS::非法请求']);
      const call = sim.mtopCalls().at(-1);
      assert.equal(call?.query.sign, 'deadbeef');
      assert.deepEqual(call?.ret, ['FAIL_SYS_ILLEGAL_ACCESS::非法请求']);
    });

    it('answers an unknown cookie with Session过期 and an unknown api with API_NOT_FOUNDED', async () => {
      const seller = sim.createSeller();
      const r = await mtop(
        sim,
        seller.cookies.replace(/cookie2=\w+/, 'cookie2=0000'),
        'mtop.idle.web.xyh.item.list',
        {},
      );
      assert.deepEqual(r.body.ret, ['FAIL_SYS_SESSION_EXPIRED::Session过期']);
      const u = await mtop(sim, seller.cookies, 'mtop.no.such.api', {});
      assert.deepEqual(u.body.ret, ['FAIL_SYS_API_NOT_FOUNDED::请求API不存在']);
    });

    it('issues an access token, checks appKey/deviceId and sends Set-Cookie', async () => {
      const seller = sim.createSeller();
      const did = deviceId(seller.unb);
      const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: IM_APP_KEY,
        deviceId: did,
      });
      assert.deepEqual(r.body.ret, ['SUCCESS::调用成功']);
      assert.match(r.body.data.accessToken as string, /^\S{20,}$/);
      assert.ok(r.setCookies.some((c) => c.startsWith('sgcookie=')));
      const merged = mergeCookies(seller.cookies, r.setCookies);
      assert.equal(merged, sim.sellerCookies(seller.unb));
      const wrong = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: 'x',
        deviceId: did,
      });
      assert.deepEqual(wrong.body.ret, ['FAIL_SYS_PARAMINVALID_ERROR::请求参数非法']);
      const otherDevice = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: IM_APP_KEY,
        deviceId: `${randomUUID().toUpperCase()}-123`,
      });
      assert.deepEqual(otherDevice.body.ret, ['FAIL_SYS_PARAMINVALID_ERROR::请求参数非法']);
    });

    it('tokenExpired: FAIL_SYS_TOKEN_EXOIRED + fresh _m_h5_tk, then the re-signed retry succeeds', async () => {
      const seller = sim.createSeller();
      sim.inject.tokenExpired(seller.unb, true);
      const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(r.body.ret, ['FAIL_SYS_TOKEN_EXOIRED::令牌过期']);
      assert.ok(r.setCookies.some((c) => c.startsWith('_m_h5_tk=')));
      assert.ok(r.setCookies.some((c) => c.startsWith('_m_h5_tk_enc=')));
      const cookies = mergeCookies(seller.cookies, r.setCookies);
      assert.notEqual(cookieValue(cookies, '_m_h5_tk'), cookieValue(seller.cookies, '_m_h5_tk'));
      const retry = await mtop(sim, cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(retry.body.ret, ['SUCCESS::调用成功']);
    });

    it('riskControl answers FAIL_SYS_USER_VALIDATE + RGV587_ERROR with a punish url', async () => {
      const seller = sim.createSeller();
      sim.inject.riskControl(seller.unb, true);
      const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: IM_APP_KEY,
        deviceId: deviceId(seller.unb),
      });
      assert.deepEqual(r.body.ret, [
        'FAIL_SYS_USER_VALIDATE',
        'RGV587_ERROR::SM::哎哟喂,被挤爆啦,请稍后重试',
      ]);
      assert.match(
        r.body.data.url as string,
        /\/_____tmd_____\/punish\?x5secdata=\w+&x5step=2&action=captcha/,
      );
      const page = await fetch(r.body.data.url as string);
      assert.equal(page.status, 200);
      sim.inject.riskControl(seller.unb, false);
      const ok = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(ok.body.ret, ['SUCCESS::调用成功']);
    });

    it('sessionExpired answers Session过期 and hasLogin fails; valid cookies revive', async () => {
      const seller = sim.createSeller();
      const hasLogin = async () => {
        const res = await fetch(`${sim.url}/newlogin/hasLogin.do?appName=xianyu&fromSite=77`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: seller.cookies },
          body: new URLSearchParams({
            hid: seller.unb,
            ltl: 'true',
            appName: 'xianyu',
            hsiz: cookieValue(seller.cookies, 'cookie2') ?? '',
          }).toString(),
        });
        return ((await res.json()) as { content: { success: boolean } }).content.success;
      };
      assert.equal(await hasLogin(), true);
      sim.inject.sessionExpired(seller.unb, true);
      const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(r.body.ret, ['FAIL_SYS_SESSION_EXPIRED::Session过期']);
      assert.equal(await hasLogin(), false);
    });

    it('item list pages, item detail, consign and free shipping', async () => {
      const seller = sim.createSeller();
      for (let i = 0; i < 25; i++)
        sim.createItem({ sellerId: seller.unb, title: `item ${i}`, price: `${i}.00` });
      const p1 = await mtop(sim, seller.cookies, 'mtop.idle.web.xyh.item.list', {
        needGroupInfo: false,
        pageNumber: 1,
        pageSize: 20,
        groupName: '在售',
        groupId: '58877261',
        defaultGroup: true,
        userId: seller.unb,
      });
      const p2 = await mtop(sim, seller.cookies, 'mtop.idle.web.xyh.item.list', {
        pageNumber: 2,
        pageSize: 20,
      });
      const cards1 = p1.body.data.cardList as { cardData: Json }[];
      const cards2 = p2.body.data.cardList as { cardData: Json }[];
      assert.equal(cards1.length, 20);
      assert.equal(cards2.length, 5);
      assert.deepEqual(Object.keys((cards1[0]?.cardData.priceInfo as Json) ?? {}).sort(), [
        'preText',
        'price',
      ]);
      const item = sim.createItem({
        sellerId: seller.unb,
        title: 'Kindle',
        price: '450.00',
        desc: '九成新',
        skuList: [{ propertyList: [{ valueText: '黑色' }], price: 45000, quantity: 2 }],
      });
      const d = await mtop(sim, seller.cookies, 'mtop.taobao.idle.pc.detail', { itemId: item.itemId });
      const itemDO = d.body.data.itemDO as Json;
      assert.equal(itemDO.title, 'Kindle');
      assert.equal(itemDO.soldPrice, '450.00');
      assert.equal(itemDO.quantity, 2);
      assert.equal((itemDO.skuList as Json[])[0]?.price, 45000);

      const consign = (orderId: string) =>
        mtop(sim, seller.cookies, 'mtop.taobao.idle.logistic.consign.dummy', {
          orderId,
          tradeText: '',
          picList: [],
          newUnconsign: true,
        });
      assert.deepEqual((await consign('999')).body.ret, ['FAIL_BIZ_ORDER_NOT_EXIST::订单不存在']);
      await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId: '301',
        itemId: item.itemId,
        orderId: '4001',
        kind: 'paid',
      });
      assert.deepEqual((await consign('4001')).body.ret, ['SUCCESS::调用成功']);
      assert.ok(sim.orders(seller.unb).find((o) => o.orderId === '4001')?.shippedAt);
      assert.deepEqual((await consign('4001')).body.ret, ['FAIL_BIZ_ORDER_STATUS_ERROR::订单状态异常']);
      const fs = await mtop(sim, seller.cookies, 'mtop.idle.groupon.activity.seller.freeshipping', {
        bizOrderId: '4001',
        itemId: Number(item.itemId),
        buyerId: 301,
      });
      assert.deepEqual(fs.body.ret, ['SUCCESS::调用成功']);
    });
  });

  describe('IM', () => {
    it('rejects the upgrade without a known cookie', async () => {
      await assert.rejects(Client.connect(sim), /upgrade 401/);
      await assert.rejects(Client.connect(sim, 'unb=1; cookie2=2'), /upgrade 401/);
    });

    it('/reg with a wrong token gets a non-200 code; the right one gets 200 and /s/vulcan', async () => {
      const seller = sim.createSeller();
      const did = deviceId(seller.unb);
      const r = await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: IM_APP_KEY,
        deviceId: did,
      });
      const client = await Client.connect(sim, seller.cookies);
      clients.push(client);
      const bad = await client.register(sim, 'not-the-token', did);
      assert.notEqual(bad.code, 200);
      assert.equal(sim.connections(seller.unb), 0);
      const good = await client.register(sim, r.body.data.accessToken as string, did);
      assert.equal(good.code, 200);
      const vulcan = await sim.waitFor(() => client.received.find((f) => f.lwp === '/s/vulcan'));
      assert.ok((vulcan.headers as Json).mid);
      assert.equal(sim.connections(seller.unb), 1);
      // A newer token makes the older one stale.
      await mtop(sim, seller.cookies, 'mtop.taobao.idlemessage.pc.login.token', {
        appKey: IM_APP_KEY,
        deviceId: did,
      });
      const c2 = await Client.connect(sim, seller.cookies);
      clients.push(c2);
      assert.equal((await c2.register(sim, r.body.data.accessToken as string, did)).code, 401);
    });

    it('rejectRegister answers /reg with a non-200 code', async () => {
      const seller = sim.createSeller();
      sim.inject.rejectRegister(seller.unb, true);
      await assert.rejects(session(seller), /200/);
    });

    it('answers heartbeats with the same mid', async () => {
      const { client } = await session(sim.createSeller());
      const r = await client.request(sim, '/!');
      assert.equal(r.code, 200);
    });

    it('pushes a buyer message as base64 msgpack in the shape of 1.7 and records the ack', async () => {
      const seller = sim.createSeller();
      const item = sim.createItem({ sellerId: seller.unb, title: 'Switch', price: '1200.00' });
      const { client } = await session(seller);
      const { chatId, messageId } = await sim.buyerSays({
        sellerId: seller.unb,
        buyerId: '3149637063',
        buyerNick: '小明',
        itemId: item.itemId,
        text: '你好，还在吗',
      });
      const push = await sim.waitFor(() => client.syncPushes()[0]);
      const h = push.headers as Json;
      assert.ok(h.mid && typeof h.sid === 'string');
      const msg = decodeEntry(entriesOf(push)[0]);
      const m = msg['1'] as Json;
      assert.equal(m['1'], '3149637063@goofish');
      assert.equal(m['2'], `${chatId}@goofish`);
      assert.equal(m['3'], messageId);
      assert.equal(typeof m['5'], 'number');
      const c6 = (m['6'] as Json)['3'] as Json;
      assert.equal((m['6'] as Json)['1'], 101);
      assert.equal(c6['4'], 1);
      assert.equal(c6['2'], '你好，还在吗');
      assert.deepEqual(JSON.parse(c6['5'] as string), { contentType: 1, text: { text: '你好，还在吗' } });
      const ext = m['10'] as Record<string, string>;
      assert.equal(ext.senderUserId, '3149637063');
      assert.equal(ext.senderNick, '小明');
      assert.equal(ext.reminderTitle, '小明');
      assert.equal(ext.reminderContent, '你好，还在吗');
      assert.equal(ext.sessionType, '1');
      assert.match(ext.reminderUrl ?? '', new RegExp(`itemId=${item.itemId}&`));
      assert.equal(JSON.parse(ext.bizTag ?? '{}').messageId, messageId);
      assert.equal(JSON.parse(ext.extJson ?? '{}').messageId, messageId);
      assert.deepEqual(msg['3'], { needPush: 'true' });
      // chatId is stable per (seller, buyer, item)
      const again = await sim.buyerSays({
        sellerId: seller.unb,
        buyerId: '3149637063',
        itemId: item.itemId,
        text: '?',
      });
      assert.equal(again.chatId, chatId);
      const pushRec = () => sim.pushes(seller.unb).find((p) => p.mid === h.mid);
      assert.equal(pushRec()?.acked, false);
      client.ack(push);
      await sim.waitFor(() => pushRec()?.acked);
      assert.ok(sim.frames(seller.unb).some((f) => f.code === 200 && f.ackOf === '/s/sync'));
    });

    it('replays unacked pushes after /reg as one push with several entries', async () => {
      const seller = sim.createSeller();
      sim.createItem({ sellerId: seller.unb, title: 'Book', price: '5.00' });
      await sim.buyerSays({ sellerId: seller.unb, buyerId: '501', text: 'a' });
      await sim.buyerSays({ sellerId: seller.unb, buyerId: '502', text: 'b' });
      const { client } = await session(seller);
      const push = await sim.waitFor(() => client.syncPushes()[0]);
      assert.equal(entriesOf(push).length, 2);
      assert.deepEqual(
        entriesOf(push).map((e) => ((decodeEntry(e)['1'] as Json)['10'] as Json).reminderContent),
        ['a', 'b'],
      );
      assert.equal(sim.pushes(seller.unb).find((p) => p.mid === (push.headers as Json).mid)?.replay, true);
    });

    it('validates sends, answers a messageId and echoes the own message', async () => {
      const seller = sim.createSeller();
      sim.createItem({ sellerId: seller.unb, title: 'Lamp', price: '30.00' });
      const { client } = await session(seller);
      const { chatId } = await sim.buyerSays({ sellerId: seller.unb, buyerId: '777', text: '便宜点' });
      const a = (text: string) => ({
        uuid: `-${Date.now()}1`,
        cid: `${chatId}@goofish`,
        conversationType: 1,
        content: {
          contentType: 101,
          custom: {
            type: 1,
            data: Buffer.from(JSON.stringify({ contentType: 1, text: { text } })).toString('base64'),
          },
        },
        redPointPolicy: 0,
        extension: { extJson: '{}' },
        ctx: { appVersion: '1.0', platform: 'web' },
        mtags: {},
        msgReadStatusSetting: 1,
      });
      const b = { actualReceivers: ['777@goofish', `${seller.unb}@goofish`] };
      const send = '/r/MessageSend/sendByReceiverScope';
      const wrongShape = await client.request(sim, send, [{ ...a('x'), conversationType: 2 }, b]);
      assert.equal(wrongShape.code, 400);
      const noReceivers = await client.request(sim, send, [a('x'), { actualReceivers: ['777@goofish'] }]);
      assert.equal(noReceivers.code, 400);
      const ok = await client.request(sim, send, [a('最低28'), b]);
      assert.equal(ok.code, 200);
      const messageId = (ok.body as Json).messageId as string;
      assert.match(messageId, /^\d+\.PNM$/);
      const sent = sim.sent(seller.unb);
      assert.equal(sent.length, 1);
      assert.deepEqual(
        { chatId: sent[0]?.chatId, to: sent[0]?.toUserIds, text: sent[0]?.text, type: sent[0]?.contentType },
        { chatId, to: ['777'], text: '最低28', type: 1 },
      );
      const echo = await sim.waitFor(() =>
        client
          .syncPushes()
          .map((p) => decodeEntry(entriesOf(p)[0]))
          .find((e) => (e['1'] as Json)['3'] === messageId),
      );
      const ext = (echo['1'] as Json)['10'] as Json;
      assert.equal(ext.senderUserId, seller.unb);
      assert.equal(ext.reminderContent, '最低28');
      assert.equal(JSON.parse(ext.extJson as string).messageId, messageId);

      sim.inject.csiForbid(/微信/);
      const blocked = await client.request(sim, send, [a('加我微信'), b]);
      assert.equal(blocked.code, 200);
      assert.equal((blocked.body as Json).reason, 'CSI_FORBID');
      assert.equal((blocked.body as Json).messageId, undefined);
      assert.equal(sim.sent(seller.unb).length, 1);
      sim.inject.csiForbid(null);
    });

    it('sends images, creates and lists conversations, recalls, pushes manual seller messages', async () => {
      const seller = sim.createSeller();
      const item = sim.createItem({ sellerId: seller.unb, title: 'Desk', price: '80.00' });
      const { client } = await session(seller);
      const created = await client.request(sim, '/r/SingleChatConversation/create', [
        {
          pairFirst: '612@goofish',
          pairSecond: `${seller.unb}@goofish`,
          bizType: '1',
          extension: { itemId: item.itemId },
          ctx: { appVersion: '1.0', platform: 'web' },
        },
      ]);
      assert.equal(created.code, 200);
      const cid = ((created.body as Json).singleChatConversation as Json).cid as string;
      assert.match(cid, /^\d+@goofish$/);
      const image = (url: string) => [
        {
          uuid: `-${Date.now()}1`,
          cid,
          conversationType: 1,
          content: {
            contentType: 101,
            custom: {
              type: 1,
              data: Buffer.from(
                JSON.stringify({
                  contentType: 2,
                  image: { pics: [{ height: 600, type: 0, url, width: 800 }] },
                }),
              ).toString('base64'),
            },
          },
          redPointPolicy: 0,
          extension: { extJson: '{}' },
          ctx: { appVersion: '1.0', platform: 'web' },
          mtags: {},
          msgReadStatusSetting: 1,
        },
        { actualReceivers: ['612@goofish', `${seller.unb}@goofish`] },
      ];
      const send = '/r/MessageSend/sendByReceiverScope';
      assert.equal((await client.request(sim, send, image('https://example.com/a.jpg'))).code, 400);
      const ok = await client.request(sim, send, image('https://img.alicdn.com/imgextra/i4/O1CN01x.jpg'));
      assert.equal(ok.code, 200);
      assert.equal(sim.sent(seller.unb)[0]?.contentType, 2);
      const convs = await client.request(sim, '/r/Conversation/listNewestPagination', [Date.now(), 20]);
      const userConvs = (convs.body as Json).userConvs as Json[];
      assert.equal(userConvs.length, 1);
      const recall = await client.request(sim, '/r/MessageManager/recallMessage', [
        (ok.body as Json).messageId,
      ]);
      assert.equal(recall.code, 200);
      const chatId = cid.split('@')[0]!;
      const { messageId } = await sim.sellerSaysByHand({
        sellerId: seller.unb,
        chatId,
        buyerId: '612',
        text: '我来',
      });
      const manual = await sim.waitFor(() =>
        client
          .syncPushes()
          .map((p) => decodeEntry(entriesOf(p)[0]))
          .find((e) => (e['1'] as Json)['3'] === messageId),
      );
      assert.equal(((manual['1'] as Json)['10'] as Json).senderUserId, seller.unb);
    });

    it('slowMs delays IM answers', async () => {
      const { client } = await session(sim.createSeller());
      sim.inject.slowMs(150);
      const t0 = Date.now();
      await client.request(sim, '/!');
      sim.inject.slowMs(0);
      assert.ok(Date.now() - t0 >= 140);
    });

    it('lists a chat history with base64 JSON content and cursor paging', async () => {
      const seller = sim.createSeller();
      sim.createItem({ sellerId: seller.unb, title: 'Pen', price: '2.00' });
      const { client } = await session(seller);
      const t0 = Date.now() - 10_000;
      let chatId = '';
      for (let i = 0; i < 5; i++) {
        ({ chatId } = await sim.buyerSays({
          sellerId: seller.unb,
          buyerId: '888',
          text: `m${i}`,
          createdAt: t0 + i,
        }));
      }
      const list = '/r/MessageManager/listUserMessages';
      const p1 = await client.request(sim, list, [`${chatId}@goofish`, false, 9007199254740991, 3, false]);
      const b1 = p1.body as Json;
      assert.equal(b1.hasMore, 1);
      const models = b1.userMessageModels as { message: Json }[];
      const texts = (ms: { message: Json }[]) =>
        ms.map((u) => {
          const data = ((u.message.content as Json).custom as Json).data as string;
          return (JSON.parse(Buffer.from(data, 'base64').toString()) as { text: { text: string } }).text.text;
        });
      assert.deepEqual(texts(models), ['m4', 'm3', 'm2']);
      assert.equal((models[0]!.message.extension as Json).senderUserId, '888');
      const p2 = await client.request(sim, list, [`${chatId}@goofish`, false, b1.nextCursor, 3, false]);
      const b2 = p2.body as Json;
      assert.equal(b2.hasMore, 0);
      assert.deepEqual(texts(b2.userMessageModels as { message: Json }[]), ['m1', 'm0']);
    });

    it('pushes a paid trade card with the order id and the 1.9 strings', async () => {
      const seller = sim.createSeller();
      const item = sim.createItem({ sellerId: seller.unb, title: 'Card', price: '9.90' });
      const { client } = await session(seller);
      await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId: '42',
        itemId: item.itemId,
        orderId: '2987654321012',
        kind: 'paid',
      });
      const e = decodeEntry(entriesOf(await sim.waitFor(() => client.syncPushes()[0]))[0]);
      const m = e['1'] as Json;
      const ext = m['10'] as Json;
      assert.equal(ext.reminderContent, '[我已付款，等待你发货]');
      assert.equal(ext.redReminder, '等待卖家发货');
      const card = JSON.parse(((m['6'] as Json)['3'] as Json)['5'] as string) as Json;
      const main = ((card.dxCard as Json).item as Json).main as Json;
      assert.equal(main.targetUrl, 'fleamarket://order_detail?id=2987654321012&role=seller');
      assert.match(((main.exContent as Json).button as Json).targetUrl as string, /orderId=2987654321012/);
      assert.equal(((m['6'] as Json)['3'] as Json)['4'], 26);
    });

    it('typing, system notice and duplicate pushes have their shapes', async () => {
      const seller = sim.createSeller();
      sim.createItem({ sellerId: seller.unb, title: 'X', price: '1.00' });
      const { client } = await session(seller);
      await sim.pushTyping({ sellerId: seller.unb, buyerId: '55' });
      const typing = decodeEntry(entriesOf(await sim.waitFor(() => client.syncPushes()[0]))[0]);
      assert.ok(Array.isArray(typing['1']));
      assert.equal(((typing['1'] as Json[])[0] as Json)['1'], '55@goofish');
      await sim.pushSystemNotice({ sellerId: seller.unb });
      const sys = await sim.waitFor(() => client.syncPushes()[1]);
      const notice = JSON.parse(
        Buffer.from((entriesOf(sys)[0] as { data: string }).data, 'base64').toString(),
      );
      assert.ok('chatType' in notice);
      sim.inject.duplicatePushes(seller.unb, true);
      await sim.buyerSays({ sellerId: seller.unb, buyerId: '55', text: 'dup' });
      await sim.waitFor(() => client.syncPushes().length >= 4);
      const [p3, p4] = client.syncPushes().slice(2);
      assert.deepEqual(p3, p4);
    });

    it('malformedPush sends junk frames', async () => {
      const seller = sim.createSeller();
      const { client } = await session(seller);
      await sim.inject.malformedPush(seller.unb);
      await sim.waitFor(() => client.syncPushes().length >= 3);
      assert.ok(client.raw.some((t) => t.startsWith('this is not json')));
      assert.ok(client.syncPushes().some((p) => entriesOf(p).length === 0));
    });

    it('silent mode answers nothing; answers resume when it ends', async () => {
      const seller = sim.createSeller();
      const { client } = await session(seller);
      sim.inject.silent(seller.unb, true);
      const m1 = mid();
      client.send({ lwp: '/!', headers: { mid: m1 } });
      await sim.waitFor(() => sim.frames(seller.unb).some((f) => f.headers.mid === m1));
      sim.inject.silent(seller.unb, false);
      const r = await client.request(sim, '/!');
      assert.equal(r.code, 200);
      // Replies on one socket are ordered: a reply to m1 would have arrived first.
      assert.equal(client.received.filter((f) => (f.headers as Json | undefined)?.mid === m1).length, 0);
    });

    it('dropSockets with and without a close frame', async () => {
      const seller = sim.createSeller();
      const a = await session(seller);
      sim.inject.dropSockets(seller.unb, { closeFrame: false });
      await sim.waitFor(() => a.client.closeCode !== undefined);
      assert.equal(a.client.closeCode, 1006);
      const b = await session(seller);
      sim.inject.dropSockets(seller.unb, { closeFrame: true });
      await sim.waitFor(() => b.client.closeCode !== undefined);
      assert.equal(b.client.closeCode, 1000);
      await sim.waitFor(() => sim.connections(seller.unb) === 0);
    });
  });

  describe('passport', () => {
    it('QR login: pre-login token, viewData, generate, NEW → SCANED → CONFIRMED with cookies, verify, expiry', async () => {
      const anon = await mtop(sim, '', 'mtop.gaia.nodejs.gaia.idle.data.gw.v2.index.get', {
        bizScene: 'home',
      });
      assert.deepEqual(anon.body.ret, ['FAIL_SYS_TOKEN_EMPTY::令牌为空']);
      const anonCookies = mergeCookies('', anon.setCookies).replace(/^=; /, '');
      const home = await mtop(sim, anonCookies, 'mtop.gaia.nodejs.gaia.idle.data.gw.v2.index.get', {
        bizScene: 'home',
      });
      assert.deepEqual(home.body.ret, ['SUCCESS::调用成功']);
      const page = await (await fetch(`${sim.url}/mini_login.htm?lang=zh_cn&appName=xianyu`)).text();
      const viewData = JSON.parse(/window\.viewData = (\{.*?\});/.exec(page)?.[1] ?? 'null') as Json;
      assert.ok(viewData.loginFormData);
      const generate = async () =>
        (
          (await (await fetch(`${sim.url}/newlogin/qrcode/generate.do?appName=xianyu`)).json()) as {
            content: { data: Json };
          }
        ).content.data;
      const query = async (d: Json) => {
        const res = await fetch(`${sim.url}/newlogin/qrcode/query.do`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ appName: 'xianyu', t: String(d.t), ck: String(d.ck) }).toString(),
        });
        return {
          data: ((await res.json()) as { content: { data: Json } }).content.data,
          setCookies: res.headers.getSetCookie(),
        };
      };
      const d = await generate();
      assert.ok(d.t && d.ck && d.codeContent);
      assert.equal((await query(d)).data.qrCodeStatus, 'NEW');
      sim.qr.scan();
      assert.equal((await query(d)).data.qrCodeStatus, 'SCANED');
      const seller = sim.qr.confirm();
      const done = await query(d);
      assert.equal(done.data.qrCodeStatus, 'CONFIRMED');
      const cookies = mergeCookies(anonCookies, done.setCookies);
      assert.equal(cookieValue(cookies, 'unb'), seller.unb);
      const ok = await mtop(sim, cookies, 'mtop.taobao.idlemessage.pc.loginuser.get', {});
      assert.deepEqual(ok.body.ret, ['SUCCESS::调用成功']);
      const d2 = await generate();
      sim.qr.confirm({ t: String(d2.t), verify: true });
      const v = await query(d2);
      assert.equal(v.data.iframeRedirect, true);
      assert.equal(v.setCookies.length, 0);
      const d3 = await generate();
      sim.qr.expire(String(d3.t));
      assert.equal((await query(d3)).data.qrCodeStatus, 'EXPIRED');
    });
  });

  describe('AI and control API', () => {
    it('answers chat completions, requires a bearer token, scripts and fails on demand', async () => {
      const call = (auth?: string) =>
        fetch(`${sim.aiBaseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: '在吗' }] }),
        });
      assert.equal((await call()).status, 401);
      const d = (await (await call('Bearer k')).json()) as Json;
      assert.match(((d.choices as Json[])[0]!.message as Json).content as string, /在/);
      assert.ok((d.usage as Json).total_tokens);
      sim.ai.script(['scripted']);
      const s = (await (await call('Bearer k')).json()) as Json;
      assert.equal(((s.choices as Json[])[0]!.message as Json).content, 'scripted');
      sim.ai.failNext(429);
      assert.equal((await call('Bearer k')).status, 429);
      assert.equal((await call('Bearer k')).status, 200);
      assert.equal(sim.ai.requests().at(-1)?.authorization, 'Bearer k');
    });

    it('drives the simulator over /_sim', async () => {
      const post = async (path: string, body: Json) => {
        const res = await fetch(`${sim.url}/_sim/${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Json };
      };
      const seller = (await post('sellers', { nick: 'ctl' })).body as unknown as Seller;
      assert.match(seller.cookies, /_m_h5_tk=[0-9a-f]{32}_\d+/);
      const item = (await post('items', { sellerId: seller.unb, title: 't', price: '1.00' })).body;
      const said = await post('buyer-says', {
        sellerId: seller.unb,
        buyerId: '9',
        text: 'hi',
        itemId: item.itemId,
      });
      assert.equal(said.status, 200);
      assert.ok(said.body.chatId);
      assert.equal((await post('inject/risk-control', { sellerId: seller.unb, on: true })).status, 200);
      assert.equal((await post('buyer-says', { sellerId: seller.unb })).status, 400);
      const calls = (await (await fetch(`${sim.url}/_sim/mtop-calls`)).json()) as unknown[];
      assert.ok(Array.isArray(calls));
    });
  });
});
