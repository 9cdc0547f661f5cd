import { setTimeout as sleep } from 'node:timers/promises';
import type { AiClient } from '../ai/client.js';
import { AiError } from '../ai/client.js';
import { buildPrompt } from '../ai/prompt.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ChatMessage } from '../protocol/types.js';
import { MessageLog } from '../store/message-log.js';
import type { ItemInfo, Store } from '../store/types.js';
import {
  bargainingInstructions,
  breaksFloor,
  detectPriceIntent,
  parsePrice,
  priceFloor,
} from './bargaining.js';
import { type Decision, decide } from './engine.js';
import { RateLimiter } from './rate-limit.js';

// The I/O around the pure reply engine: logging the conversation, per-chat debounce and
// ordering, manual takeover, the AI call, human-like delay, the send rate limit, metrics.

export interface ResponderDeps {
  config: Config;
  sellerId: string;
  send: (chatId: string, toUserId: string, text: string) => Promise<{ messageId: string }>;
  store: Store;
  ai?: AiClient;
  itemInfo?: (itemId: string) => Promise<ItemInfo | undefined>;
  metrics: Metrics;
  log: Logger;
  random?: () => number;
}

const ECHO_WINDOW_MS = 30_000;
const TAKEOVER_CACHE_SIZE = 50_000;

interface Pending {
  message: ChatMessage;
  /** performance.now() when the frame arrived. */
  receivedAt: number;
  /** Time spent before the debounce wait (recording). */
  activeMs: number;
}

