import { bareId, HISTORY_FIRST_CURSOR, IM_APP_KEY, IM_UA, LWP, wireId } from './constants.js';

// lwp frame builders and response parsers (protocol §1.4–§1.6, §1.10). Pure: the caller
// supplies mid/uuid/now so the builders are deterministic under test.

export interface LwpFrame {
  lwp?: string;
  code?: number;
  headers?: Record<string, unknown>;
  body?: unknown;
}

export function parseFrame(text: string): LwpFrame | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as LwpFrame) : undefined;
  } catch {
    return undefined;
  }
}

export function frameMid(frame: LwpFrame): string | undefined {
  const m = frame.headers?.mid;
  return typeof m === 'string' ? m : typeof m === 'number' ? String(m) : undefined;
}

/** A server answer to a client request: it has a `code` and no `lwp` path of its own. */
export function isResponse(frame: LwpFrame): boolean {
  return typeof frame.code === 'number' && !frame.lwp;
}

export function registerFrame(p: { token: string; deviceId: string; mid: string; ua?: string }): LwpFrame {
  return {
    lwp: LWP.register,
    headers: {
      'cache-header': 'app-key token ua wv',
      'app-key': IM_APP_KEY,
      token: p.token,
      ua: p.ua ?? IM_UA,
      dt: 'j',
      wv: 'im:3,au:3,sy:6',
      sync: '0,0;0;0;',
      did: p.deviceId,
      mid: p.mid,
    },
  };
}

/** "Caught up as of now": no replay of the backlog before `now`. */
export function ackDiffFrame(p: { mid: string; now: number }): LwpFrame {
  return {
    lwp: LWP.ackDiff,
    headers: { mid: p.mid },
    body: [
      {
        pipeline: 'sync',
        tooLong2Tag: 'PNM,1',
        channel: 'sync',
        topic: 'sync',
        highPts: 0,
        pts: p.now * 1000,
        seq: 0,
        timestamp: p.now,
      },
    ],
  };
}

export function heartbeatFrame(mid: string): LwpFrame {
  return { lwp: LWP.heartbeat, headers: { mid } };
}

/** Ack of a received frame (§1.6): echo mid/sid, copy app-key/ua/dt when present; no body. */
export function ackFrame(received: LwpFrame, newMid: string): LwpFrame {
  const h = received.headers ?? {};
  const headers: Record<string, unknown> = {
    mid: frameMid(received) ?? newMid,
    sid: typeof h.sid === 'string' ? h.sid : '',
  };
  for (const k of ['app-key', 'ua', 'dt']) if (h[k] !== undefined) headers[k] = h[k];
  return { code: 200, headers };
}

export interface SendParams {
  mid: string;
  uuid: string;
  /** Conversation id, with or without @goofish. */
  chatId: string;
  toUserId: string;
  myUserId: string;
}

function sendEnvelope(p: SendParams, inner: unknown): LwpFrame {
  const data = Buffer.from(JSON.stringify(inner), 'utf8').toString('base64');
  return {
    lwp: LWP.send,
    headers: { mid: p.mid },
    body: [
      {
        uuid: p.uuid,
        cid: wireId(bareId(p.chatId)),
        conversationType: 1,
        content: { contentType: 101, custom: { type: 1, data } },
        redPointPolicy: 0,
        extension: { extJson: '{}' },
        ctx: { appVersion: '1.0', platform: 'web' },
        mtags: {},
        msgReadStatusSetting: 1,
      },
      { actualReceivers: [wireId(bareId(p.toUserId)), wireId(bareId(p.myUserId))] },
    ],
  };
}

export function sendTextFrame(p: SendParams & { text: string }): LwpFrame {
  return sendEnvelope(p, { contentType: 1, text: { text: p.text } });
}

/** Image send; the URL must already be a Xianyu CDN URL (upload first). */
export function sendImageFrame(p: SendParams & { url: string; width?: number; height?: number }): LwpFrame {
  return sendEnvelope(p, {
    contentType: 2,
    image: { pics: [{ height: p.height ?? 600, type: 0, url: p.url, width: p.width ?? 800 }] },
  });
}

export function listUserMessagesFrame(p: {
  mid: string;
  chatId: string;
  cursor?: number;
  limit?: number;
}): LwpFrame {
  return {
    lwp: LWP.history,
    headers: { mid: p.mid },
    body: [wireId(bareId(p.chatId)), false, p.cursor ?? HISTORY_FIRST_CURSOR, p.limit ?? 20, false],
  };
}

// ---- response parsers ----

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

export type SendResult = { ok: true; messageId: string } | { ok: false; reason: string };

/**
 * A send answer: `code` 200 and `body.messageId`; a `body.reason` (CSI_FORBID …) means the
 * message was not delivered although the frame looks normal.
 */
