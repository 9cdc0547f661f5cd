// Trade cards and the exact strings the reference projects react to (protocol §1.7, §1.9).
// Exported as data: the reply layer and auto-delivery read these tables, not their own copies.

export type OrderStatus =
  | 'processing'
  | 'pending_ship'
  | 'shipped'
  | 'completed'
  | 'refunding'
  | 'refund_cancelled'
  | 'cancelled';

/** Substring triggers of auto-delivery. */
export const DELIVERY_TRIGGERS: readonly string[] = [
  '[我已付款，等待你发货]',
  '[已付款，待发货]',
  '我已付款，等待你发货',
  '[记得及时发货]',
];
/** Bargain ("小刀") success card: text `[卡片消息]` with this card title also triggers delivery. */
export const BARGAIN_CARD_TEXT = '[卡片消息]';
export const BARGAIN_CARD_TITLE = '我已小刀，待刀成';

/** Texts that are never answered (exact match). */
export const IGNORED_TEXTS: ReadonlySet<string> = new Set([
  '[我已拍下，待付款]',
  '[你关闭了订单，钱款已原路退返]',
  '[不想宝贝被砍价?设置不砍价回复  ]',
  'AI正在帮你回复消息，不错过每笔订单',
  '发来一条消息',
  '发来一条新消息',
  '[买家确认收货，交易成功]',
  '快给ta一个评价吧~',
  '快给ta一个评价吧～',
  '卖家人不错？送Ta闲鱼小红花',
  '[你已确认收货，交易成功]',
  '[你已发货]',
  '已发货',
]);

/** Exact message text → order status. */
export const ORDER_STATUS_BY_TEXT: ReadonlyMap<string, OrderStatus> = new Map<string, OrderStatus>([
  ['[买家确认收货，交易成功]', 'completed'],
  ['[你已确认收货，交易成功]', 'completed'],
  ['[你已发货]', 'shipped'],
  ['你已发货', 'shipped'],
  ['[你已发货，请等待买家确认收货]', 'shipped'],
  ['[我已付款，等待你发货]', 'pending_ship'],
  ['[买家已付款]', 'pending_ship'],
  ['[付款完成]', 'pending_ship'],
  ['[已付款，待发货]', 'pending_ship'],
  ['[我已拍下，待付款]', 'processing'],
  ['[退款成功，钱款已原路退返]', 'cancelled'],
  ['[你关闭了订单，钱款已原路退返]', 'cancelled'],
]);
export const REFUND_CARD_TITLE = '我发起了退款申请';
export const REFUND_BUTTON_STATUS: ReadonlyMap<string, OrderStatus> = new Map<string, OrderStatus>([
  ['已同意', 'refunding'],
  ['已撤销', 'refund_cancelled'],
]);
export const RED_REMINDER_STATUS: ReadonlyMap<string, OrderStatus> = new Map<string, OrderStatus>([
  ['交易关闭', 'cancelled'],
]);

/** Every known system/trade string: a message carrying one is not a buyer's own words. */
export const SYSTEM_TEXTS: ReadonlySet<string> = new Set([
  ...DELIVERY_TRIGGERS,
  ...IGNORED_TEXTS,
  ...ORDER_STATUS_BY_TEXT.keys(),
]);

export function isSystemText(text: string): boolean {
  return SYSTEM_TEXTS.has(text) || /^\[.*\]$/s.test(text);
}

export function isDeliveryTrigger(text: string, cardTitle?: string): boolean {
  if (DELIVERY_TRIGGERS.some((t) => text.includes(t))) return true;
  return text === BARGAIN_CARD_TEXT && cardTitle === BARGAIN_CARD_TITLE;
}

/** The order status a message announces, if any (§1.9 order_status_handler). */
export function orderStatusOf(m: {
  text: string;
  cardTitle?: string;
  cardButton?: string;
  redReminder?: string;
}): OrderStatus | undefined {
  if (m.cardTitle === REFUND_CARD_TITLE && m.cardButton) {
    const s = REFUND_BUTTON_STATUS.get(m.cardButton);
    if (s) return s;
  }
  const byText = ORDER_STATUS_BY_TEXT.get(m.text.trim());
  if (byText) return byText;
  return m.redReminder ? RED_REMINDER_STATUS.get(m.redReminder) : undefined;
}

