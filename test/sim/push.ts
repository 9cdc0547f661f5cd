// Encoders for every push shape of protocol 1.7. Integer-keyed maps are built as `Map<number, …>`
// so msgpack.ts writes real integer keys (the client sees "1", "2", … only after its JSON round trip).
import { encodeMsgpack } from './msgpack.js';
import type { StoredMessage, TradeKind } from './state.js';

/** One entry of `body.syncPushPackage.data`. */
export interface SyncEntry {
  bizType: number;
  data: string;
  objectType: number;
}

export const goofish = (id: string): string => `${id}@goofish`;

/** base64(msgpack(obj)) — or base64(JSON) for the unencrypted system-notice shape. */
export function encodeEntry(obj: unknown, plainJson = false): SyncEntry {
  const bytes = plainJson ? Buffer.from(JSON.stringify(obj), 'utf8') : Buffer.from(encodeMsgpack(obj));
  return { bizType: 40, data: bytes.toString('base64'), objectType: 40000 };
}

export function syncBody(entries: SyncEntry[]): { syncPushPackage: { data: SyncEntry[] } } {
  return { syncPushPackage: { data: entries } };
}

/** The decoded chat-message shape: {"1": message, "2": 1, "3": {needPush}}. */
export function chatEntry(m: StoredMessage): Map<number, unknown> {
  const content = new Map<number, unknown>([
    [1, 101],
    [
      3,
      new Map<number, unknown>([
        [1, ''],
        [2, m.display],
        [3, ''],
        [4, m.innerType],
        // Live pushes carry plain JSON here (history carries base64 JSON).
        [5, JSON.stringify(m.content)],
      ]),
    ],
  ]);
  const message = new Map<number, unknown>([
    [1, goofish(m.senderId)],
    [2, goofish(m.chatId)],
    [3, m.messageId],
    [4, 0],
    [5, m.createdAt],
    [6, content],
    [7, 0],
    [8, 1],
    [9, 0],
    [10, m.ext],
    [12, 1],
  ]);
  return new Map<number, unknown>([
    [1, message],
    [2, 1],
    [3, { needPush: m.needPush ? 'true' : 'false' }],
  ]);
}

/** Typing indicator: "1" is a list whose first element has "1" = "<uid>@goofish". */
export function typingEntry(userId: string, chatId?: string): Map<number, unknown> {
  const who = new Map<number, unknown>([[1, goofish(userId)]]);
  if (chatId) who.set(2, goofish(chatId));
  who.set(3, 1);
  return new Map<number, unknown>([
    [1, [who]],
    [2, 1],
  ]);
}

/** Card update: "1" is the cid string, "4" a dict with reminderContent. */
export function cardUpdateEntry(chatId: string, ext: Record<string, string>): Map<number, unknown> {
  return new Map<number, unknown>([
    [1, goofish(chatId)],
    [2, 1],
    [4, ext],
  ]);
}

/** Red reminder: "1" is a plain "<uid>@goofish" string, "3" carries redReminder and userId. */
export function redReminderEntry(o: { userId: string; redReminder: string }): Map<number, unknown> {
  return new Map<number, unknown>([
    [1, goofish(o.userId)],
    [2, 1],
    [3, { redReminder: o.redReminder, userId: o.userId, needPush: 'false' }],
  ]);
}

/** Unencrypted system notice (base64 plain JSON with chatType): "小闲鱼智能提示" suggested scripts. */
export function systemNoticeObject(sellerId: string): Record<string, unknown> {
  return {
    chatType: 1,
    receiverId: sellerId,
    operation: {
      contentType: 48,
      content: {
        contentType: 48,
        sessionArouse: {
          arouseChatScriptInfo: [
            { chatScrip: '小闲鱼智能提示：宝贝还在吗？' },
            { chatScrip: '小闲鱼智能提示：可以包邮吗？' },
          ],
        },
      },
    },
    timestamp: Date.now(),
  };
}

export const textContent = (text: string) => ({ contentType: 1, text: { text } });

