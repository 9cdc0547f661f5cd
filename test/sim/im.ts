// The IM WebSocket (DingTalk IMPaaS "lwp", protocol 1.1–1.6 and 1.10): upgrade cookie check,
// /reg token check, heartbeats, acks, sync pushes with offline replay, sends, history.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { chatMessage } from './messages.js';
import { chatEntry, encodeEntry, goofish, MALFORMED, type Pic, type SyncEntry, syncBody } from './push.js';
import type { Chat, ClientFrame, PushRecord, SellerState, State, StoredMessage } from './state.js';
import { DEVICE_ID_RE, delay, hex, IM_APP_KEY, isRecord, makeMid, parseCookies, tryJson } from './util.js';

interface Conn {
  id: number;
  ws: WebSocket;
  seller: SellerState;
  sid: string;
  registered: boolean;
}

type Frame = Record<string, unknown>;
type Headers = Record<string, unknown>;

const UUID_RE = /^-\d{13}1$/;
const CDN_RE = /^https?:\/\/[^/]*(alicdn\.com|goofish\.com|xianyu\.com)\//;

export class Im {
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly conns = new Set<Conn>();
  /** Sync entries not yet acked, per seller; replayed as one push after the next /reg. */
  private readonly pending = new Map<string, Map<number, SyncEntry>>();
  private readonly pushes = new Map<string, { record: PushRecord; keys: number[] }>();
  /** Accepted sends by seller/uuid: a repeated uuid is answered with the same message. */
  private readonly sentByUuid = new Map<string, { messageId: string; createdAt: number }>();
  private nextConn = 1;
  private nextKey = 1;

