import { decode, decodeMulti } from '@msgpack/msgpack';
import { bareId } from './constants.js';
import { cardInfo, extractOrderId, isSystemText } from './orders.js';
import type { ChatMessage, DecodedEntry, PushEntry } from './types.js';

// Sync-push entries (protocol §1.7): base64 → JSON (system notice) or base64 → MessagePack with
// small-integer map keys. There is no encryption. Nothing here throws: undecodable input becomes
// `{kind:'malformed'}`, decodable but unrecognised input `{kind:'unknown'}`.

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const utf8 = new TextDecoder('utf-8');

/** msgpack → plain JSON-like value: integer keys become "1","2"…, bytes become UTF-8 strings. */
export function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return utf8.decode(v);
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Map) {
    const out: Obj = {};
    for (const [k, val] of v) out[String(k)] = normalise(val);
    return out;
  }
  if (v && typeof v === 'object') {
    const out: Obj = {};
    for (const [k, val] of Object.entries(v)) out[k] = normalise(val);
    return out;
  }
  if (typeof v === 'bigint') return Number(v);
  return v;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Decodes msgpack bytes; trailing garbage after the first value is tolerated like the reference decoder. */
function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch {
    for (const first of decodeMulti(bytes)) return first;
    return undefined;
  }
}

export interface DecodeOptions {
  /** Used when a message lacks a create time. */
  now?: number;
}

/** Decodes one entry of `syncPushPackage.data` (an object with a `data` string, or the string itself). */
export function decodePushEntry(entry: unknown, opts: DecodeOptions = {}): DecodedEntry {
  try {
    const data = typeof entry === 'string' ? entry : obj(entry)?.data;
    if (typeof data !== 'string' || data.length === 0)
      return { kind: 'malformed', reason: 'entry has no data string' };
    const trimmed = data.trim();
    // cv-cat tries plain JSON first.
    if (trimmed.startsWith('{')) {
      const plain = tryJson(trimmed);
      if (obj(plain)) return classify(plain, opts);
    }
    const compact = trimmed.replace(/\s+/g, '');
    if (!BASE64.test(compact)) return { kind: 'malformed', reason: 'not base64' };
    const bytes = Buffer.from(compact, 'base64');
    // JSON only when the bytes can be a JSON object: a failed parse throws, which is costly on
    // the hot path of every msgpack entry (a msgpack map starts with 0x80-0x8f / 0xde / 0xdf).
    const firstByte = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    const asJson = firstByte === 0x7b ? tryJson(bytes.toString('utf8')) : undefined;
    if (obj(asJson)) return classify(asJson, opts);
    let decoded: unknown;
    try {
      decoded = normalise(decodeMsgpack(bytes));
    } catch (err) {
      return { kind: 'malformed', reason: `msgpack: ${(err as Error).message}` };
    }
    if (!obj(decoded)) return { kind: 'malformed', reason: 'msgpack value is not a map' };
    return classify(decoded, opts);
  } catch (err) {
    return { kind: 'malformed', reason: `decode: ${(err as Error).message}` };
  }
}

/** Classifies an already decoded entry (string keys). */
export function classify(m: unknown, opts: DecodeOptions = {}): PushEntry {
  const o = obj(m);
  if (!o) return { kind: 'unknown', raw: m };
  if ('chatType' in o) return { kind: 'system-notice', chatType: o.chatType, raw: o };
  const one = o['1'];
  // Typing indicator: "1" is a list whose first element holds "1" = "<uid>@goofish".
  if (Array.isArray(one)) {
    const uid = str(obj(one[0])?.['1']);
    return uid ? { kind: 'typing', userId: bareId(uid) } : { kind: 'unknown', raw: o };
  }
  const msg = obj(one);
  if (msg && obj(msg['10']) && 'reminderContent' in (msg['10'] as Obj)) {
    return { kind: 'chat', message: chatMessage(o, msg, opts) };
  }
  const three = obj(o['3']);
  const red = str(three?.redReminder);
  if (red !== undefined) {
    const userId = str(three?.userId) ?? (typeof one === 'string' ? bareId(one) : undefined);
    const cid = str(o['2']);
    return {
      kind: 'red-reminder',
      redReminder: red,
      ...(userId ? { userId: bareId(userId) } : {}),
      ...(cid ? { chatId: bareId(cid) } : {}),
      raw: o,
    };
  }
  if (typeof one === 'string' && obj(o['4']) && 'reminderContent' in (o['4'] as Obj)) {
    return { kind: 'card-update', raw: o };
  }
  return { kind: 'unknown', raw: o };
}

