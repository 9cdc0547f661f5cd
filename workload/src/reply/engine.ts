import type { KeywordRule, ReplyConfig } from '../config/schema.js';
import type { ChatMessage } from '../protocol/types.js';
import { detectPriceIntent } from './bargaining.js';
import { fillPlaceholders, type PlaceholderValues } from './placeholders.js';

// The reply engine: a pure function from (message, conversation state, rules) to a decision.
// Everything with I/O (AI call, sending, storage) happens in the responder around it.

export interface ConversationState {
  takeoverUntil: Date | null;
  /** The account default was already sent in this chat (for oncePerConversation). */
  defaultSent: boolean;
  /** Price-intent messages seen in this chat before this one. */
  bargainRounds: number;
}

export interface DecisionContext {
  sellerId: string;
  itemTitle?: string;
  now: Date;
}

export type ReplySource = 'keyword' | 'ai' | 'item' | 'default' | 'bargain_refusal';

export type IgnoreReason =
  | 'system'
  | 'group'
  | 'own_echo'
  | 'takeover'
  | 'silent_rule'
  | 'no_rule'
  | 'default_already_sent'
  | 'not_text';

export type Decision =
  | { action: 'ignore'; reason: IgnoreReason; rule?: string }
  | { action: 'takeover'; until: Date }
  | { action: 'reply'; source: Exclude<ReplySource, 'ai'>; text: string; rule: string }
  | {
      action: 'ai';
      /** Price intent detected: the model gets the bargaining limits; this counts as a round. */
      bargaining: boolean;
      /** What to do when the AI fails or times out. */
      fallback: Decision;
    };

const NON_TEXT_TYPES = new Set([2, 3]); // image, audio: nothing sensible to match on

export function decide(
  message: ChatMessage,
  state: ConversationState,
  rules: ReplyConfig,
  ctx: DecisionContext,
): Decision {
  if (message.senderId === ctx.sellerId) {
    if (message.isOwnEcho) return { action: 'ignore', reason: 'own_echo' };
    return { action: 'takeover', until: new Date(ctx.now.getTime() + rules.manualTakeoverMinutes * 60_000) };
  }
  if (message.isGroup) return { action: 'ignore', reason: 'group' };
  if (message.isSystem) return { action: 'ignore', reason: 'system' };
  if (state.takeoverUntil && state.takeoverUntil.getTime() > ctx.now.getTime()) {
    return { action: 'ignore', reason: 'takeover' };
  }

  const values: PlaceholderValues = {
    buyer_name: message.senderName,
    buyer_id: message.senderId,
    message: message.text,
    item_id: message.itemId ?? '',
    item_title: ctx.itemTitle ?? '',
  };

  if (!NON_TEXT_TYPES.has(message.contentType)) {
    const rule = matchKeyword(message.text, message.itemId, rules.keywords);
    if (rule) {
      const name = ruleName(rule.rule, rule.index);
      if (rule.rule.reply.trim() === '') return { action: 'ignore', reason: 'silent_rule', rule: name };
      return {
        action: 'reply',
        source: 'keyword',
        text: fillPlaceholders(rule.rule.reply, values),
        rule: name,
      };
    }
  }

  const fallback = fallbackDecision(message, state, rules, values);
  const bargaining =
    rules.ai.enabled && !NON_TEXT_TYPES.has(message.contentType) && detectPriceIntent(message.text);
  if (
    rules.ai.enabled &&
    !NON_TEXT_TYPES.has(message.contentType) &&
    (bargaining || rules.ai.scope === 'all')
  ) {
    if (bargaining && state.bargainRounds >= rules.ai.bargaining.maxRounds) {
      return {
        action: 'reply',
        source: 'bargain_refusal',
        text: fillPlaceholders(rules.ai.bargaining.refusal, values),
        rule: `bargaining.maxRounds(${rules.ai.bargaining.maxRounds})`,
      };
    }
    return { action: 'ai', bargaining, fallback };
  }
  return fallback;
}

function fallbackDecision(
  message: ChatMessage,
  state: ConversationState,
  rules: ReplyConfig,
  values: PlaceholderValues,
): Decision {
  const itemDefault = message.itemId
    ? rules.itemDefaults.find((d) => d.itemId === message.itemId)
    : undefined;
  if (itemDefault) {
    if (itemDefault.text.trim() === '') {
      return { action: 'ignore', reason: 'silent_rule', rule: `itemDefaults[${itemDefault.itemId}]` };
    }
    return {
      action: 'reply',
      source: 'item',
      text: fillPlaceholders(itemDefault.text, values),
      rule: `itemDefaults[${itemDefault.itemId}]`,
    };
  }
  const def = rules.default;
  if (!def || def.text.trim() === '') return { action: 'ignore', reason: 'no_rule' };
  if (def.oncePerConversation && state.defaultSent) {
    return { action: 'ignore', reason: 'default_already_sent', rule: 'default' };
  }
  return { action: 'reply', source: 'default', text: fillPlaceholders(def.text, values), rule: 'default' };
}

/** Item-scoped rules before generic ones; within each group, config order. */
export function matchKeyword(
  text: string,
  itemId: string | undefined,
  rules: KeywordRule[],
): { rule: KeywordRule; index: number } | undefined {
  const indexed = rules.map((rule, index) => ({ rule, index }));
  const scoped = indexed.filter((r) => r.rule.itemIds && itemId && r.rule.itemIds.includes(itemId));
  const generic = indexed.filter((r) => !r.rule.itemIds || r.rule.itemIds.length === 0);
  return [...scoped, ...generic].find((r) => r.rule.match.some((k) => keywordMatches(text, k, r.rule.mode)));
}

const regexCache = new Map<string, RegExp>();

function keywordMatches(text: string, keyword: string, mode: KeywordRule['mode']): boolean {
  switch (mode) {
    case 'exact':
      return text.trim().toLowerCase() === keyword.trim().toLowerCase();
    case 'regex': {
      let re = regexCache.get(keyword);
      if (!re) {
        re = new RegExp(keyword, 'iu');
        regexCache.set(keyword, re);
      }
      return re.test(text);
    }
    default:
      return text.toLowerCase().includes(keyword.toLowerCase());
  }
}

function ruleName(rule: KeywordRule, index: number): string {
  return rule.name ?? `keywords[${index}](${rule.match.join('|')})`;
}