  constructor(
    private readonly state: State,
    private readonly log: (line: string) => void,
  ) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://sim').pathname;
    const cookies = parseCookies(req.headers.cookie);
    const seller = this.state.sellers.get(cookies.get('unb') ?? '');
    const status =
      path !== '/'
        ? 404
        : !seller || cookies.get('cookie2') !== seller.jar.get('cookie2') || seller.flags.sessionExpired
          ? 401
          : 0;
    if (status || !seller) {
      this.log(`im upgrade rejected (${status})`);
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: Conn = { id: this.nextConn++, ws, seller, sid: hex(8), registered: false };
      this.conns.add(conn);
      this.log(`im conn#${conn.id} open seller=${seller.unb}`);
      ws.on('message', (data) => {
        this.onFrame(conn, data.toString()).catch((err: unknown) => {
          this.log(`im conn#${conn.id} handler error: ${err instanceof Error ? err.message : String(err)}`);
        });
      });
      ws.on('close', () => {
        this.conns.delete(conn);
        this.log(`im conn#${conn.id} closed`);
      });
      ws.on('error', () => this.conns.delete(conn));
    });
  }

  connections(sellerId?: string): number {
    let n = 0;
    for (const c of this.conns) {
      if (c.registered && c.ws.readyState === WebSocket.OPEN && (!sellerId || c.seller.unb === sellerId)) n++;
    }
    return n;
  }

  /** Delivers a sync push with `entries` to every registered socket of the seller. */
  deliver(sellerId: string, entries: SyncEntry[], replayable = true): void {
    const keys: number[] = [];
    if (replayable) {
      const pend = this.pendingOf(sellerId);
      for (const e of entries) {
        const k = this.nextKey++;
        pend.set(k, e);
        keys.push(k);
      }
    }
    for (const conn of this.live(sellerId)) this.push(conn, '/s/sync', syncBody(entries), keys, false);
  }

  /** Stores a chat message and pushes it to the seller. */
  publish(m: StoredMessage): void {
    this.state.store(m);
    this.deliver(this.state.chat(m.chatId).sellerId, [encodeEntry(chatEntry(m))]);
  }

  drop(sellerId: string, closeFrame: boolean): void {
    for (const c of this.conns) {
      if (c.seller.unb !== sellerId) continue;
      if (closeFrame) c.ws.close(1000, 'server close');
      else c.ws.terminate();
    }
  }

  async malformed(sellerId: string): Promise<void> {
    for (const conn of this.live(sellerId)) {
      conn.ws.send(MALFORMED.text);
      this.push(conn, '/s/sync', syncBody([MALFORMED.invalidBase64 as SyncEntry]), [], false);
      this.push(conn, '/s/sync', syncBody([MALFORMED.msgpackGarbage as SyncEntry]), [], false);
      this.push(conn, '/s/sync', syncBody([]), [], false);
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    this.conns.clear();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private pendingOf(sellerId: string): Map<number, SyncEntry> {
    let p = this.pending.get(sellerId);
    if (!p) {
      p = new Map();
      this.pending.set(sellerId, p);
    }
    return p;
  }

  /** Registered, open sockets of a seller that is not in silent (half-open) mode. */
  private live(sellerId: string): Conn[] {
    return [...this.conns].filter(
      (c) =>
        c.seller.unb === sellerId &&
        c.registered &&
        !c.seller.flags.silent &&
        c.ws.readyState === WebSocket.OPEN,
    );
  }

  private push(conn: Conn, lwp: string, body: unknown, keys: number[], replay: boolean): void {
    let mid = makeMid();
    while (this.pushes.has(mid)) mid = makeMid();
    const record: PushRecord = {
      mid,
      sid: conn.sid,
      lwp,
      sellerId: conn.seller.unb,
      conn: conn.id,
      at: Date.now(),
      entries:
        isRecord(body) && isRecord(body.syncPushPackage)
          ? ((body.syncPushPackage.data as unknown[]).length ?? 0)
          : 0,
      acked: false,
      replay,
    };
    this.pushes.set(mid, { record, keys });
    this.state.pushRecords.push(record);
    const text = JSON.stringify({ lwp, headers: { mid, sid: conn.sid }, body });
    conn.ws.send(text);
    if (conn.seller.flags.duplicatePushes) conn.ws.send(text);
  }

  private async respond(conn: Conn, frame: Frame): Promise<void> {
    await delay(this.state.inject.slowMs);
    if (conn.seller.flags.silent || conn.ws.readyState !== WebSocket.OPEN) return;
    conn.ws.send(JSON.stringify(frame));
  }

  private async onFrame(conn: Conn, text: string): Promise<void> {
    const seller = conn.seller;
    const rec: ClientFrame = { at: Date.now(), sellerId: seller.unb, conn: conn.id, headers: {} };
    const parsed = tryJson(text);
    if (!parsed.ok || !isRecord(parsed.value)) {
      rec.raw = text;
      this.state.frameRecords.push(rec);
      return; // the real server drops junk silently
    }
    const f = parsed.value;
    const headers: Headers = isRecord(f.headers) ? f.headers : {};
    rec.headers = headers;
    if (typeof f.lwp === 'string') rec.lwp = f.lwp;
    if ('body' in f) rec.body = f.body;
    if (typeof f.code === 'number') rec.code = f.code;
    // A half-open link: the frame left the client but never reaches the service.
    if (seller.flags.silent) {
      this.state.frameRecords.push(rec);
      return;
    }
    if (rec.lwp === undefined && rec.code !== undefined) {
      const p = this.pushes.get(String(headers.mid ?? ''));
      if (p && rec.code === 200) {
        rec.ackOf = p.record.lwp;
        if (!p.record.acked) {
          p.record.acked = true;
          p.record.ackedAt = rec.at;
        }
        const pend = this.pendingOf(p.record.sellerId);
        for (const k of p.keys) pend.delete(k);
      }
      this.state.frameRecords.push(rec);
      return;
    }
    this.state.frameRecords.push(rec);
    if (rec.lwp === undefined) return;
    const mid = headers.mid;
    const reply = (code: number, body?: unknown, extra: Headers = {}): Promise<void> =>
      this.respond(
        conn,
        body === undefined
          ? { code, headers: { mid, ...extra } }
          : { code, headers: { mid, ...extra }, body },
      );
    if (typeof mid !== 'string' || !mid)
      return reply(400, { reason: 'PARAM_ERROR', message: 'headers.mid missing' });
    if (rec.lwp === '/reg') return this.register(conn, headers, f, reply);
    if (!conn.registered) return reply(401, { reason: 'NOT_REGISTERED', message: 'send /reg first' });
    switch (rec.lwp) {
      case '/!':
        return reply(200);
      case '/r/SyncStatus/ackDiff': {
        const b = Array.isArray(f.body) ? f.body[0] : undefined;
        if (
          !isRecord(b) ||
          b.pipeline !== 'sync' ||
          typeof b.pts !== 'number' ||
          typeof b.timestamp !== 'number'
        ) {
          return reply(400, { reason: 'PARAM_ERROR', message: 'ackDiff body' });
        }
        return reply(200, {});
      }
      case '/r/MessageSend/sendByReceiverScope':
        return this.send(conn, f.body, reply);
      case '/r/MessageManager/listUserMessages':
        return this.listMessages(conn, f.body, reply);
      case '/r/SingleChatConversation/create':
        return this.createConversation(conn, f.body, reply);
      case '/r/Conversation/listNewestPagination':
        return this.listConversations(conn, f.body, reply);
      case '/r/MessageManager/recallMessage': {
        const id = Array.isArray(f.body) ? f.body[0] : undefined;
        const found = [...this.state.history.values()]
          .flat()
          .find((m) => m.messageId === id && m.senderId === seller.unb);
        return found ? reply(200, {}) : reply(400, { reason: 'MESSAGE_NOT_FOUND' });
      }
      default:
        return reply(404, { reason: 'NOT_FOUND', message: `unknown lwp ${rec.lwp}` });
    }
  }

  private async register(
    conn: Conn,
    h: Headers,
    f: Frame,
    reply: (code: number, body?: unknown, extra?: Headers) => Promise<void>,
  ): Promise<void> {
    const seller = conn.seller;
    if (seller.flags.rejectRegister)
      return reply(401, { reason: 'REGISTER_REJECTED', message: 'reg rejected' });
    const did = typeof h.did === 'string' ? h.did : '';
    const didMatch = DEVICE_ID_RE.exec(did.replace(/^[0-9a-f-]{36}/, (u) => u.toUpperCase()));
    const problems = [
      h['app-key'] !== IM_APP_KEY && 'app-key',
      h['cache-header'] !== 'app-key token ua wv' && 'cache-header',
      (typeof h.ua !== 'string' || !h.ua.includes('DingTalk(2.1.5)') || !h.ua.includes('IMPaaS')) && 'ua',
      h.dt !== 'j' && 'dt',
      h.wv !== 'im:3,au:3,sy:6' && 'wv',
      typeof h.sync !== 'string' && 'sync',
      (!didMatch || didMatch[1] !== seller.unb) && 'did',
      'body' in f && f.body !== undefined && 'body (must be absent)',
    ].filter(Boolean);
    if (problems.length) return reply(400, { reason: 'PARAM_ERROR', message: `bad ${problems.join(', ')}` });
    const t = seller.accessToken;
    if (!t || h.token !== t.token || did !== t.deviceId) {
      this.log(`im conn#${conn.id} /reg token rejected`);
      return reply(401, { reason: 'TOKEN_INVALID', message: 'token invalid or not issued to this device' });
    }
    await reply(
      200,
      { timestamp: Date.now(), unitName: 'center', cookie: '' },
      { sid: conn.sid, 'reg-uid': goofish(seller.unb) },
    );
    if (conn.ws.readyState !== WebSocket.OPEN || seller.flags.silent) return;
    conn.registered = true;
    this.log(`im conn#${conn.id} registered seller=${seller.unb}`);
    this.push(conn, '/s/vulcan', { type: 'vulcan', timestamp: Date.now() }, [], false);
    const pend = this.pendingOf(seller.unb);
    if (pend.size) this.push(conn, '/s/sync', syncBody([...pend.values()]), [...pend.keys()], true);
  }

  /** Validates a send against the exact shape of protocol 1.10. */
  private parseSend(
    seller: SellerState,
    body: unknown,
  ): { error: string } | { chat: Chat; uuid: string; text?: string; pics?: Pic[] } {
    if (!Array.isArray(body) || body.length !== 2) return { error: 'body must be [A, B]' };
    const [a, b] = body as unknown[];
    if (!isRecord(a) || !isRecord(b)) return { error: 'body entries must be objects' };
    if (typeof a.uuid !== 'string' || !UUID_RE.test(a.uuid))
      return { error: 'uuid must be "-" + epoch ms + "1"' };
    const cid = typeof a.cid === 'string' ? /^(\d+)@goofish$/.exec(a.cid) : null;
    if (!cid) return { error: 'cid must be "<chat id>@goofish"' };
    const chat = this.state.chats.get(cid[1]!);
    if (!chat || chat.sellerId !== seller.unb) return { error: 'conversation not found' };
    if (a.conversationType !== 1) return { error: 'conversationType must be 1' };
    const content = a.content;
    if (!isRecord(content) || content.contentType !== 101)
      return { error: 'content.contentType must be 101' };
    const custom = content.custom;
    if (!isRecord(custom) || custom.type !== 1 || typeof custom.data !== 'string') {
      return { error: 'content.custom must be {type:1,data:<base64>}' };
    }
    if (a.redPointPolicy !== 0) return { error: 'redPointPolicy must be 0' };
    if (!isRecord(a.extension) || typeof a.extension.extJson !== 'string')
      return { error: 'extension.extJson' };
    if (!isRecord(a.ctx) || a.ctx.appVersion !== '1.0' || a.ctx.platform !== 'web') return { error: 'ctx' };
    if (!isRecord(a.mtags)) return { error: 'mtags must be {}' };
    if (a.msgReadStatusSetting !== 1) return { error: 'msgReadStatusSetting must be 1' };
    const want = [goofish(chat.buyerId), goofish(seller.unb)].sort();
    const got = Array.isArray(b.actualReceivers) ? [...(b.actualReceivers as unknown[])].sort() : [];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      return { error: 'actualReceivers must be [<buyer>@goofish, <me>@goofish]' };
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(custom.data)) return { error: 'custom.data is not base64' };
    const inner = tryJson(Buffer.from(custom.data, 'base64').toString('utf8'));
    if (!inner.ok || !isRecord(inner.value)) return { error: 'custom.data is not base64 JSON' };
    const v = inner.value;
    if (v.contentType === 1) {
      if (!isRecord(v.text) || typeof v.text.text !== 'string' || !v.text.text) {
        return { error: 'text content must be {contentType:1,text:{text}}' };
      }
      return { chat, uuid: a.uuid, text: v.text.text };
    }
    if (v.contentType === 2) {
      const pics = isRecord(v.image) ? v.image.pics : undefined;
      const okPics =
        Array.isArray(pics) &&
        pics.length > 0 &&
        pics.every(
          (p) =>
            isRecord(p) &&
            typeof p.url === 'string' &&
            CDN_RE.test(p.url) &&
            typeof p.width === 'number' &&
            typeof p.height === 'number' &&
            typeof p.type === 'number',
        );
      if (!okPics)
        return { error: 'image content must be {contentType:2,image:{pics:[{height,type,url(CDN),width}]}}' };
      return { chat, uuid: a.uuid, pics: pics as Pic[] };
    }
    return { error: `unsupported inner contentType ${String(v.contentType)}` };
  }

  private async send(
    conn: Conn,
    body: unknown,
    reply: (code: number, body?: unknown) => Promise<void>,
  ): Promise<void> {
    const seller = conn.seller;
    const p = this.parseSend(seller, body);
    if ('error' in p) {
      this.log(`im send rejected: ${p.error}`);
      return reply(400, { reason: 'PARAM_ERROR', message: p.error });
    }
    // The client uuid makes a send idempotent: a repeat is the same message, not a new one.
    const uuidKey = `${seller.unb}/${p.uuid}`;
    const earlier = this.sentByUuid.get(uuidKey);
    if (earlier) {
      this.log(`im send repeated uuid ${p.uuid}: same message ${earlier.messageId}`);
      return reply(200, { messageId: earlier.messageId, createAt: earlier.createdAt, uuid: p.uuid });
    }
    const forbid = this.state.inject.csiForbid;
    if (forbid && p.text !== undefined) {
      forbid.lastIndex = 0;
      if (forbid.test(p.text)) {
        this.log('im send blocked: CSI_FORBID');
        return reply(200, { reason: 'CSI_FORBID', message: '内容含有违规信息', uuid: p.uuid });
      }
    }
    const m = chatMessage(this.state, p.chat, { from: 'seller', text: p.text, pics: p.pics });
    this.state.sentRecords.push({
      sellerId: seller.unb,
      chatId: p.chat.chatId,
      toUserIds: [p.chat.buyerId],
      ...(p.text !== undefined ? { text: p.text } : {}),
      contentType: m.innerType,
      ...(p.pics ? { image: { pics: p.pics } } : {}),
      messageId: m.messageId,
      uuid: p.uuid,
      at: m.createdAt,
    });
    this.state.events.emit('send', this.state.sentRecords.at(-1));
    this.log(`im send ok chat=${p.chat.chatId} messageId=${m.messageId}`);
    this.sentByUuid.set(uuidKey, { messageId: m.messageId, createdAt: m.createdAt });
    await reply(200, { messageId: m.messageId, createAt: m.createdAt, uuid: p.uuid });
    // The seller's own message comes back as a sync push (the "own echo").
    this.publish(m);
  }

  private messageModel(m: StoredMessage): Record<string, unknown> {
    return {
      message: {
        messageId: m.messageId,
        cid: goofish(m.chatId),
        conversationType: 1,
        createAt: m.createdAt,
        sender: { uid: goofish(m.senderId) },
        content: {
          contentType: 101,
          custom: {
            type: 1,
            summary: m.display,
            data: Buffer.from(JSON.stringify(m.content), 'utf8').toString('base64'),
          },
        },
        extension: { ...m.ext },
      },
    };
  }

  private listMessages(conn: Conn, body: unknown, reply: (code: number, body?: unknown) => Promise<void>) {
    const b = Array.isArray(body) ? (body as unknown[]) : [];
    const cid = typeof b[0] === 'string' ? /^(\d+)@goofish$/.exec(b[0]) : null;
    const cursor = b[2];
    const limit = b[3];
    if (!cid || typeof cursor !== 'number' || typeof limit !== 'number' || limit < 1 || limit > 100) {
      return reply(400, {
        reason: 'PARAM_ERROR',
        message: 'body must be [cid, false, cursor, limit, false]',
      });
    }
    const chat = this.state.chats.get(cid[1]!);
    if (!chat || chat.sellerId !== conn.seller.unb) return reply(400, { reason: 'CONVERSATION_NOT_FOUND' });
    // Newest first; the cursor is a create time, and ties are kept on one page so none is lost.
    const all = [...(this.state.history.get(chat.chatId) ?? [])]
      .map((m, i) => ({ m, i }))
      .sort((x, y) => y.m.createdAt - x.m.createdAt || y.i - x.i)
      .map((x) => x.m)
      .filter((m) => m.createdAt < cursor);
    let n = Math.min(limit, all.length);
    while (n < all.length && all[n]!.createdAt === all[n - 1]!.createdAt) n++;
    const page = all.slice(0, n);
    return reply(200, {
      hasMore: n < all.length ? 1 : 0,
      nextCursor: page.length ? page[page.length - 1]!.createdAt : cursor,
      userMessageModels: page.map((m) => this.messageModel(m)),
    });
  }

  private createConversation(
    conn: Conn,
    body: unknown,
    reply: (code: number, body?: unknown) => Promise<void>,
  ) {
    const a = Array.isArray(body) ? body[0] : undefined;
    const me = goofish(conn.seller.unb);
    const to = isRecord(a) && typeof a.pairFirst === 'string' ? /^(\d+)@goofish$/.exec(a.pairFirst) : null;
    if (!isRecord(a) || !to || a.pairSecond !== me || a.bizType !== '1' || a.pairFirst === me) {
      return reply(400, {
        reason: 'PARAM_ERROR',
        message: 'body must be [{pairFirst,pairSecond,bizType:"1",...}]',
      });
    }
    const ext = isRecord(a.extension) ? a.extension : {};
    const itemId = typeof ext.itemId === 'string' && ext.itemId ? ext.itemId : undefined;
    const chat = this.state.chatFor({ sellerId: conn.seller.unb, buyerId: to[1]!, itemId });
    return reply(200, {
      singleChatConversation: {
        cid: goofish(chat.chatId),
        pairFirst: a.pairFirst,
        pairSecond: me,
        bizType: '1',
        extension: itemId ? { itemId } : {},
        createAt: chat.modifiedAt,
      },
    });
  }

  private listConversations(
    conn: Conn,
    body: unknown,
    reply: (code: number, body?: unknown) => Promise<void>,
  ) {
    const b = Array.isArray(body) ? (body as unknown[]) : [];
    const start = b[0];
    const limit = b[1];
    if (typeof start !== 'number' || typeof limit !== 'number' || limit < 1) {
      return reply(400, { reason: 'PARAM_ERROR', message: 'body must be [<start ts>, <limit>]' });
    }
    const all = [...this.state.chats.values()]
      .filter((c) => c.sellerId === conn.seller.unb && c.modifiedAt <= start)
      .sort((x, y) => y.modifiedAt - x.modifiedAt);
    const page = all.slice(0, limit);
    return reply(200, {
      hasMore: all.length > limit ? 1 : 0,
      nextCursor: page.length ? page[page.length - 1]!.modifiedAt - 1 : start,
      userConvs: page.map((c) => {
        const last = (this.state.history.get(c.chatId) ?? []).at(-1);
        return {
          type: 1,
          singleChatUserConversation: {
            singleChatConversation: {
              cid: goofish(c.chatId),
              pairFirst: goofish(c.buyerId),
              pairSecond: goofish(c.sellerId),
              bizType: '1',
              extension: c.itemId ? { itemId: c.itemId } : {},
            },
            modifyTime: c.modifiedAt,
            ...(last ? { lastMessage: this.messageModel(last) } : {}),
          },
        };
      }),
    });
  }
}
