// The Xianyu service simulator as a library: one loopback HTTP server carrying mtop, passport,
// the IM WebSocket, an OpenAI-compatible AI endpoint and the `/_sim` control API.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ai, type SimAi } from './ai.js';
import { handleControl } from './control.js';
import { Im } from './im.js';
import { chatMessage, tradeMessage } from './messages.js';
import { handleMtop } from './mtop.js';
import { encodeEntry, systemNoticeObject, typingEntry } from './push.js';
import { Qr, type SimQr } from './qr.js';
import {
  type ClientFrame,
  type MtopCall,
  type Order,
  type PushRecord,
  type Seller,
  type SentRecord,
  State,
  type TradeKind,
} from './state.js';
import { sendJson, waitFor } from './util.js';
import { handleWeb } from './web.js';

export type { AiHandler, AiRecord, AiRequest, SimAi } from './ai.js';
export * as pushShapes from './push.js';
export type { QrStatus, SimQr } from './qr.js';
export type { ClientFrame, MtopCall, Order, PushRecord, Seller, SentRecord, TradeKind } from './state.js';
export { IM_APP_KEY, MTOP_APP_KEY } from './util.js';

export interface SimOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 = random free port. */
  port?: number;
  log?: (line: string) => void;
}

export interface SimItem {
  itemId: string;
  title: string;
  price: string;
  desc: string;
}

export interface SimInject {
  /** Every mtop call of the seller answers FAIL_SYS_USER_VALIDATE + RGV587_ERROR with data.url. */
  riskControl(sellerId: string, on: boolean): void;
  /** mtop answers FAIL_SYS_SESSION_EXPIRED, hasLogin fails, WS upgrades are refused. */
  sessionExpired(sellerId: string, on: boolean): void;
  /** on: the h5 token is rotated now, so the next mtop call gets FAIL_SYS_TOKEN_EXOIRED + Set-Cookie. */
  tokenExpired(sellerId: string, on: boolean): void;
  /** closeFrame:false = socket.terminate() with no close frame. */
  dropSockets(sellerId: string, o: { closeFrame: boolean }): void;
  /** Half-open link: sockets stay open, nothing is answered or pushed; pushes wait for replay. */
  silent(sellerId: string, on: boolean): void;
  duplicatePushes(sellerId: string, on: boolean): void;
  malformedPush(sellerId: string): Promise<void>;
  slowMs(ms: number): void;
  csiForbid(pattern: RegExp | null): void;
  rejectRegister(sellerId: string, on: boolean): void;
}

export interface Sim {
  /** http://HOST:PORT — mtop at /h5/<api>/<version>/, passport /newlogin/…, AI /v1/…, control /_sim/… */
  readonly url: string;
  /** ws://HOST:PORT/ — the IM WebSocket. */
  readonly imUrl: string;
  /** http://HOST:PORT/v1 */
  readonly aiBaseURL: string;
  createSeller(o?: { unb?: string; nick?: string }): Seller;
  /** The seller's current cookie string (the server-side jar, after any rotation). */
  sellerCookies(sellerId: string): string;
  createItem(o: {
    sellerId: string;
    title: string;
    price: string;
    desc?: string;
    itemId?: string;
    skuList?: { propertyList: { valueText: string }[]; price: number; quantity: number }[];
  }): SimItem;
  buyerSays(o: {
    sellerId: string;
    buyerId: string;
    buyerNick?: string;
    itemId?: string;
    text: string;
    chatId?: string;
    createdAt?: number;
    sessionType?: '1' | '30';
  }): Promise<{ chatId: string; messageId: string }>;
  sellerSaysByHand(o: {
    sellerId: string;
    chatId: string;
    buyerId: string;
    text: string;
  }): Promise<{ messageId: string }>;
  pushTradeCard(o: {
    sellerId: string;
    buyerId: string;
    itemId: string;
    orderId: string;
    kind: TradeKind;
    /** Order-detail facts (first card of an order sets them; default quantity 1). */
    quantity?: number;
    spec?: string;
    amount?: string;
  }): Promise<{ chatId: string; messageId: string }>;
  pushTyping(o: { sellerId: string; buyerId: string }): Promise<void>;
  pushSystemNotice(o: { sellerId: string }): Promise<void>;
  /** Several entries in ONE push; objects are msgpack-encoded (use Map for integer keys). */
  pushEntries(sellerId: string, entries: unknown[], opts?: { plainJson?: boolean }): Promise<void>;
  sent(sellerId?: string): SentRecord[];
  /** Calls the listener with each accepted send as it happens; returns the unsubscribe function. */
  onSend(listener: (s: SentRecord) => void): () => void;
  /** Calls the listener with each order the seller shipped (consign) as it happens; returns the unsubscribe function. */
  onShipped(listener: (o: Order) => void): () => void;
  frames(sellerId?: string): ClientFrame[];
  mtopCalls(): MtopCall[];
  /** Every server push (mid, sid, lwp) and whether the client acked it. */
  pushes(sellerId?: string): PushRecord[];
  /** Orders known from trade cards, with shipment (consign) and free-shipping records. */
  orders(sellerId?: string): Order[];
  connections(sellerId?: string): number;
  waitFor<T>(fn: () => T | undefined | null | false, timeoutMs?: number): Promise<T>;
  inject: SimInject;
  ai: SimAi;
  /** Passport QR login: drive the phone side (scan / confirm / expire) of generated codes. */
  qr: SimQr;
  close(): Promise<void>;
}

