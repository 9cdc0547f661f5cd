// The simulated service's world: sellers (with their authoritative cookie jars), items, chats,
// orders, and the records tests read back (sends, client frames, mtop calls, pushes).
import { EventEmitter } from 'node:events';
import { hex, serializeCookies, uuidUpper } from './util.js';

export interface Seller {
  unb: string;
  nick: string;
  /** Full cookie string: unb, cookie2, _m_h5_tk, _m_h5_tk_enc, sgcookie, cna, XSRF-TOKEN, t. */
  cookies: string;
}

export interface SellerState {
  unb: string;
  nick: string;
  /** Server-side authoritative cookie values; a client holding older values is stale. */
  jar: Map<string, string>;
  /** Latest access token issued by the token call and the device it was issued to. */
  accessToken?: { token: string; deviceId: string; at: number };
  flags: {
    riskControl: boolean;
    sessionExpired: boolean;
    tokenExpired: boolean;
    silent: boolean;
    duplicatePushes: boolean;
    rejectRegister: boolean;
  };
}

export interface Item {
  itemId: string;
  sellerId: string;
  title: string;
  price: string;
  desc: string;
  quantity: number;
  skuList: { propertyList: { valueText: string }[]; price: number; quantity: number }[];
  createdAt: number;
}

export interface Chat {
  chatId: string;
  sellerId: string;
  buyerId: string;
  buyerNick: string;
  itemId?: string;
  sessionType: '1' | '30';
  modifiedAt: number;
}

export type TradeKind =
  | 'unpaid'
  | 'paid'
  | 'shipped'
  | 'completed'
  | 'refund-requested'
  | 'refund-agreed'
  | 'refund-cancelled'
  | 'refunded'
  | 'closed'
  | 'bargain';

export interface Order {
  orderId: string;
  sellerId: string;
  buyerId: string;
  itemId: string;
  chatId: string;
  status: TradeKind;
  /** Units bought (the order-detail page shows it; default 1). */
  quantity: number;
  /** 规格 of a multi-spec item as the order page shows it, e.g. "版本:标准版". */
  spec?: string;
  /** Amount paid in yuan, e.g. "19.80". */
  amount?: string;
  shippedAt?: number;
  freeShippingAt?: number;
}

/** One chat message as the service stores it; pushes and history are both rendered from this. */
export interface StoredMessage {
  messageId: string;
  chatId: string;
  senderId: string;
  senderNick: string;
  createdAt: number;
  /** Inner content type ("6"."3"."4"): 1 text, 2 image, 26 trade card. */
  innerType: number;
  /** Display text ("6"."3"."2") and reminderContent. */
  display: string;
  /** Content JSON object ("6"."3"."5"), e.g. {contentType:1,text:{text}}. */
  content: Record<string, unknown>;
  /** The "1"."10" extension dict (all string values). */
  ext: Record<string, string>;
  needPush: boolean;
}

export interface SentRecord {
  sellerId: string;
  chatId: string;
  /** actualReceivers without the @goofish suffix, the seller's own id left out. */
  toUserIds: string[];
  text?: string;
  /** Inner content type: 1 text, 2 image. */
  contentType: number;
  image?: unknown;
  messageId: string;
  uuid: string;
  at: number;
}

export interface ClientFrame {
  at: number;
  sellerId?: string;
  /** Connection number (several sockets per seller are possible). */
  conn: number;
  lwp?: string;
  headers: Record<string, unknown>;
  body?: unknown;
  code?: number;
  /** For an ack (code 200 without lwp): the lwp of the server push it acknowledged. */
  ackOf?: string;
  /** Raw text when the frame was not JSON. */
  raw?: string;
}

export interface MtopCall {
  api: string;
  version: string;
  query: Record<string, string>;
  data: unknown;
  cookieHeader: string;
  at: number;
  ret: string[];
}

export interface PushRecord {
  mid: string;
  sid: string;
  lwp: string;
  sellerId: string;
  conn: number;
  at: number;
  /** Number of entries in the push (sync pushes). */
  entries: number;
  acked: boolean;
  ackedAt?: number;
  /** Offline replay after /reg. */
  replay: boolean;
}

export class State {
  readonly sellers = new Map<string, SellerState>();
  readonly items = new Map<string, Item>();
  readonly chats = new Map<string, Chat>();
  /** chatId by seller, buyer and item: the lookup every pushed message makes. */
  private readonly chatIndex = new Map<string, string>();
  readonly orders = new Map<string, Order>();
  readonly history = new Map<string, StoredMessage[]>();
  readonly sentRecords: SentRecord[] = [];
  /** 'send' (SentRecord) as each send is accepted: benchmarks time replies without polling. */
  readonly events = new EventEmitter();
  readonly frameRecords: ClientFrame[] = [];
  readonly mtopRecords: MtopCall[] = [];
  readonly pushRecords: PushRecord[] = [];
  readonly inject = { slowMs: 0, csiForbid: null as RegExp | null };
  /** h5 tokens handed to visitors without a session (before QR login). */
  readonly anonTokens = new Set<string>();

