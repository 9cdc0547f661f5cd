import type { Config, DeliveryRule } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ConversationPage, HistoryMessage, HistoryPage } from '../protocol/frames.js';
import {
  BARGAIN_CARD_TEXT,
  BARGAIN_CARD_TITLE,
  cardInfo,
  isDeliveryTrigger,
  ORDER_STATUS_BY_TEXT,
  type OrderStatus,
  orderStatusOf,
  RED_REMINDER_STATUS,
} from '../protocol/orders.js';
import type { ChatMessage, PushEntry } from '../protocol/types.js';
import { MtopError, NotRegisteredError, SendRejectedError } from '../session/errors.js';
import { type CrashHook, noCrash } from './crash.js';
import type { Notifier } from './notify.js';
import type { OrderDetailsSource } from './order-details.js';
import { formatSpec, matchRule, parseSpec } from './rules.js';
import { fetchHttpSource, SourceError, textSourceValue } from './sources.js';
import { planOrder, type Step } from './state.js';
import type { DeliveryStore, OrderRow, UnitRow } from './store.js';
import { type DeliveryValues, renderMessage } from './template.js';

// The I/O around the pure delivery state machine: turns trade messages into order facts,
// runs each paid order's next step (plan → execute → plan ...), resumes unfinished orders on
// start, wakes orders waiting for stock when codes arrive. Codes (unit payloads) go only to
// the IM; logs, metrics and status carry order ids, counts and reasons.

export const API_CONSIGN = 'mtop.taobao.idle.logistic.consign.dummy';
export const API_FREE_SHIPPING = 'mtop.idle.groupon.activity.seller.freeshipping';

/** The IM as the delivery needs it (XianyuSession satisfies it). */
export interface DeliveryIm {
  sendText(chatId: string, toUserId: string, text: string): Promise<{ messageId: string }>;
  sendImage(
    chatId: string,
    toUserId: string,
    image: { url: string; width?: number; height?: number },
  ): Promise<{ messageId: string }>;
  listUserMessages(chatId: string, cursor?: number, limit?: number): Promise<HistoryPage>;
  listConversations(startTs: number, limit?: number): Promise<ConversationPage>;
  status(): { state: string };
}

export interface DeliveryDeps {
  config: Pick<Config, 'account' | 'delivery'>;
  sellerId: string;
  store: DeliveryStore;
  im: DeliveryIm;
  mtop: { call<T = unknown>(api: string, version: string, data: unknown): Promise<T> };
  itemInfo: (itemId: string) => Promise<{ title: string; description?: string } | undefined>;
  details: OrderDetailsSource;
  notifier: Notifier;
  metrics: Metrics;
  log: Logger;
  crash?: CrashHook;
}

const MAX_STEPS = 64;
const HISTORY_PAGES = 10;
const SEND_RETRY_MS = 2_000;

