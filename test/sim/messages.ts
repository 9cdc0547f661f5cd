// Builds the StoredMessage of each kind of chat event; pushes and history render from it.
import {
  chatExt,
  imageContent,
  type Pic,
  TRADE_CARDS,
  textContent,
  tradeCardContent,
  tradeCardExt,
} from './push.js';
import type { Chat, State, StoredMessage, TradeKind } from './state.js';

/** A text (or image) message in `chat`, written by the buyer or by the seller. */
export function chatMessage(
  state: State,
  chat: Chat,
  o: { from: 'buyer' | 'seller'; text?: string; pics?: Pic[]; createdAt?: number; messageId?: string },
): StoredMessage {
  const seller = state.seller(chat.sellerId);
  const messageId = o.messageId ?? state.newMessageId();
  const fromBuyer = o.from === 'buyer';
  const isImage = !!o.pics;
  const display = isImage ? '[图片]' : (o.text ?? '');
  const senderId = fromBuyer ? chat.buyerId : seller.unb;
  const senderNick = fromBuyer ? chat.buyerNick : seller.nick;
  return {
    messageId,
    chatId: chat.chatId,
    senderId,
    senderNick,
    createdAt: o.createdAt ?? Date.now(),
    innerType: isImage ? 2 : 1,
    display,
    content: isImage ? imageContent(o.pics ?? []) : textContent(display),
    ext: chatExt({
      senderId,
      senderNick,
      receiverId: fromBuyer ? seller.unb : chat.buyerId,
      // reminderUrl always names the other side from the seller's point of view.
      peerUserId: chat.buyerId,
      peerUserNick: chat.buyerNick,
      chatId: chat.chatId,
      itemId: chat.itemId,
      messageId,
      text: display,
      contentType: isImage ? 2 : 1,
      sessionType: chat.sessionType,
    }),
    needPush: true,
  };
}

/** A trade / system card (protocol 1.7 card JSON, 1.9 strings), sent in the buyer's name. */
export function tradeMessage(state: State, chat: Chat, kind: TradeKind, orderId: string): StoredMessage {
  const messageId = state.newMessageId();
  const itemId = chat.itemId ?? '';
  const c = TRADE_CARDS[kind];
  return {
    messageId,
    chatId: chat.chatId,
    senderId: chat.buyerId,
    senderNick: chat.buyerNick,
    createdAt: Date.now(),
    innerType: 26,
    display: c.display,
    content: tradeCardContent(kind, orderId, itemId),
    ext: tradeCardExt({
      kind,
      senderId: chat.buyerId,
      sellerId: chat.sellerId,
      buyerNick: chat.buyerNick,
      chatId: chat.chatId,
      itemId,
      orderId,
      messageId,
    }),
    needPush: c.needPush,
  };
}