export class Responder {
  private readonly accountId: string;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; pending: Pending }>();
  private readonly limiter: RateLimiter;
  private readonly messageLog: MessageLog;
  /** Takeover windows by chat (write-through; this process alone holds the account). */
  private readonly takeovers = new Map<string, Date | null>();
  private readonly random: () => number;
  private closing = false;
  /** Texts sent per chat in the last seconds: an echo the session could not flag is still ours. */
  private readonly recentSends = new Map<string, { text: string; at: number }[]>();

  constructor(private readonly deps: ResponderDeps) {
    this.accountId = deps.config.account.id;
    this.limiter = new RateLimiter(deps.config.reply.rateLimit.perMinute);
    // PGlite runs its SQL on this thread: fewer, larger batches keep it from stalling replies.
    this.messageLog = new MessageLog(deps.store, deps.log, {
      flushMs: deps.store.sql.kind === 'pglite' ? 250 : 20,
    });
    this.random = deps.random ?? Math.random;
  }

  /** Entry point for every chat message the session emits. */
  handle(message: ChatMessage, receivedAt = performance.now()): void {
    this.enqueue(message.chatId, () => this.receive(message, receivedAt));
  }

  /** SIGTERM: answer what is waiting in debounce now, and wait for in-flight replies. */
  async drain(timeoutMs = 10_000): Promise<void> {
    this.closing = true;
    for (const [chatId, { timer, pending }] of this.timers) {
      clearTimeout(timer);
      this.timers.delete(chatId);
      this.enqueue(chatId, () => this.respond(pending, performance.now()));
    }
    const all = Promise.allSettled([...this.chains.values()]);
    await Promise.race([all, sleep(timeoutMs, undefined, { ref: false })]);
    await this.messageLog.flush();
  }

  /** Resolves once nothing is waiting in debounce or in flight (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.timers.size > 0 || this.chains.size > 0) {
      if (this.chains.size > 0) await Promise.allSettled([...this.chains.values()]);
      else await sleep(5);
    }
    await this.messageLog.flush();
  }

  private async takeoverUntil(chatId: string): Promise<Date | null> {
    const cached = this.takeovers.get(chatId);
    if (cached !== undefined) return cached;
    const until = await this.deps.store.takeoverUntil(this.accountId, chatId);
    this.rememberTakeover(chatId, until);
    return until;
  }

  private rememberTakeover(chatId: string, until: Date | null): void {
    if (this.takeovers.size >= TAKEOVER_CACHE_SIZE) {
      const oldest = this.takeovers.keys().next().value;
      if (oldest !== undefined) this.takeovers.delete(oldest);
    }
    this.takeovers.delete(chatId);
    this.takeovers.set(chatId, until);
  }

  private enqueue(chatId: string, task: () => Promise<void>): void {
    const prev = this.chains.get(chatId) ?? Promise.resolve();
    const next = prev.then(task).catch((err: Error) => {
      this.deps.log.error({ chatId, err }, 'reply pipeline failed');
      this.deps.metrics.replyFailures.inc({ reason: 'internal' });
    });
    this.chains.set(chatId, next);
    void next.then(() => {
      if (this.chains.get(chatId) === next) this.chains.delete(chatId);
    });
  }

  private async receive(message: ChatMessage, receivedAt: number): Promise<void> {
    const { log } = this.deps;
    const own = message.senderId === this.deps.sellerId;
    if (own && !message.isOwnEcho && this.wasSentByUs(message.chatId, message.text)) {
      message = { ...message, isOwnEcho: true };
    }
    this.messageLog.append({
      accountId: this.accountId,
      chatId: message.chatId,
      messageId: message.messageId,
      direction: own ? 'out' : 'in',
      senderId: message.senderId,
      text: message.text,
      ...(message.itemId ? { itemId: message.itemId } : {}),
      ...(own ? { source: message.isOwnEcho ? 'echo' : 'manual' } : {}),
      at: new Date(message.createdAt),
    });
    const pending: Pending = { message, receivedAt, activeMs: performance.now() - receivedAt };
    const debounceMs = this.deps.config.reply.debounceMs;
    // Own messages and system strings need no debounce: decide at once.
    if (own || message.isSystem || message.isGroup || debounceMs === 0 || this.closing) {
      return this.respond(pending, performance.now());
    }
    const existing = this.timers.get(message.chatId);
    if (existing) {
      clearTimeout(existing.timer);
      log.debug({ chatId: message.chatId }, 'debounce: newer message supersedes the previous one');
    }
    const timer = setTimeout(() => {
      this.timers.delete(message.chatId);
      this.enqueue(message.chatId, () => this.respond(pending, performance.now()));
    }, debounceMs);
    this.timers.set(message.chatId, { timer, pending });
  }

  private async respond(pending: Pending, startedAt: number): Promise<void> {
    const { store, config, log } = this.deps;
    const m = pending.message;
    const aiOn = config.reply.ai.enabled && !!this.deps.ai;
    const priceIntent = aiOn && m.senderId !== this.deps.sellerId && !m.isSystem && detectPriceIntent(m.text);
    // Only a buyer's own chat message can be held back by a takeover: for the seller's messages,
    // system strings (every trade card) and groups `decide` never reads it, so no lookup.
    const buyerChat = m.senderId !== this.deps.sellerId && !m.isSystem && !m.isGroup;
    const [takeoverUntil, rounds, item] = await Promise.all([
      buyerChat ? this.takeoverUntil(m.chatId) : Promise.resolve(null),
      priceIntent ? store.bumpBargainRound(this.accountId, m.chatId) : Promise.resolve(0),
      m.itemId && this.deps.itemInfo && m.senderId !== this.deps.sellerId && !m.isSystem
        ? this.deps.itemInfo(m.itemId).catch(() => undefined)
        : Promise.resolve(undefined),
    ]);
    const rules = aiOn ? config.reply : { ...config.reply, ai: { ...config.reply.ai, enabled: false } };
    const decision = decide(
      m,
      { takeoverUntil, defaultSent: false, bargainRounds: Math.max(0, rounds - 1) },
      rules,
      { sellerId: this.deps.sellerId, ...(item ? { itemTitle: item.title } : {}), now: new Date() },
    );
    const ctx = { chatId: m.chatId, messageId: m.messageId, buyerId: m.senderId, itemId: m.itemId };
    await this.execute(decision, pending, startedAt, { item, round: rounds, ctx });
    log.trace?.({ ...ctx }, 'decision done');
  }

  private async execute(
    decision: Decision,
    pending: Pending,
    startedAt: number,
    extra: { item: ItemInfo | undefined; round: number; ctx: Record<string, unknown> },
  ): Promise<void> {
    const { store, log, metrics, config } = this.deps;
    const m = pending.message;
    switch (decision.action) {
      case 'ignore': {
        metrics.messagesReceived.inc({ kind: `ignored_${decision.reason}` });
        log.info(
          { ...extra.ctx, decision: 'ignore', reason: decision.reason, rule: decision.rule },
          'no reply',
        );
        return;
      }
      case 'takeover': {
        await store.setTakeover(this.accountId, m.chatId, decision.until);
        this.rememberTakeover(m.chatId, decision.until);
        log.info(
          { ...extra.ctx, decision: 'takeover', until: decision.until.toISOString() },
          'seller replied by hand: bot paused in this chat',
        );
        return;
      }
      case 'reply': {
        if (decision.source === 'default' && config.reply.default?.oncePerConversation) {
          const first = await store.markOnce(this.accountId, m.chatId, 'default');
          if (!first) {
            log.info({ ...extra.ctx, decision: 'ignore', reason: 'default_already_sent' }, 'no reply');
            return;
          }
        }
        await this.send(m, decision.text, decision.source, decision.rule, pending, startedAt, extra.ctx);
        return;
      }
      case 'ai': {
        const answer = await this.askAi(m, decision.bargaining, extra.item, extra.round);
        if (answer === undefined) {
          log.warn({ ...extra.ctx }, 'AI unavailable: using the fallback rule');
          return this.execute(decision.fallback, pending, startedAt, extra);
        }
        await this.send(m, answer.text, answer.source, answer.rule, pending, startedAt, extra.ctx);
        return;
      }
    }
  }

  private async askAi(
    m: ChatMessage,
    bargaining: boolean,
    item: ItemInfo | undefined,
    round: number,
  ): Promise<{ text: string; source: 'ai' | 'bargain_refusal'; rule: string } | undefined> {
    const { config, store, metrics, log, ai } = this.deps;
    if (!ai) return undefined;
    const limits = config.reply.ai.bargaining;
    const listPrice = parsePrice(item?.price);
    const floor = bargaining ? priceFloor(listPrice, limits) : undefined;
    await this.messageLog.flush();
    const history = await store.recentTurns(this.accountId, m.chatId, config.reply.ai.maxTurns);
    const messages = buildPrompt({
      systemPrompt: config.reply.ai.systemPrompt,
      ...(item ? { item } : {}),
      ...(bargaining
        ? { bargainingInstructions: bargainingInstructions(listPrice, floor, round, limits.maxRounds) }
        : {}),
      history,
      message: m.text,
    });
    const end = metrics.aiRequestDuration.startTimer();
    try {
      const text = await ai.complete(messages);
      end();
      if (bargaining && breaksFloor(text, floor)) {
        log.warn(
          { chatId: m.chatId, floor },
          'AI offered a price under the floor: sending the refusal instead',
        );
        return { text: limits.refusal, source: 'bargain_refusal', rule: `bargaining.floor(${floor})` };
      }
      return { text, source: 'ai', rule: bargaining ? `ai(bargaining round ${round})` : 'ai' };
    } catch (err) {
      end();
      const reason = err instanceof AiError ? err.reason : 'internal';
      metrics.aiErrors.inc({ reason });
      log.warn({ chatId: m.chatId, reason, err: err as Error }, 'AI request failed');
      return undefined;
    }
  }

  private async send(
    m: ChatMessage,
    text: string,
    source: string,
    rule: string,
    pending: Pending,
    startedAt: number,
    ctx: Record<string, unknown>,
  ): Promise<void> {
    const { config, metrics, log } = this.deps;
    const { minMs, maxMs } = config.reply.delay;
    const delayMs = this.closing ? 0 : Math.round(minMs + this.random() * (maxMs - minMs));
    const waitMs = this.limiter.take();
    const deliberate = delayMs + waitMs;
    if (deliberate > 0) {
      await sleep(deliberate);
      // The seller may have taken over while we waited.
      const until = await this.takeoverUntil(m.chatId);
      if (until && until.getTime() > Date.now()) {
        log.info(
          { ...ctx, decision: 'ignore', reason: 'takeover' },
          'seller took over during the delay: not sending',
        );
        return;
      }
    }
    this.rememberSend(m.chatId, text);
    let messageId: string;
    try {
      ({ messageId } = await this.deps.send(m.chatId, m.senderId, text));
    } catch (err) {
      const reason = (err as { reason?: string }).reason ?? (err as Error).name ?? 'error';
      metrics.replyFailures.inc({ reason: String(reason) });
      log.warn({ ...ctx, source, rule, err: err as Error }, 'reply not delivered');
      return;
    }
    const latencyMs = pending.activeMs + (performance.now() - startedAt) - deliberate;
    metrics.replyLatency.observe(Math.max(0, latencyMs) / 1000);
    metrics.repliesSent.inc({ source });
    log.info(
      { ...ctx, decision: 'reply', source, rule, latencyMs: Math.round(latencyMs * 100) / 100 },
      'replied',
    );
    this.messageLog.append({
      accountId: this.accountId,
      chatId: m.chatId,
      messageId,
      direction: 'out',
      senderId: this.deps.sellerId,
      text,
      ...(m.itemId ? { itemId: m.itemId } : {}),
      source,
      at: new Date(),
    });
  }

  private rememberSend(chatId: string, text: string): void {
    const now = Date.now();
    const list = (this.recentSends.get(chatId) ?? []).filter((s) => now - s.at < ECHO_WINDOW_MS);
    list.push({ text, at: now });
    this.recentSends.set(chatId, list);
  }

  private wasSentByUs(chatId: string, text: string): boolean {
    const now = Date.now();
    const list = this.recentSends.get(chatId);
    if (!list) return false;
    const i = list.findIndex((s) => s.text === text && now - s.at < ECHO_WINDOW_MS);
    if (i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.recentSends.delete(chatId);
    return true;
  }
}