  // Counters give stable, realistic-looking numeric ids (unb 10 digits, cid 11, item 12, message .PNM).
  private nextUnb = 2_200_000_001;
  private nextChat = 47_983_389_096;
  private nextItem = 900_000_000_001;
  private nextMessage = 3_416_565_274_542;

  newMessageId(): string {
    return `${this.nextMessage++}.PNM`;
  }

  createSeller(o: { unb?: string; nick?: string } = {}): SellerState {
    let unb = o.unb;
    if (!unb) {
      do unb = String(this.nextUnb++);
      while (this.sellers.has(unb));
    }
    if (!/^\d+$/.test(unb)) throw new Error(`createSeller: unb must be numeric, got ${JSON.stringify(unb)}`);
    if (this.sellers.has(unb)) throw new Error(`createSeller: seller ${unb} exists`);
    const jar = new Map<string, string>([
      ['unb', unb],
      ['cookie2', hex(16)],
      ['_m_h5_tk', `${hex(16)}_${Date.now() + 86_400_000}`],
      ['_m_h5_tk_enc', hex(16)],
      ['sgcookie', `E100${hex(40)}`],
      ['cna', hex(12)],
      ['XSRF-TOKEN', uuidUpper().toLowerCase()],
      ['t', hex(16)],
    ]);
    const s: SellerState = {
      unb,
      nick: o.nick ?? `卖家${unb.slice(-4)}`,
      jar,
      flags: {
        riskControl: false,
        sessionExpired: false,
        tokenExpired: false,
        silent: false,
        duplicatePushes: false,
        rejectRegister: false,
      },
    };
    this.sellers.set(unb, s);
    return s;
  }

  sellerView(s: SellerState): Seller {
    return { unb: s.unb, nick: s.nick, cookies: serializeCookies(s.jar) };
  }

  seller(unb: string): SellerState {
    const s = this.sellers.get(unb);
    if (!s) throw new Error(`unknown seller ${JSON.stringify(unb)}`);
    return s;
  }

  /** Issues a new h5 token: the client's old `_m_h5_tk` becomes stale. Returns Set-Cookie lines. */
  rotateH5Token(s: SellerState): void {
    s.jar.set('_m_h5_tk', `${hex(16)}_${Date.now() + 86_400_000}`);
    s.jar.set('_m_h5_tk_enc', hex(16));
  }

  h5Token(s: SellerState): string {
    return (s.jar.get('_m_h5_tk') ?? '').split('_')[0] ?? '';
  }

  createItem(o: {
    sellerId: string;
    title: string;
    price: string;
    desc?: string;
    itemId?: string;
    quantity?: number;
    skuList?: Item['skuList'];
  }): Item {
    this.seller(o.sellerId);
    const itemId = o.itemId ?? String(this.nextItem++);
    if (this.items.has(itemId)) throw new Error(`createItem: item ${itemId} exists`);
    const item: Item = {
      itemId,
      sellerId: o.sellerId,
      title: o.title,
      price: o.price,
      desc: o.desc ?? o.title,
      quantity: o.quantity ?? o.skuList?.reduce((n, s) => n + s.quantity, 0) ?? 1,
      skuList: o.skuList ?? [],
      createdAt: Date.now(),
    };
    this.items.set(itemId, item);
    return item;
  }

  /** Finds or creates the chat of (seller, buyer, item): one conversation per triple. */
  chatFor(o: {
    sellerId: string;
    buyerId: string;
    buyerNick?: string;
    itemId?: string;
    sessionType?: '1' | '30';
  }): Chat {
    const key = `${o.sellerId}\n${o.buyerId}\n${o.itemId ?? ''}`;
    const known = this.chats.get(this.chatIndex.get(key) ?? '');
    if (known) {
      if (o.buyerNick) known.buyerNick = o.buyerNick;
      return known;
    }
    const chat: Chat = {
      chatId: String(this.nextChat++),
      sellerId: o.sellerId,
      buyerId: o.buyerId,
      buyerNick: o.buyerNick ?? `买家${o.buyerId.slice(-4)}`,
      itemId: o.itemId,
      sessionType: o.sessionType ?? '1',
      modifiedAt: Date.now(),
    };
    this.chats.set(chat.chatId, chat);
    this.chatIndex.set(key, chat.chatId);
    this.history.set(chat.chatId, []);
    return chat;
  }

  chat(chatId: string): Chat {
    const c = this.chats.get(chatId);
    if (!c) throw new Error(`unknown chat ${JSON.stringify(chatId)}`);
    return c;
  }

  store(m: StoredMessage): void {
    const list = this.history.get(m.chatId);
    if (!list) throw new Error(`unknown chat ${m.chatId}`);
    list.push(m);
    const chat = this.chats.get(m.chatId);
    if (chat) chat.modifiedAt = Math.max(chat.modifiedAt, m.createdAt);
  }
}
