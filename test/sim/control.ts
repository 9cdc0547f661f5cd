// `/_sim/*`: the library API over HTTP (JSON), for `make demo` and out-of-process tests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sim, SimInject } from './index.js';
import type { TradeKind } from './state.js';
import { isRecord, readBody, sendJson, tryJson } from './util.js';

type Body = Record<string, unknown>;

const str = (b: Body, k: string): string => {
  const v = b[k];
  if (typeof v !== 'string' || !v) throw new Error(`${k} (string) is required`);
  return v;
};
const optStr = (b: Body, k: string): string | undefined => {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${k} must be a string`);
  return v;
};
const bool = (b: Body, k: string): boolean => {
  const v = b[k] ?? true;
  if (typeof v !== 'boolean') throw new Error(`${k} must be a boolean`);
  return v;
};
const num = (b: Body, k: string): number => {
  const v = b[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${k} (number) is required`);
  return v;
};

/** camelCase or kebab-case inject names both work: /_sim/inject/risk-control == riskControl. */
const camel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

async function inject(sim: Sim, name: string, b: Body): Promise<unknown> {
  const i: SimInject = sim.inject;
  switch (camel(name)) {
    case 'riskControl':
    case 'sessionExpired':
    case 'tokenExpired':
    case 'silent':
    case 'duplicatePushes':
    case 'rejectRegister':
      i[camel(name) as 'riskControl'](str(b, 'sellerId'), bool(b, 'on'));
      return { ok: true };
    case 'dropSockets':
      i.dropSockets(str(b, 'sellerId'), { closeFrame: bool(b, 'closeFrame') });
      return { ok: true };
    case 'malformedPush':
      await i.malformedPush(str(b, 'sellerId'));
      return { ok: true };
    case 'slowMs':
      i.slowMs(num(b, 'ms'));
      return { ok: true };
    case 'csiForbid': {
      const p = optStr(b, 'pattern');
      i.csiForbid(p === undefined ? null : new RegExp(p, optStr(b, 'flags') ?? ''));
      return { ok: true };
    }
    default:
      throw new Error(`unknown injection ${name}`);
  }
}

async function post(sim: Sim, path: string, b: Body): Promise<unknown> {
  if (path.startsWith('inject/')) return inject(sim, path.slice('inject/'.length), b);
  switch (path) {
    case 'sellers':
      return sim.createSeller({ unb: optStr(b, 'unb'), nick: optStr(b, 'nick') });
    case 'items':
      return sim.createItem({
        sellerId: str(b, 'sellerId'),
        title: str(b, 'title'),
        price: str(b, 'price'),
        desc: optStr(b, 'desc'),
        itemId: optStr(b, 'itemId'),
        skuList: Array.isArray(b.skuList) ? (b.skuList as never) : undefined,
      });
    case 'buyer-says':
      return sim.buyerSays({
        sellerId: str(b, 'sellerId'),
        buyerId: str(b, 'buyerId'),
        buyerNick: optStr(b, 'buyerNick'),
        itemId: optStr(b, 'itemId'),
        text: str(b, 'text'),
        chatId: optStr(b, 'chatId'),
        createdAt: typeof b.createdAt === 'number' ? b.createdAt : undefined,
        sessionType: b.sessionType === '30' ? '30' : undefined,
      });
    case 'seller-says':
      return sim.sellerSaysByHand({
        sellerId: str(b, 'sellerId'),
        chatId: str(b, 'chatId'),
        buyerId: str(b, 'buyerId'),
        text: str(b, 'text'),
      });
    case 'trade-card':
      return sim.pushTradeCard({
        sellerId: str(b, 'sellerId'),
        buyerId: str(b, 'buyerId'),
        itemId: str(b, 'itemId'),
        orderId: str(b, 'orderId'),
        kind: str(b, 'kind') as TradeKind,
        quantity: typeof b.quantity === 'number' ? b.quantity : undefined,
        spec: optStr(b, 'spec'),
        amount: optStr(b, 'amount'),
      });
    case 'typing':
      await sim.pushTyping({ sellerId: str(b, 'sellerId'), buyerId: str(b, 'buyerId') });
      return { ok: true };
    case 'system-notice':
      await sim.pushSystemNotice({ sellerId: str(b, 'sellerId') });
      return { ok: true };
    case 'entries':
      if (!Array.isArray(b.entries)) throw new Error('entries (array) is required');
      await sim.pushEntries(str(b, 'sellerId'), b.entries, { plainJson: b.plainJson === true });
      return { ok: true };
    case 'qr/scan':
      sim.qr.scan(optStr(b, 't'));
      return { ok: true };
    case 'qr/confirm':
      return sim.qr.confirm({
        t: optStr(b, 't'),
        sellerId: optStr(b, 'sellerId'),
        verify: b.verify === true,
      });
    case 'qr/expire':
      sim.qr.expire(optStr(b, 't'));
      return { ok: true };
    case 'ai/script':
      if (!Array.isArray(b.answers) || !b.answers.every((a) => typeof a === 'string')) {
        throw new Error('answers (string[]) is required');
      }
      sim.ai.script(b.answers as string[]);
      return { ok: true };
    case 'ai/fail':
      sim.ai.failNext(num(b, 'status'), typeof b.count === 'number' ? b.count : 1);
      return { ok: true };
    case 'ai/delay':
      sim.ai.delayMs = num(b, 'ms');
      return { ok: true };
    default:
      return undefined;
  }
}

function get(sim: Sim, path: string, q: URLSearchParams): unknown {
  const sellerId = q.get('sellerId') ?? undefined;
  switch (path) {
    case 'sent':
      return sim.sent(sellerId);
    case 'frames':
      return sim.frames(sellerId);
    case 'mtop-calls':
      return sim.mtopCalls();
    case 'pushes':
      return sim.pushes(sellerId);
    case 'orders':
      return sim.orders(sellerId);
    case 'connections':
      return { connections: sim.connections(sellerId) };
    case 'qr':
      return sim.qr.sessions();
    case 'ai/requests':
      return sim.ai.requests();
    case 'info':
      return { url: sim.url, imUrl: sim.imUrl, aiBaseURL: sim.aiBaseURL };
    default:
      return undefined;
  }
}

export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  sim: Sim,
): Promise<void> {
  const path = url.pathname.slice('/_sim/'.length).replace(/\/$/, '');
  try {
    let out: unknown;
    if (req.method === 'GET') out = get(sim, path, url.searchParams);
    else if (req.method === 'POST') {
      const text = (await readBody(req)).toString('utf8');
      const parsed = text.trim() ? tryJson(text) : { ok: true as const, value: {} };
      if (!parsed.ok || !isRecord(parsed.value)) throw new Error('body must be a JSON object');
      out = await post(sim, path, parsed.value);
    }
    if (out === undefined)
      sendJson(res, 404, { error: `no such control endpoint: ${req.method} /_sim/${path}` });
    else sendJson(res, 200, out);
  } catch (err) {
    sendJson(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
