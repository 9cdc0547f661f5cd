// What the protocol codec hands to the rest of the workload. The codec (protocol/) turns raw
// lwp frames and sync-push entries into these; nothing outside protocol/ reads raw frames.

/** One decoded sync-push entry, classified. */
export type PushEntry =
  | { kind: 'chat'; message: ChatMessage }
  | { kind: 'system-notice'; chatType: unknown; raw: unknown } // base64 JSON with chatType
  | { kind: 'typing'; userId: string }
  | { kind: 'card-update'; raw: unknown }
  | { kind: 'red-reminder'; chatId?: string; userId?: string; redReminder: string; raw: unknown }
  | { kind: 'unknown'; raw: unknown };

/** A chat message (protocol 1.7 "is chat message"), user text or system/trade text. */
export interface ChatMessage {
  /** Stable id for de-duplication (bizTag/extJson messageId, else 1.3). */
  messageId: string;
  /** Conversation id without the @goofish suffix. */
  chatId: string;
  senderId: string;
  senderName: string;
  /** reminderContent: the text shown to the seller ("你好", "[我已付款，等待你发货]"). */
  text: string;
  /** Inner content type ("6"."3"."4"): 1 text, 2 image, 26 trade card ... */
  contentType: number;
  itemId?: string;
  /** Order id found in a trade card or URL (protocol 1.7), when any. */
  orderId?: string;
  /** Trade-card title (exContent.title), e.g. 我已小刀，待刀成 / 我发起了退款申请. */
  cardTitle?: string;
  /** Trade-card button text (exContent.button.text), e.g. 已同意. */
  cardButton?: string;
  redReminder?: string;
  /** Epoch ms ("1"."5"). */
  createdAt: number;
  /** sessionType "30" = group chat. */
  isGroup: boolean;
  /** needPush === "false" or a known system/trade string (protocol 1.9). */
  isSystem: boolean;
  /** The wire message id ("1"."3"), when it differs from `messageId` (bizTag/extJson id). */
  serverMessageId?: string;
  /** The decoded content JSON ("6"."3"."5"): {contentType, text:{text}} / image / dxCard. */
  content?: unknown;
  /**
   * Set by the session: the seller is the sender AND the message id is one of the session's own
   * sends, i.e. the echo of a bot reply (a seller message without it is a human takeover).
   */
  isOwnEcho?: boolean;
}

/** A sync-push entry the codec could not decode at all (counted as `malformed`). */
export interface MalformedEntry {
  kind: 'malformed';
  reason: string;
}

export type DecodedEntry = PushEntry | MalformedEntry;

export interface SentMessage {
  messageId: string;
}