/** JSON, or base64 JSON (HTTP history carries it base64-encoded). */
function parseContent(v: unknown): unknown {
  if (typeof v !== 'string' || v === '') return obj(v);
  const direct = tryJson(v);
  if (direct !== undefined) return direct;
  const compact = v.replace(/\s+/g, '');
  return BASE64.test(compact) ? tryJson(Buffer.from(compact, 'base64').toString('utf8')) : undefined;
}

function jsonField(v: unknown, key: string): string | undefined {
  const o = typeof v === 'string' ? obj(tryJson(v)) : obj(v);
  const val = str(o?.[key]);
  return val === '' ? undefined : val;
}

function queryParam(url: string | undefined, name: string): string | undefined {
  if (!url) return undefined;
  const m = new RegExp(`[?&]${name}=([^&#]*)`).exec(url);
  if (!m?.[1]) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

const ITEM_KEYS = new Set(['itemId', 'item_id', 'itemid']);

/** Fallback of §1.7: the first item-id-like key anywhere in the message. */
function findItemId(v: unknown, depth = 0): string | undefined {
  if (depth > 8) return undefined;
  if (Array.isArray(v)) {
    for (const x of v) {
      const id = findItemId(x, depth + 1);
      if (id) return id;
    }
    return undefined;
  }
  const o = obj(v);
  if (!o) return undefined;
  for (const [k, val] of Object.entries(o)) {
    if (ITEM_KEYS.has(k)) {
      const id = str(val);
      if (id && /^\d+$/.test(id)) return id;
    }
  }
  for (const val of Object.values(o)) {
    const id = findItemId(typeof val === 'string' && val.startsWith('{') ? tryJson(val) : val, depth + 1);
    if (id) return id;
  }
  return undefined;
}

function chatMessage(whole: Obj, msg: Obj, opts: DecodeOptions): ChatMessage {
  const ext = msg['10'] as Obj;
  const reminderUrl = str(ext.reminderUrl);
  const cid = str(msg['2']) ?? queryParam(reminderUrl, 'sid') ?? '';
  const sender = str(ext.senderUserId) ?? str(msg['1']) ?? '';
  const text = str(ext.reminderContent) ?? '';
  const wireMid = str(msg['3']);
  const messageId =
    jsonField(ext.bizTag, 'messageId') ??
    jsonField(ext.extJson, 'messageId') ??
    wireMid ??
    `${bareId(cid)}:${str(msg['5']) ?? ''}:${text}`;
  const created = Number(msg['5']);
  const inner = obj(obj(msg['6'])?.['3']);
  const contentType = Number(inner?.['4'] ?? 0);
  const content = parseContent(inner?.['5']);
  const card = cardInfo(content);
  const orderId = card.orderId ?? (contentType === 1 ? undefined : extractOrderId(content, whole));
  const itemId = queryParam(reminderUrl, 'itemId') ?? findItemId(msg);
  const redReminder = str(ext.redReminder);
  const needPush = str(obj(whole['3'])?.needPush);

  const message: ChatMessage = {
    messageId,
    chatId: bareId(cid),
    senderId: bareId(sender),
    senderName: str(ext.senderNick) || str(ext.reminderTitle) || '',
    text,
    contentType: Number.isFinite(contentType) ? contentType : 0,
    createdAt: Number.isFinite(created) && created > 0 ? created : (opts.now ?? Date.now()),
    isGroup: str(ext.sessionType) === '30',
    isSystem: needPush === 'false' || isSystemText(text),
  };
  if (wireMid && wireMid !== messageId) message.serverMessageId = wireMid;
  if (itemId) message.itemId = itemId;
  if (orderId) message.orderId = orderId;
  if (card.title !== undefined) message.cardTitle = card.title;
  if (card.button !== undefined) message.cardButton = card.button;
  if (redReminder) message.redReminder = redReminder;
  if (content !== undefined) message.content = content;
  return message;
}

/** Decodes every entry of a sync package. */
export function decodeSyncPush(entries: readonly unknown[], opts: DecodeOptions = {}): DecodedEntry[] {
  return entries.map((e) => decodePushEntry(e, opts));
}