export async function startSim(opts: SimOptions = {}): Promise<Sim> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => {});
  const state = new State();
  const im = new Im(state, log);
  const ai = new Ai(() => state.inject.slowMs);
  let base = '';
  const qr = new Qr(state, () => base, log);

  const mtopDeps = {
    state,
    log,
    baseUrl: () => base,
    onShipped: (order: Order) => {
      im.publish(tradeMessage(state, state.chat(order.chatId), 'shipped', order.orderId));
      state.events.emit('shipped', { ...order });
    },
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname.startsWith('/_sim/')) return handleControl(req, res, url, sim);
    if (url.pathname.startsWith('/v1/') && (await ai.handle(req, res, url))) return;
    if (await qr.handle(req, res, url)) return;
    if (await handleWeb(req, res, url, { state, log })) return;
    if (url.pathname.startsWith('/h5/')) return handleMtop(req, res, url, mtopDeps);
    sendJson(res, 404, { error: 'not found' });
  };
  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      log(`http error: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('upgrade', (req, socket, head) => im.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  base = `http://${hostPart}:${port}`;
  log(`sim listening on ${base}`);

  const sellerChat = (sellerId: string, chatId: string, buyerId: string) => {
    const chat = state.chat(chatId);
    if (chat.sellerId !== sellerId || chat.buyerId !== buyerId) {
      throw new Error(`chat ${chatId} is not between seller ${sellerId} and buyer ${buyerId}`);
    }
    return chat;
  };
  const sellerItem = (sellerId: string, itemId: string) => {
    const item = state.items.get(itemId);
    if (!item || item.sellerId !== sellerId)
      throw new Error(`item ${itemId} is not an item of seller ${sellerId}`);
    return item;
  };
  const flag = (name: keyof ReturnType<typeof state.seller>['flags']) => (sellerId: string, on: boolean) => {
    state.seller(sellerId).flags[name] = on;
    log(`inject ${name} seller=${sellerId} ${on ? 'on' : 'off'}`);
  };

  const sim: Sim = {
    url: base,
    imUrl: `ws://${hostPart}:${port}/`,
    aiBaseURL: `${base}/v1`,
    createSeller: (o) => state.sellerView(state.createSeller(o)),
    sellerCookies: (sellerId) => state.sellerView(state.seller(sellerId)).cookies,
    createItem: (o) => {
      const i = state.createItem(o);
      return { itemId: i.itemId, title: i.title, price: i.price, desc: i.desc };
    },
    buyerSays: async (o) => {
      state.seller(o.sellerId);
      let chat = o.chatId ? sellerChat(o.sellerId, o.chatId, o.buyerId) : undefined;
      if (!chat) {
        let itemId = o.itemId;
        if (itemId) sellerItem(o.sellerId, itemId);
        else {
          // Same buyer again: continue their latest chat; else the seller's newest item.
          const prior = [...state.chats.values()]
            .filter((c) => c.sellerId === o.sellerId && c.buyerId === o.buyerId)
            .sort((a, b) => b.modifiedAt - a.modifiedAt)[0];
          const newest = [...state.items.values()]
            .filter((i) => i.sellerId === o.sellerId)
            .sort((a, b) => b.createdAt - a.createdAt)[0];
          itemId = prior?.itemId ?? newest?.itemId;
          if (!itemId)
            throw new Error(`buyerSays: seller ${o.sellerId} has no items; create one or pass itemId`);
        }
        chat = state.chatFor({ ...o, itemId });
      }
      if (o.buyerNick) chat.buyerNick = o.buyerNick;
      if (o.sessionType) chat.sessionType = o.sessionType;
      const m = chatMessage(state, chat, { from: 'buyer', text: o.text, createdAt: o.createdAt });
      im.publish(m);
      return { chatId: chat.chatId, messageId: m.messageId };
    },
    sellerSaysByHand: async (o) => {
      const m = chatMessage(state, sellerChat(o.sellerId, o.chatId, o.buyerId), {
        from: 'seller',
        text: o.text,
      });
      im.publish(m);
      return { messageId: m.messageId };
    },
    pushTradeCard: async (o) => {
      state.seller(o.sellerId);
      sellerItem(o.sellerId, o.itemId);
      const chat = state.chatFor({ sellerId: o.sellerId, buyerId: o.buyerId, itemId: o.itemId });
      const prev = state.orders.get(o.orderId);
      if (prev && (prev.sellerId !== o.sellerId || prev.buyerId !== o.buyerId)) {
        throw new Error(`order ${o.orderId} belongs to another seller/buyer`);
      }
      state.orders.set(o.orderId, {
        ...(prev ?? {}),
        orderId: o.orderId,
        sellerId: o.sellerId,
        buyerId: o.buyerId,
        itemId: o.itemId,
        chatId: chat.chatId,
        status: o.kind,
        quantity: o.quantity ?? prev?.quantity ?? 1,
        ...((o.spec ?? prev?.spec) ? { spec: o.spec ?? prev?.spec } : {}),
        ...((o.amount ?? prev?.amount) ? { amount: o.amount ?? prev?.amount } : {}),
      });
      const m = tradeMessage(state, chat, o.kind, o.orderId);
      im.publish(m);
      return { chatId: chat.chatId, messageId: m.messageId };
    },
    pushTyping: async (o) => {
      state.seller(o.sellerId);
      const chat = [...state.chats.values()].find(
        (c) => c.sellerId === o.sellerId && c.buyerId === o.buyerId,
      );
      im.deliver(o.sellerId, [encodeEntry(typingEntry(o.buyerId, chat?.chatId))], false);
    },
    pushSystemNotice: async (o) => {
      state.seller(o.sellerId);
      im.deliver(o.sellerId, [encodeEntry(systemNoticeObject(o.sellerId), true)], false);
    },
    pushEntries: async (sellerId, entries, o) => {
      state.seller(sellerId);
      im.deliver(
        sellerId,
        entries.map((e) => encodeEntry(e, o?.plainJson ?? false)),
      );
    },
    onSend: (listener) => {
      state.events.on('send', listener);
      return () => state.events.off('send', listener);
    },
    onShipped: (listener) => {
      state.events.on('shipped', listener);
      return () => state.events.off('shipped', listener);
    },
    sent: (sellerId) =>
      state.sentRecords.filter((r) => !sellerId || r.sellerId === sellerId).map((r) => ({ ...r })),
    frames: (sellerId) =>
      state.frameRecords.filter((f) => !sellerId || f.sellerId === sellerId).map((f) => ({ ...f })),
    mtopCalls: () => state.mtopRecords.map((c) => ({ ...c })),
    pushes: (sellerId) =>
      state.pushRecords.filter((p) => !sellerId || p.sellerId === sellerId).map((p) => ({ ...p })),
    orders: (sellerId) =>
      [...state.orders.values()].filter((o) => !sellerId || o.sellerId === sellerId).map((o) => ({ ...o })),
    connections: (sellerId) => im.connections(sellerId),
    waitFor: (fn, timeoutMs) => waitFor(fn, timeoutMs),
    inject: {
      riskControl: flag('riskControl'),
      sessionExpired: flag('sessionExpired'),
      tokenExpired: (sellerId, on) => {
        flag('tokenExpired')(sellerId, on);
        if (on) state.rotateH5Token(state.seller(sellerId));
      },
      dropSockets: (sellerId, o) => {
        log(`inject dropSockets seller=${sellerId} closeFrame=${o.closeFrame}`);
        im.drop(sellerId, o.closeFrame);
      },
      silent: flag('silent'),
      duplicatePushes: flag('duplicatePushes'),
      malformedPush: (sellerId) => im.malformed(sellerId),
      slowMs: (ms) => {
        state.inject.slowMs = Math.max(0, ms);
      },
      csiForbid: (pattern) => {
        state.inject.csiForbid = pattern;
      },
      rejectRegister: flag('rejectRegister'),
    },
    ai: ai.api,
    qr: qr.api,
    close: async () => {
      await im.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      log('sim closed');
    },
  };
  return sim;
}