export class DeliveryService {
  private readonly accountId: string;
  private readonly cfg: Config['delivery'];
  private readonly log: Logger;
  private readonly crash: CrashHook;
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private readonly queue = new Set<string>();
  /** Units claimed by this process and never tried: sent without a history lookup. */
  private readonly fresh = new Set<string>();
  /** performance.now() when the paid message arrived (paid → sent latency). */
  private readonly paidSeen = new Map<string, number>();
  private readonly buyerNames = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private scanTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly d: DeliveryDeps) {
    this.accountId = d.config.account.id;
    this.cfg = d.config.delivery;
    this.log = d.log.child({ component: 'delivery' });
    this.crash = d.crash ?? noCrash;
  }

  // ---- inbound ----

  /** Every chat message of the session: trade cards become order facts, paid orders get delivered. */
  onMessage(m: ChatMessage): void {
    if (m.isGroup) return;
    if (!m.isSystem && m.senderId !== this.d.sellerId && m.senderName)
      this.rememberName(m.chatId, m.senderName);
    const trigger = isDeliveryTrigger(m.text, m.cardTitle);
    let status = orderStatusOf(m);
    const bargain = m.text === BARGAIN_CARD_TEXT && m.cardTitle === BARGAIN_CARD_TITLE;
    if (!status && trigger) status = 'pending_ship';
    if (!status && !m.orderId) return;
    if (!m.orderId) {
      if (trigger) {
        this.log.warn(
          { chatId: m.chatId, messageId: m.messageId },
          'paid message without an order id: cannot deliver',
        );
        this.d.metrics.deliveries.inc({ result: 'no_order_id' });
      }
      return;
    }
    if (trigger) this.paidSeen.set(m.orderId, performance.now());
    void this.applyEvent({
      orderId: m.orderId,
      chatId: m.chatId,
      buyerId: m.senderId !== this.d.sellerId ? m.senderId : undefined,
      buyerName: this.buyerNames.get(m.chatId),
      itemId: m.itemId,
      status,
      bargain,
      at: new Date(m.createdAt),
    });
  }

  /**
   * A seller message the session could not recognise as its own echo (e.g. the echo of a send by
   * a process that died, replayed to this one): is it one of our deliveries? Then it is no human
   * takeover.
   */
  async isDeliveryEcho(m: ChatMessage): Promise<boolean> {
    if (m.senderId !== this.d.sellerId || m.isOwnEcho) return false;
    const ids = [m.messageId, ...(m.serverMessageId ? [m.serverMessageId] : [])];
    return this.d.store.isDeliveryMessage(this.accountId, m.chatId, ids, m.text);
  }

  /** Red reminders without a chat message (交易关闭 → cancelled). */
  onPush(e: PushEntry): void {
    if (e.kind !== 'red-reminder') return;
    const status = RED_REMINDER_STATUS.get(e.redReminder);
    if (!status || !e.chatId) return;
    void this.d.store.latestOrderOfChat(this.accountId, e.chatId).then(
      (o) => o && this.applyEvent({ orderId: o.orderId, status, at: new Date() }),
      (err: Error) => this.log.error({ err }, 'red reminder: order lookup failed'),
    );
  }

  /** Per order, events are applied in the order they arrived. */
  private applyEvent(ev: Parameters<DeliveryStore['applyOrderEvent']>[1]): Promise<void> {
    const prev = this.eventChains.get(ev.orderId) ?? Promise.resolve();
    const next = prev.then(() => this.applyEventNow(ev));
    this.eventChains.set(ev.orderId, next);
    void next.then(() => {
      if (this.eventChains.get(ev.orderId) === next) this.eventChains.delete(ev.orderId);
    });
    return next;
  }
  private readonly eventChains = new Map<string, Promise<void>>();
  /** Orders just created by a paid card: the first step needs no read. */
  private readonly known = new Map<string, OrderRow>();

  private async applyEventNow(ev: Parameters<DeliveryStore['applyOrderEvent']>[1]): Promise<void> {
    try {
      const r = await this.d.store.applyOrderEvent(this.accountId, ev);
      if (r.changed) {
        this.log.info(
          { orderId: ev.orderId, status: r.order.status, delivery: r.order.deliveryState },
          'order status',
        );
      }
      const open = ['pending', 'waiting', 'delivering'].includes(r.order.deliveryState);
      this.known.delete(ev.orderId); // any later event makes an earlier copy stale
      if (r.becamePayable && r.created) this.known.set(ev.orderId, r.order); // no units yet: skip a read
      if (r.becamePayable || (open && (r.changed || ev.status === 'pending_ship'))) this.kick(ev.orderId);
    } catch (err) {
      this.log.error({ err, orderId: ev.orderId }, 'order event not recorded');
    }
  }

  private rememberName(chatId: string, name: string): void {
    if (this.buyerNames.size >= 50_000) this.buyerNames.clear();
    this.buyerNames.set(chatId, name);
  }

  // ---- lifecycle ----

  /** Resumes unfinished orders, sweeps for missed paid cards, and starts the periodic re-check. */
  start(): void {
    if (this.started || !this.cfg.enabled) return;
    this.started = true;
    const scan = () => {
      if (this.stopped) return;
      void this.scan().finally(() => {
        if (!this.stopped) this.scanTimer = setTimeout(scan, Math.min(this.cfg.retryIntervalMs, 5_000));
      });
    };
    scan();
  }

  /** Called when the IM (re)registers: what waited for the link goes on, missed cards are swept. */
  onConnected(): void {
    if (!this.started || this.stopped) return;
    void this.sweep().then(() => this.scan());
  }

  /** Due orders and human redeliver requests, from the database. */
  async scan(): Promise<void> {
    try {
      for (const id of await this.d.store.openOrders(this.accountId)) this.kick(id);
      for (const id of await this.d.store.redeliverRequests(this.accountId)) await this.redeliver(id);
      await this.updateWaitingGauge();
    } catch (err) {
      if (!this.stopped) this.log.error({ err }, 'delivery scan failed');
    }
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.scanTimer);
    for (const t of this.timers) clearTimeout(t);
    for (const t of this.stockTimers.values()) clearTimeout(t);
    this.queue.clear();
    const all = Promise.allSettled([...this.running.values()]);
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await this.d.details.close();
  }

  /** Resolves once no order is being worked on (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.queue.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  status(): Record<string, unknown> {
    return { enabled: this.cfg.enabled, inFlight: this.running.size, queued: this.queue.size };
  }

  /** Orders whose stock arrived: due at once. */
  async stockAdded(pool: string): Promise<void> {
    const n = await this.d.store.wakeWaiting(this.accountId, `out_of_stock:${pool}`);
    if (n) this.log.info({ pool, orders: n }, 'stock added: waiting orders resume');
    await this.scan();
  }

  // ---- scheduling ----

  kick(orderId: string): void {
    if (this.stopped || !this.cfg.enabled) return;
    if (this.running.has(orderId)) {
      this.again.add(orderId);
      return;
    }
    if (this.running.size >= this.cfg.concurrency) {
      this.queue.add(orderId);
      return;
    }
    let settled = false;
    const p = this.process(orderId)
      .then((done) => {
        settled = done;
      })
      .catch((err: Error) => this.log.error({ err, orderId }, 'delivery step failed'))
      .finally(() => {
        this.running.delete(orderId);
        // An event during the run (e.g. the [你已发货] card our own consign call caused) asks for
        // another look, unless the run ended delivered/confirmed: no event reopens that.
        if (this.again.delete(orderId) && !settled) this.kick(orderId);
        const next = this.queue.values().next();
        if (!next.done) {
          this.queue.delete(next.value);
          this.kick(next.value);
        }
      });
    this.running.set(orderId, p);
  }

  private later(orderId: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.kick(orderId);
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  // ---- the loop: plan, execute, plan again ----

  /** Runs the order's steps; true when it ended delivered or confirmed (nothing can follow). */
  private async process(orderId: string): Promise<boolean> {
    // Read once; steps keep the copy current. An event for this order while it runs (kick sets
    // `again`) means the copy may be stale: read again before the next step.
    let ctx: Ctx | undefined;
    for (let i = 0; i < MAX_STEPS && !this.stopped; i++) {
      const known = i === 0 ? this.known.get(orderId) : undefined;
      this.known.delete(orderId);
      if (known && !this.again.has(orderId)) ctx = { order: known, units: [], dirty: false };
      else if (!ctx || ctx.dirty || this.again.delete(orderId)) {
        const order = await this.d.store.getOrder(this.accountId, orderId);
        if (!order) return false;
        ctx = { order, units: await this.d.store.getUnits(this.accountId, orderId), dirty: false };
      }
      const { order, units } = ctx;
      const step = planOrder(
        {
          status: order.status,
          deliveryState: order.deliveryState,
          bargain: order.bargain,
          freeShippingDone: order.freeShippingAt !== null,
          detailsKnown: order.detailsAt !== null,
          quantity: order.quantity,
          confirmWanted: order.confirmWanted ?? undefined,
        },
        units,
        { freeShipping: this.cfg.freeShipping, wantDetails: this.d.details.kind !== 'none' },
      );
      const goOn = await this.execute(ctx, step);
      if (!goOn) return ctx.order.deliveryState === 'confirmed' || ctx.order.deliveryState === 'delivered';
    }
    return false;
  }

  /** Runs one step; false when the order is done or parked for now. */
  private async execute(ctx: Ctx, step: Step): Promise<boolean> {
    const { order, units } = ctx;
    const { orderId } = order;
    switch (step.kind) {
      case 'idle':
        return false;
      case 'finish': {
        await this.finishAs(order, step.state);
        this.log.info(
          { orderId, delivery: step.state, units: units.length, rule: order.rule },
          'order delivery finished',
        );
        return false;
      }
      case 'release':
        ctx.dirty = true;
        return this.release(
          order,
          units.filter((u) => step.units.includes(u.unit)),
        );
      case 'free_shipping':
        ctx.dirty = true;
        return this.freeShipping(order);
      case 'details':
        ctx.dirty = true;
        return this.details(order);
      case 'claim':
        return this.claim(ctx, step.units);
      case 'send': {
        const u = units.find((x) => x.unit === step.unit)!;
        return this.send(ctx, u);
      }
      case 'confirm':
        ctx.dirty = true;
        return this.confirm(order);
    }
  }

  /** Records the end of the order's delivery, in the database and in the run's copy. */
  private async finishAs(order: OrderRow, state: 'delivered' | 'confirmed' | 'cancelled'): Promise<void> {
    await this.d.store.finish(this.accountId, order.orderId, state);
    order.deliveryState = state;
    this.d.metrics.deliveries.inc({ result: state });
  }

  private async park(
    order: OrderRow,
    reason: string,
    retryMs: number | null,
    notify?: () => void,
  ): Promise<false> {
    if (order.waitingReason !== reason) {
      this.log.warn({ orderId: order.orderId, reason }, 'order waiting');
      notify?.();
    }
    await this.d.store.setWaiting(
      this.accountId,
      order.orderId,
      reason,
      retryMs === null ? null : new Date(Date.now() + retryMs),
    );
    if (retryMs !== null) this.later(order.orderId, retryMs + 10);
    await this.updateWaitingGauge().catch(() => {});
    return false;
  }

  private async freeShipping(order: OrderRow): Promise<boolean> {
    try {
      await this.d.mtop.call(API_FREE_SHIPPING, '1.0', {
        bizOrderId: order.orderId,
        itemId: Number(order.itemId),
        buyerId: Number(order.buyerId),
      });
      await this.d.store.setFreeShippingDone(this.accountId, order.orderId);
      this.log.info({ orderId: order.orderId }, 'bargain order: free shipping released');
      return true;
    } catch (err) {
      this.log.warn({ err, orderId: order.orderId }, 'free-shipping call failed');
      return this.park(order, 'free_shipping_failed', this.cfg.retryIntervalMs);
    }
  }

  private async details(order: OrderRow): Promise<boolean> {
    try {
      const det = await this.d.details.get(order.orderId);
      await this.d.store.setDetails(this.accountId, order.orderId, {
        quantity: det.quantity,
        spec: det.spec.length ? formatSpec(det.spec) : null,
        amount: det.amount ?? null,
      });
      return true;
    } catch (err) {
      this.log.warn({ err, orderId: order.orderId }, 'order details not available');
      return this.park(order, 'details_failed', this.cfg.retryIntervalMs);
    }
  }

  private values(order: OrderRow, title: string | undefined): DeliveryValues {
    return {
      order_id: order.orderId,
      item_id: order.itemId ?? '',
      item_title: title ?? '',
      quantity: order.quantity,
      buyer_name: order.buyerName ?? this.buyerNames.get(order.chatId ?? '') ?? '买家',
      buyer_id: order.buyerId ?? '',
      spec: order.spec ?? '',
      unit: 1,
    };
  }

  /** The rule of an order (fetching the item text only when keyword rules need it). */
  async chooseRule(
    order: OrderRow,
  ): Promise<ReturnType<typeof matchRule<DeliveryRule>> & { title?: string }> {
    const facts = { itemId: order.itemId ?? undefined, spec: parseSpec(order.spec) };
    let r = matchRule(this.cfg.rules, facts);
    let title: string | undefined;
    if (r.kind === 'needs_item_text' && order.itemId) {
      const item = await this.d.itemInfo(order.itemId);
      if (item) {
        title = item.title;
        r = matchRule(this.cfg.rules, { ...facts, title: item.title, description: item.description ?? '' });
      }
    }
    return { ...r, ...(title !== undefined ? { title } : {}) };
  }

  private async claim(ctx: Ctx, unitsToClaim: number[]): Promise<boolean> {
    const { order } = ctx;
    const { orderId } = order;
    if (!order.chatId || !order.buyerId) return this.park(order, 'no_chat', null);
    const m = await this.chooseRule(order);
    if (m.kind === 'ambiguous') {
      return this.park(order, 'ambiguous_rules', this.cfg.retryIntervalMs, () =>
        this.d.notifier.notify({ kind: 'ambiguous_rules', orderId, rules: m.rules.map((r) => r.name) }),
      );
    }
    if (m.kind !== 'matched') {
      return this.park(order, 'no_rule', this.cfg.retryIntervalMs, () =>
        this.d.notifier.notify({ kind: 'no_rule', orderId, itemId: order.itemId, why: m.why }),
      );
    }
    const rule = m.rule;
    let title = m.title;
    if (title === undefined && /\{item_title\}/.test(rule.message) && order.itemId) {
      title = (await this.d.itemInfo(order.itemId).catch(() => undefined))?.title;
    }
    const base = this.values(order, title);
    const src = rule.source;
    const sendAfter = new Date((order.paidAt ?? new Date()).getTime() + rule.delayMs);
    const confirmWanted = rule.confirmShipment ?? this.cfg.confirmShipment;
    const common = {
      accountId: this.accountId,
      orderId,
      rule: rule.name,
      confirmWanted,
      units: unitsToClaim,
      sendAfter,
    };
    let result: Awaited<ReturnType<DeliveryStore['claim']>>;
    if (src.type === 'pool') {
      result = await this.d.store.claim({
        ...common,
        kind: 'text',
        pool: src.pool,
        render: (u, code) => renderMessage(rule.message, { ...base, unit: u + 1, code: code ?? '' }),
      });
      if (!result.ok) {
        const free = result.free;
        return this.park(order, `out_of_stock:${src.pool}`, this.cfg.retryIntervalMs, () =>
          this.d.notifier.notify({
            kind: 'out_of_stock',
            pool: src.pool,
            orderId,
            needed: unitsToClaim.length,
            free,
          }),
        );
      }
    } else if (src.type === 'image') {
      const payload = JSON.stringify({ url: src.url, width: src.width, height: src.height });
      result = await this.d.store.claim({ ...common, kind: 'image', render: () => payload });
    } else {
      const vals = new Map<number, string>();
      for (const u of unitsToClaim) {
        const v = { ...base, unit: u + 1 };
        if (src.type === 'text') vals.set(u, textSourceValue(src.text, v));
        else {
          try {
            vals.set(u, (await fetchHttpSource(src, v)).value);
          } catch (err) {
            const reason = err instanceof SourceError ? err.message : String(err);
            return this.park(order, 'source_failed', this.cfg.retryIntervalMs, () =>
              this.d.notifier.notify({ kind: 'delivery_failed', orderId, reason }),
            );
          }
        }
      }
      result = await this.d.store.claim({
        ...common,
        kind: 'text',
        render: (u) => renderMessage(rule.message, { ...base, unit: u + 1, code: vals.get(u) ?? '' }),
      });
    }
    if (!result.ok) return false;
    for (const u of result.units) this.fresh.add(`${orderId}/${u.unit}`);
    ctx.units = [...ctx.units, ...result.units].sort((a, b) => a.unit - b.unit);
    order.deliveryState = 'delivering';
    order.rule = rule.name;
    order.confirmWanted = confirmWanted;
    order.waitingReason = null;
    this.log.info({ orderId, rule: rule.name, units: result.units.length, why: m.why }, 'units claimed');
    this.crash('after-claim');
    if (src.type === 'pool') {
      this.d.metrics.stock.dec({ pool: src.pool }, result.units.length); // recounted within a second
      this.stockSoon(src.pool);
    }
    return true;
  }

  private async send(ctx: Ctx, u: UnitRow): Promise<boolean> {
    const { order } = ctx;
    const { orderId } = order;
    const total = ctx.units.length;
    const wait = u.sendAfter.getTime() - Date.now();
    if (wait > 0) {
      this.later(orderId, wait);
      return false;
    }
    if (this.d.im.status().state !== 'registered') return false; // onConnected() resumes it
    const key = `${orderId}/${u.unit}`;
    if (!this.fresh.has(key)) {
      // Claimed by an earlier process or attempt: it may have been sent just before a crash.
      let found: string | undefined;
      try {
        found = await this.findInHistory(order, u);
      } catch (err) {
        this.log.warn({ err, orderId }, 'history lookup failed; will retry');
        this.later(orderId, SEND_RETRY_MS);
        return false;
      }
      if (found) {
        await this.d.store.markSent(this.accountId, orderId, u.unit, found);
        u.state = 'sent';
        this.d.metrics.deliveries.inc({ result: 'found_in_history' });
        this.log.info(
          { orderId, unit: u.unit, messageId: found },
          'unit was already sent: recorded from the history',
        );
        return true;
      }
    }
    this.fresh.delete(key); // from now on a retry looks the message up first
    if (u.unit > 0 && this.cfg.unitIntervalMs > 0)
      await new Promise((r) => setTimeout(r, this.cfg.unitIntervalMs));
    let messageId: string;
    try {
      if (u.kind === 'image') {
        const img = JSON.parse(u.payload) as { url: string; width: number; height: number };
        messageId = (await this.d.im.sendImage(order.chatId!, order.buyerId!, img)).messageId;
      } else {
        messageId = (await this.d.im.sendText(order.chatId!, order.buyerId!, u.payload)).messageId;
      }
    } catch (err) {
      if (err instanceof NotRegisteredError) return false;
      if (err instanceof SendRejectedError) {
        this.d.metrics.deliveries.inc({ result: 'rejected' });
        return this.park(order, `send_rejected:${err.message}`, this.cfg.retryIntervalMs, () =>
          this.d.notifier.notify({
            kind: 'delivery_failed',
            orderId,
            reason: `send rejected: ${err.message}`,
          }),
        );
      }
      this.d.metrics.deliveries.inc({ result: 'send_error' });
      this.log.warn({ err, orderId, unit: u.unit }, 'send failed; the retry checks the history first');
      this.later(orderId, SEND_RETRY_MS);
      return false;
    }
    this.crash('after-send');
    const recorded = await this.d.store.markSent(this.accountId, orderId, u.unit, messageId);
    this.crash('after-record');
    u.state = 'sent';
    if (!recorded) ctx.dirty = true;
    this.d.metrics.deliveries.inc({ result: 'sent' });
    const seen = this.paidSeen.get(orderId);
    const latency =
      seen !== undefined
        ? (performance.now() - seen) / 1000
        : (Date.now() - (order.paidAt?.getTime() ?? Date.now())) / 1000;
    this.d.metrics.paidToSent.observe(latency);
    if (u.unit === total - 1) this.paidSeen.delete(orderId);
    this.log.info({ orderId, unit: u.unit, of: total, messageId, recorded }, 'unit sent');
    return true;
  }

  /** The message id of the unit's message in the chat history, if it is there. */
  private async findInHistory(order: OrderRow, u: UnitRow): Promise<string | undefined> {
    const since = u.claimedAt.getTime() - 60_000;
    let cursor: number | undefined;
    const img = u.kind === 'image' ? (JSON.parse(u.payload) as { url: string }).url : undefined;
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const p = await this.d.im.listUserMessages(order.chatId!, cursor, 50);
      for (const m of p.messages) {
        if (m.senderId !== this.d.sellerId) continue;
        if (img ? imageUrlOf(m) === img : m.text === u.payload) return m.messageId ?? 'history';
      }
      const oldest = p.messages.reduce((t, m) => Math.min(t, m.createdAt ?? t), Number.POSITIVE_INFINITY);
      if (!p.hasMore || p.nextCursor === undefined || oldest < since) return undefined;
      cursor = p.nextCursor;
    }
    return undefined;
  }

  private async confirm(order: OrderRow): Promise<boolean> {
    try {
      await this.d.mtop.call(API_CONSIGN, '1.0', {
        orderId: order.orderId,
        tradeText: '',
        picList: [],
        newUnconsign: true,
      });
      await this.finishAs(order, 'confirmed');
      this.log.info({ orderId: order.orderId }, 'shipment confirmed (consign.dummy)');
      return false;
    } catch (err) {
      // Shipped already (our call just before a crash, or the seller by hand)?
      const shipped = err instanceof MtopError && (await this.shippedInHistory(order).catch(() => false));
      if (shipped) {
        await this.finishAs(order, 'confirmed');
        this.log.info({ orderId: order.orderId }, 'shipment was confirmed already ([你已发货] in the chat)');
        return false;
      }
      this.log.warn({ err, orderId: order.orderId }, 'shipment confirmation failed');
      return this.park(order, 'confirm_failed', this.cfg.retryIntervalMs, () =>
        this.d.notifier.notify({
          kind: 'delivery_failed',
          orderId: order.orderId,
          reason: 'confirm shipment failed',
        }),
      );
    }
  }

  private async shippedInHistory(order: OrderRow): Promise<boolean> {
    const p = await this.d.im.listUserMessages(order.chatId!, undefined, 50);
    return p.messages.some((m) => {
      const card = cardInfo(m.content);
      return card.orderId === order.orderId && ORDER_STATUS_BY_TEXT.get(`[${card.title}]`) === 'shipped';
    });
  }

  private async release(order: OrderRow, claimed: UnitRow[]): Promise<boolean> {
    const back: number[] = [];
    for (const u of claimed) {
      const found = this.fresh.has(`${order.orderId}/${u.unit}`)
        ? undefined
        : await this.findInHistory(order, u);
      if (found) await this.d.store.markSent(this.accountId, order.orderId, u.unit, found);
      else back.push(u.unit);
    }
    const n = back.length ? await this.d.store.release(this.accountId, order.orderId, back) : 0;
    this.log.info(
      { orderId: order.orderId, status: order.status, released: n },
      'order refunded/closed: unsent units released',
    );
    return true;
  }

  // ---- redeliver (补发货) ----

  /** Re-sends the same content of every sent unit (an explicit human action). */
  async redeliver(orderId: string): Promise<void> {
    const order = await this.d.store.getOrder(this.accountId, orderId);
    if (!order) return;
    const units = (await this.d.store.getUnits(this.accountId, orderId)).filter((u) => u.state !== 'claimed');
    if (units.length === 0) {
      await this.d.store.clearRedeliver(this.accountId, orderId);
      this.log.warn({ orderId }, 'redeliver requested but nothing was sent yet: delivering normally');
      this.kick(orderId);
      return;
    }
    if (this.d.im.status().state !== 'registered') return; // the next scan retries
    for (const u of units) {
      if (u.kind === 'image') await this.d.im.sendImage(order.chatId!, order.buyerId!, JSON.parse(u.payload));
      else await this.d.im.sendText(order.chatId!, order.buyerId!, u.payload);
      await this.d.store.noteRedelivered(this.accountId, orderId, u.unit);
    }
    await this.d.store.clearRedeliver(this.accountId, orderId);
    this.d.metrics.deliveries.inc({ result: 'redelivered' }, units.length);
    this.log.info(
      { orderId, units: units.length },
      'redelivered (补发货) on a human request: same content sent again',
    );
    this.d.notifier.notify({ kind: 'redelivered', orderId, units: units.length });
  }

  // ---- missed trade cards ----

  /**
   * Paid cards that reached no process (acknowledged by a process that died before recording
   * them): the conversations modified since the last sweep are listed, and trade cards in
   * their recent history become order events like live ones.
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.sweepNow().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }
  private sweeping: Promise<void> | undefined;

  private async sweepNow(): Promise<void> {
    const startedAt = Date.now();
    let found = 0;
    try {
      const since =
        ((await this.d.store.sweptUntil(this.accountId))?.getTime() ?? startedAt - 3_600_000) - 60_000;
      // The list (newest first), then oldest first: the watermark can advance chunk by chunk, so
      // a process that dies mid-sweep leaves less for the next one.
      const convs: { chatId: string; peerId?: string; itemId?: string; modifiedAt: number }[] = [];
      let cursor = startedAt;
      for (let page = 0; page < 200; page++) {
        const p = await this.d.im.listConversations(cursor, 50);
        for (const c of p.conversations) {
          const at = c.modifiedAt ?? 0;
          if (at >= since) convs.push({ ...c, modifiedAt: at });
        }
        const oldest = p.conversations.at(-1)?.modifiedAt ?? 0;
        if (!p.hasMore || p.nextCursor === undefined || oldest < since) break;
        cursor = p.nextCursor;
      }
      convs.sort((a, b) => a.modifiedAt - b.modifiedAt);
      const CHUNK = 16;
      for (let i = 0; i < convs.length && !this.stopped; i += CHUNK) {
        const chunk = convs.slice(i, i + CHUNK);
        const counts = await Promise.all(chunk.map((c) => this.sweepChat(c)));
        found += counts.reduce((a, b) => a + b, 0);
        await this.d.store.setSweptUntil(this.accountId, new Date(chunk.at(-1)!.modifiedAt));
      }
      if (!this.stopped) await this.d.store.setSweptUntil(this.accountId, new Date(startedAt));
      this.log.info(
        { conversations: convs.length, tradeCards: found, ms: Date.now() - startedAt },
        'swept for missed trade cards',
      );
    } catch (err) {
      if (!this.stopped) this.log.warn({ err }, 'sweep for missed trade cards failed');
    }
  }

  private async sweepChat(c: { chatId: string; peerId?: string; itemId?: string }): Promise<number> {
    const h = await this.d.im.listUserMessages(c.chatId, undefined, 50);
    let n = 0;
    for (const m of [...h.messages].reverse()) {
      const card = cardInfo(m.content);
      if (!card.orderId || !card.title) continue;
      const text = `[${card.title}]`;
      const trigger = isDeliveryTrigger(text, card.title) || card.title === BARGAIN_CARD_TITLE;
      let status: OrderStatus | undefined = orderStatusOf({
        text,
        cardTitle: card.title,
        ...(card.button ? { cardButton: card.button } : {}),
      });
      if (!status && trigger) status = 'pending_ship';
      if (!status) continue;
      n++;
      await this.applyEvent({
        orderId: card.orderId,
        chatId: c.chatId,
        buyerId: c.peerId,
        itemId: c.itemId,
        status,
        bargain: card.title === BARGAIN_CARD_TITLE,
        at: new Date(m.createdAt ?? Date.now()),
      });
    }
    return n;
  }

  // ---- stock and gauges ----

  /** A stock count within a second (counting on every claim would scan the pool per order). */
  private stockSoon(pool: string): void {
    if (this.stockTimers.has(pool) || this.stopped) return;
    const t = setTimeout(() => {
      this.stockTimers.delete(pool);
      void this.checkStock(pool);
    }, 1_000);
    t.unref();
    this.stockTimers.set(pool, t);
  }
  private readonly stockTimers = new Map<string, NodeJS.Timeout>();

  async checkStock(pool: string): Promise<void> {
    try {
      const [s] = await this.d.store.stock([pool]);
      if (!s) return;
      this.d.metrics.stock.set({ pool }, s.free);
      const threshold = this.cfg.pools[pool]?.lowStock ?? 0;
      if (s.free <= threshold && this.lowStockAnnounced.get(pool) !== true) {
        this.lowStockAnnounced.set(pool, true);
        this.d.notifier.notify({ kind: 'low_stock', pool, free: s.free, threshold });
      } else if (s.free > threshold) this.lowStockAnnounced.set(pool, false);
    } catch (err) {
      this.log.warn({ err, pool }, 'stock count failed');
    }
  }
  private readonly lowStockAnnounced = new Map<string, boolean>();

  private async updateWaitingGauge(): Promise<void> {
    const by = await this.d.store.waitingByReason(this.accountId);
    this.d.metrics.ordersWaiting.reset();
    for (const [reason, n] of by) this.d.metrics.ordersWaiting.set({ reason }, n);
  }
}

interface Ctx {
  order: OrderRow;
  units: UnitRow[];
  /** The copy may differ from the database: read again before the next step. */
  dirty: boolean;
}

function imageUrlOf(m: HistoryMessage): string | undefined {
  const pics = (m.content as { image?: { pics?: { url?: unknown }[] } } | undefined)?.image?.pics;
  const url = pics?.[0]?.url;
  return typeof url === 'string' ? url : undefined;
}