export interface Pic {
  url: string;
  width: number;
  height: number;
  type: number;
}
export const imageContent = (pics: Pic[]) => ({ contentType: 2, image: { pics } });

export function reminderUrl(o: {
  itemId?: string;
  peerUserId: string;
  peerUserNick: string;
  chatId: string;
  messageId: string;
}): string {
  const q = [
    ...(o.itemId ? [`itemId=${o.itemId}`] : []),
    `peerUserId=${o.peerUserId}`,
    `peerUserNick=${encodeURIComponent(o.peerUserNick)}`,
    `sid=${o.chatId}`,
    `messageId=${o.messageId}`,
    'adv=no',
  ];
  return `fleamarket://message_chat?${q.join('&')}`;
}

/** The "1"."10" extension dict of an ordinary chat message (text / image). */
export function chatExt(o: {
  senderId: string;
  senderNick: string;
  receiverId: string;
  peerUserId: string;
  peerUserNick: string;
  chatId: string;
  itemId?: string;
  messageId: string;
  text: string;
  contentType: number;
  sessionType: '1' | '30';
}): Record<string, string> {
  return {
    senderUserId: o.senderId,
    senderNick: o.senderNick,
    reminderTitle: o.senderNick,
    reminderContent: o.text,
    reminderNotice: '发来一条消息',
    detailNotice: o.text,
    reminderUrl: reminderUrl({ ...o }),
    bizTag: JSON.stringify({
      sourceId: 'S:1',
      taskName: '基础私聊消息',
      materialId: 'S:1',
      taskId: 'S:1',
      messageId: o.messageId,
    }),
    extJson: JSON.stringify({
      messageId: o.messageId,
      contentType: o.contentType,
      quickReply: '1',
      msgArgs: { task_id: o.messageId },
      multiChannel: { huawei: 'EXPRESS', xiaomi: '106', oppo: 'EXPRESS', vivo: 'EXPRESS' },
    }),
    receiver: o.receiverId,
    sessionType: o.sessionType,
    senderUserType: '0',
    closePushReceiver: 'false',
    closeUnreadNumber: 'false',
    updateHead: 'true',
  };
}

/** Per-kind strings of protocol 1.9 (reminderContent, card title/button, red reminder). */
export const TRADE_CARDS: Record<
  TradeKind,
  { display: string; title: string; button: string; redReminder?: string; needPush: boolean; key: string }
> = {
  unpaid: {
    display: '[我已拍下，待付款]',
    title: '我已拍下，待付款',
    button: '修改价格',
    redReminder: '等待买家付款',
    needPush: true,
    key: '1_not_pay_seller',
  },
  paid: {
    display: '[我已付款，等待你发货]',
    title: '我已付款，等待你发货',
    button: '去发货',
    redReminder: '等待卖家发货',
    needPush: true,
    key: '2_pay_seller',
  },
  shipped: {
    display: '[你已发货]',
    title: '你已发货',
    button: '查看详情',
    redReminder: '等待买家收货',
    needPush: false,
    key: '3_consign_seller',
  },
  completed: {
    display: '[买家确认收货，交易成功]',
    title: '买家确认收货，交易成功',
    button: '去评价',
    redReminder: '交易成功',
    needPush: false,
    key: '4_success_seller',
  },
  'refund-requested': {
    display: '[我发起了退款申请]',
    title: '我发起了退款申请',
    button: '去处理',
    redReminder: '退款中',
    needPush: false,
    key: '5_refund_seller',
  },
  'refund-agreed': {
    display: '[我发起了退款申请]',
    title: '我发起了退款申请',
    button: '已同意',
    redReminder: '退款中',
    needPush: false,
    key: '5_refund_seller',
  },
  'refund-cancelled': {
    display: '[我发起了退款申请]',
    title: '我发起了退款申请',
    button: '已撤销',
    needPush: false,
    key: '5_refund_seller',
  },
  refunded: {
    display: '[退款成功，钱款已原路退返]',
    title: '退款成功，钱款已原路退返',
    button: '查看详情',
    redReminder: '交易关闭',
    needPush: false,
    key: '6_close_seller',
  },
  closed: {
    display: '[你关闭了订单，钱款已原路退返]',
    title: '你关闭了订单，钱款已原路退返',
    button: '查看详情',
    redReminder: '交易关闭',
    needPush: false,
    key: '6_close_seller',
  },
  bargain: {
    display: '[卡片消息]',
    title: '我已小刀，待刀成',
    button: '去发货',
    needPush: true,
    key: '7_bargain_seller',
  },
};