export function parseSendResponse(frame: LwpFrame): SendResult {
  const body = obj(frame.body);
  if (frame.code !== 200)
    return { ok: false, reason: String(body?.reason ?? `code ${frame.code ?? 'missing'}`) };
  if (body?.reason !== undefined && body.reason !== '') return { ok: false, reason: String(body.reason) };
  const id = body?.messageId;
  if (typeof id === 'string' && id) return { ok: true, messageId: id };
  if (typeof id === 'number') return { ok: true, messageId: String(id) };
  return { ok: false, reason: 'no messageId in answer' };
}

export interface HistoryMessage {
  messageId?: string;
  senderId?: string;
  senderName?: string;
  /** The decoded `content.custom.data` JSON ({contentType, text:{text}} …). */
  content?: unknown;
  /** Convenience: `content.text.text` for text messages. */
  text?: string;
  createdAt?: number;
}

export interface HistoryPage {
  hasMore: boolean;
  nextCursor?: number;
  messages: HistoryMessage[];
}

function decodeCustomData(data: unknown): unknown {
  if (typeof data !== 'string') return undefined;
  for (const text of [data, Buffer.from(data, 'base64').toString('utf8')]) {
    try {
      return JSON.parse(text);
    } catch {
      // try the other encoding
    }
  }
  return undefined;
}

export function parseHistoryResponse(frame: LwpFrame): HistoryPage {
  const body = obj(frame.body) ?? {};
  const models = Array.isArray(body.userMessageModels) ? body.userMessageModels : [];
  const messages = models.map((m): HistoryMessage => {
    const msg = obj(obj(m)?.message) ?? {};
    const ext = obj(msg.extension) ?? {};
    const content = decodeCustomData(obj(obj(msg.content)?.custom)?.data);
    const text = obj(obj(content)?.text)?.text;
    const created = msg.createAt ?? msg.createdAt;
    return {
      messageId: typeof msg.messageId === 'string' ? msg.messageId : undefined,
      senderId: typeof ext.senderUserId === 'string' ? ext.senderUserId : undefined,
      senderName: typeof ext.reminderTitle === 'string' ? ext.reminderTitle : undefined,
      content,
      text: typeof text === 'string' ? text : undefined,
      createdAt: typeof created === 'number' ? created : undefined,
    };
  });
  const next = Number(body.nextCursor);
  return {
    hasMore: body.hasMore === 1 || body.hasMore === true,
    nextCursor: Number.isFinite(next) && body.nextCursor !== undefined ? next : undefined,
    messages,
  };
}

export interface ConversationSummary {
  chatId: string;
  /** The other side (pairFirst), without @goofish. */
  peerId?: string;
  itemId?: string;
  modifiedAt?: number;
  lastMessage?: HistoryMessage;
}

export interface ConversationPage {
  hasMore: boolean;
  nextCursor?: number;
  conversations: ConversationSummary[];
}

/** `/r/Conversation/listNewestPagination` answer: `body.userConvs[].singleChatUserConversation`. */
export function parseConversationList(frame: LwpFrame): ConversationPage {
  const body = obj(frame.body) ?? {};
  const convs = Array.isArray(body.userConvs) ? body.userConvs : [];
  const conversations: ConversationSummary[] = [];
  for (const c of convs) {
    const u = obj(obj(c)?.singleChatUserConversation);
    const conv = obj(u?.singleChatConversation);
    const cid = conv?.cid;
    if (typeof cid !== 'string') continue;
    const s: ConversationSummary = { chatId: bareId(cid) };
    if (typeof conv?.pairFirst === 'string') s.peerId = bareId(conv.pairFirst);
    const itemId = obj(conv?.extension)?.itemId;
    if (typeof itemId === 'string' && itemId) s.itemId = itemId;
    if (typeof u?.modifyTime === 'number') s.modifiedAt = u.modifyTime;
    if (u?.lastMessage) {
      const page = parseHistoryResponse({ body: { userMessageModels: [u.lastMessage] } });
      if (page.messages[0]) s.lastMessage = page.messages[0];
    }
    conversations.push(s);
  }
  const next = Number(body.nextCursor);
  return {
    hasMore: body.hasMore === 1 || body.hasMore === true,
    nextCursor: Number.isFinite(next) && body.nextCursor !== undefined ? next : undefined,
    conversations,
  };
}

/** The sync entries of a push, when the frame is a sync package (non-empty `syncPushPackage.data`). */
export function syncEntries(frame: LwpFrame): unknown[] | undefined {
  const data = obj(obj(obj(frame.body)?.syncPushPackage))?.data;
  return Array.isArray(data) && data.length > 0 ? data : undefined;
}