const RANK: Record<OrderStatus, number> = {
  processing: 1,
  pending_ship: 2,
  shipped: 3,
  completed: 4,
  refund_cancelled: 0,
  refunding: 0,
  cancelled: 0,
};

/** Status never moves backwards, except into refunding/cancelled (and out of refunding). */
export function canTransition(from: OrderStatus | undefined, to: OrderStatus): boolean {
  if (from === undefined) return true;
  if (from === to) return false;
  if (to === 'refunding' || to === 'cancelled') return true;
  if (from === 'refunding' || from === 'refund_cancelled') return to !== 'processing';
  if (from === 'cancelled') return false;
  return RANK[to] > RANK[from];
}

// ---- order id extraction ----

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function at(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const k of path) cur = obj(cur)?.[k];
  return cur;
}

const ORDER_ID_PARAM = /[?&]orderId=(\d+)/;
const ORDER_DETAIL_ID = /order_detail\?(?:[^#]*&)?id=(\d+)/;
const BIZ_ORDER_ID = /bizOrderId[=:]"?(\d+)/;

/** The card's `item.main`, plain or under `dynamicOperation.changeContent`. */
function cardMains(content: unknown): Record<string, unknown>[] {
  const mains = [
    at(content, 'dxCard', 'item', 'main'),
    at(content, 'dynamicOperation', 'changeContent', 'dxCard', 'item', 'main'),
  ];
  return mains.map(obj).filter((m): m is Record<string, unknown> => m !== undefined);
}

export interface CardInfo {
  title?: string;
  button?: string;
  orderId?: string;
}

/** Title, button text and order id of a trade card (content JSON of "6"."3"."5"). */
export function cardInfo(content: unknown): CardInfo {
  const info: CardInfo = {};
  for (const main of cardMains(content)) {
    const ex = obj(main.exContent);
    const title = ex?.title;
    const button = at(ex, 'button', 'text');
    if (info.title === undefined && typeof title === 'string') info.title = title;
    if (info.button === undefined && typeof button === 'string') info.button = button;
  }
  const orderId = orderIdFromCard(content);
  if (orderId) info.orderId = orderId;
  return info;
}

function orderIdFromCard(content: unknown): string | undefined {
  for (const main of cardMains(content)) {
    const btnUrl = at(main, 'exContent', 'button', 'targetUrl');
    const m1 = typeof btnUrl === 'string' ? (ORDER_ID_PARAM.exec(btnUrl) ?? BIZ_ORDER_ID.exec(btnUrl)) : null;
    if (m1?.[1]) return m1[1];
    const url = main.targetUrl;
    const m2 = typeof url === 'string' ? (ORDER_DETAIL_ID.exec(url) ?? ORDER_ID_PARAM.exec(url)) : null;
    if (m2?.[1]) return m2[1];
  }
  return undefined;
}

/** Last resort: regexes over the serialised message (orderId=, order_detail?id=, "id":<10+ digits>, bizOrderId=). */
export function orderIdFromText(text: string): string | undefined {
  const patterns = [
    /orderId["=:]+(\d+)/,
    ORDER_DETAIL_ID,
    BIZ_ORDER_ID,
    /"id"\s*:\s*"?(\d{10,})/,
    // extJson.updateKey "<cid>:<orderId>:1_not_pay_seller" (not in the reference projects' list)
    /updateKey\\?"\s*:\s*\\?"\d+(?:@goofish)?:(\d{10,}):/,
  ];
  for (const p of patterns) {
    const m = p.exec(text);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

/** Order id of a message: card JSON first, then regexes over the whole decoded message. */
export function extractOrderId(content: unknown, whole?: unknown): string | undefined {
  const fromCard = orderIdFromCard(content);
  if (fromCard) return fromCard;
  for (const v of [content, whole]) {
    if (v === undefined) continue;
    let text: string;
    try {
      text = typeof v === 'string' ? v : JSON.stringify(v);
    } catch {
      continue;
    }
    const id = orderIdFromText(text);
    if (id) return id;
  }
  return undefined;
}