/** The contentType 26 card JSON ("6"."3"."5") with the order id in both target URLs. */
export function tradeCardContent(kind: TradeKind, orderId: string, itemId: string): Record<string, unknown> {
  const c = TRADE_CARDS[kind];
  const buttonUrl =
    kind === 'unpaid'
      ? `fleamarket://adjust_price?flutter=true&bizOrderId=${orderId}&orderId=${orderId}`
      : `fleamarket://order_detail?orderId=${orderId}&role=seller`;
  return {
    contentType: 26,
    dxCard: {
      item: {
        main: {
          exContent: {
            title: c.title,
            desc: c.redReminder ?? '',
            button: { text: c.button, targetUrl: buttonUrl },
          },
          targetUrl: `fleamarket://order_detail?id=${orderId}&role=seller`,
          clickParam: { event: 'click', arg1: 'TradeCard', args: { orderId, itemId, status: c.key } },
        },
      },
      template: {
        name: 'idlefish_message_trade_chat_card',
        url: 'https://dinamicx.alibabausercontent.com/pub/idlefish_message_trade_chat_card/1667222052767/idlefish_message_trade_chat_card.zip',
        version: '1667222052767',
      },
    },
  };
}

/** The extension dict of a trade card: title text as reminderTitle, updateKey with the order id. */
export function tradeCardExt(o: {
  kind: TradeKind;
  senderId: string;
  sellerId: string;
  buyerNick: string;
  chatId: string;
  itemId: string;
  orderId: string;
  messageId: string;
}): Record<string, string> {
  const c = TRADE_CARDS[o.kind];
  const ext: Record<string, string> = {
    senderUserId: o.senderId,
    reminderTitle: c.title,
    reminderContent: c.display,
    reminderNotice: c.display,
    detailNotice: c.display,
    reminderUrl: reminderUrl({
      itemId: o.itemId,
      peerUserId: o.senderId,
      peerUserNick: o.buyerNick,
      chatId: o.chatId,
      messageId: o.messageId,
    }),
    bizTag: JSON.stringify({
      sourceId: 'C2C:trade',
      taskName: '交易消息',
      materialId: 'C2C:trade',
      taskId: 'C2C:trade',
    }),
    extJson: JSON.stringify({
      messageId: o.messageId,
      updateKey: `${o.chatId}:${o.orderId}:${c.key}`,
      contentType: 26,
      msgArgs: { orderId: o.orderId },
      quickReply: '0',
    }),
    receiver: o.sellerId,
    sessionType: '1',
    senderUserType: '0',
    closePushReceiver: 'false',
    closeUnreadNumber: 'false',
    updateHead: 'true',
  };
  if (c.redReminder) {
    ext.redReminder = c.redReminder;
    ext.redReminderStyle = '1';
  }
  return ext;
}

/** Junk the client must survive (malformedPush): text, then three broken sync pushes' bodies. */
export const MALFORMED = {
  text: 'this is not json {',
  invalidBase64: { bizType: 40, data: '%%% not base64 %%%', objectType: 40000 },
  // 0xc1 is the one byte msgpack never uses; follow with a truncated map.
  msgpackGarbage: {
    bizType: 40,
    data: Buffer.from([0xc1, 0x82, 0xa1, 0x31, 0xde, 0xff]).toString('base64'),
    objectType: 40000,
  },
};
