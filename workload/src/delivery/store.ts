// Orders, code pools and delivery units over plain SQL (PostgreSQL or PGlite). Every write that
// moves a unit is one statement or one transaction, guarded by the state it expects, so a
// process that dies between two of them leaves a state `planOrder` can resume from.
import type { OrderStatus } from '../protocol/orders.js';
import { GroupCommit, isTransientConflict } from '../store/group-commit.js';
import type { Queryable, Sql } from '../store/types.js';
import { type DeliveryState, isPayable, orderMayMove, type UnitState } from './state.js';

export interface OrderRow {
  accountId: string;
  orderId: string;
  chatId: string | null;
  buyerId: string | null;
  buyerName: string | null;
  itemId: string | null;
  status: OrderStatus;
  statusAt: Date;
  paidAt: Date | null;
  bargain: boolean;
  freeShippingAt: Date | null;
  quantity: number;
  spec: string | null;
  amount: string | null;
  detailsAt: Date | null;
  deliveryState: DeliveryState;
  waitingReason: string | null;
  rule: string | null;
  confirmWanted: boolean | null;
  nextAttemptAt: Date | null;
  redeliverAt: Date | null;
  updatedAt: Date;
}

export interface UnitRow {
  orderId: string;
  unit: number;
  rule: string;
  kind: 'text' | 'image';
  codeId: number | null;
  payload: string;
  state: UnitState;
  messageId: string | null;
  claimedAt: Date;
  sendAfter: Date;
  sentAt: Date | null;
  confirmedAt: Date | null;
  redelivered: number;
}

export interface OrderEvent {
  orderId: string;
  chatId?: string | undefined;
  buyerId?: string | undefined;
  buyerName?: string | undefined;
  itemId?: string | undefined;
  /** The status the message announces (protocol §1.9), when any. */
  status?: OrderStatus | undefined;
  /** A bargain (小刀) card: the order is paid once the bargain completes. */
  bargain?: boolean | undefined;
  at: Date;
}

export interface StockCount {
  pool: string;
  free: number;
  claimed: number;
  withdrawn: number;
}

type Row = Record<string, unknown>;

const date = (v: unknown): Date | null => {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  const d = new Date(v as string);
  return Number.isNaN(d.getTime()) ? null : d;
};
const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toOrder(r: Row): OrderRow {
  return {
    accountId: String(r.account_id),
    orderId: String(r.order_id),
    chatId: str(r.chat_id),
    buyerId: str(r.buyer_id),
    buyerName: str(r.buyer_name),
    itemId: str(r.item_id),
    status: String(r.status) as OrderStatus,
    statusAt: date(r.status_at)!,
    paidAt: date(r.paid_at),
    bargain: r.bargain === true,
    freeShippingAt: date(r.free_shipping_at),
    quantity: Number(r.quantity),
    spec: str(r.spec),
    amount: str(r.amount),
    detailsAt: date(r.details_at),
    deliveryState: String(r.delivery_state) as DeliveryState,
    waitingReason: str(r.waiting_reason),
    rule: str(r.rule),
    confirmWanted:
      r.confirm_wanted === null || r.confirm_wanted === undefined ? null : r.confirm_wanted === true,
    nextAttemptAt: date(r.next_attempt_at),
    redeliverAt: date(r.redeliver_at),
    updatedAt: date(r.updated_at)!,
  };
}

function toUnit(r: Row): UnitRow {
  return {
    orderId: String(r.order_id),
    unit: Number(r.unit),
    rule: String(r.rule),
    kind: r.kind === 'image' ? 'image' : 'text',
    codeId: r.code_id === null || r.code_id === undefined ? null : Number(r.code_id),
    payload: String(r.payload),
    state: String(r.state) as UnitState,
    messageId: str(r.message_id),
    claimedAt: date(r.claimed_at)!,
    sendAfter: date(r.send_after)!,
    sentAt: date(r.sent_at),
    confirmedAt: date(r.confirmed_at),
    redelivered: Number(r.redelivered),
  };
}

const ORDER_COLS = `account_id, order_id, chat_id, buyer_id, buyer_name, item_id, status, status_at, paid_at,
  bargain, free_shipping_at, quantity, spec, amount, details_at, delivery_state, waiting_reason, rule,
  confirm_wanted, next_attempt_at, redeliver_at, updated_at`;
const UNIT_COLS = `order_id, unit, rule, kind, code_id, payload, state, message_id, claimed_at, send_after,
  sent_at, confirmed_at, redelivered`;
/** Typed NULLs in the order of UNIT_COLS (the "not enough codes" row of the claim statement). */
const UNIT_NULLS = `NULL::text, NULL::int, NULL::text, NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::text,
  NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::int`;
/** Stands for the code while a payload is rendered; replaced by the claim statement. */
const CODE_MARK = '\uE000code\uE000';

const ORDER_STATUSES: readonly OrderStatus[] = [
  'processing',
  'pending_ship',
  'shipped',
  'completed',
  'refunding',
  'refund_cancelled',
  'cancelled',
];
const PAYABLE_STATUSES = ORDER_STATUSES.filter(isPayable);
/** Every status move `orderMayMove` allows, as two columns of a table. */
const STATUS_MOVES = (() => {
  const from: OrderStatus[] = [];
  const to: OrderStatus[] = [];
  for (const f of ORDER_STATUSES)
    for (const t of ORDER_STATUSES)
      if (orderMayMove(f, t)) {
        from.push(f);
        to.push(t);
      }
  return { from, to };
})();

/** What applying an order event did. */
export interface OrderUpdate {
  order: OrderRow;
  /** The status changed (or the order is new). */
  changed: boolean;
  /** The order just became owed goods (pending delivery). */
  becamePayable: boolean;
  /** This event created the order row. */
  created: boolean;
}

export interface ClaimInput {
  accountId: string;
  orderId: string;
  rule: string;
  confirmWanted: boolean;
  units: number[];
  kind: 'text' | 'image';
  sendAfter: Date;
  /** From a pool: one code per unit, reserved in this transaction. */
  pool?: string;
  /** Renders the unit's message from its code (pool) or source value. */
  render: (unit: number, code: string | undefined) => string;
}

const RETRY = { retryIf: isTransientConflict };
/** An order's key within a batch: also the order in which every batch locks its rows. */
const orderKey = (accountId: string, orderId: string) => `${accountId}\n${orderId}`;
/** A copy of `items` sorted by `key`. */
function sortedBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  return items
    .map((item) => ({ item, k: key(item) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.item);
}

interface EventWrite {
  accountId: string;
  ev: OrderEvent;
}

interface SentWrite {
  accountId: string;
  orderId: string;
  unit: number;
  messageId: string;
}

interface FinishWrite {
  accountId: string;
  orderId: string;
  state: 'delivered' | 'confirmed' | 'cancelled';
}

export type ClaimResult =
  | { ok: true; units: UnitRow[] }
  | { ok: false; reason: 'out_of_stock'; free: number };

export class DeliveryStore {
  // The writes every delivery makes, grouped (see GroupCommit): under load one statement
  // records many orders' events, sends or completions. A batch locks its rows in (account,
  // order) order, so two batches rarely deadlock; when they do, the loser is written again.
  private readonly sentWrites = new GroupCommit<SentWrite, boolean>((b) => this.writeSent(b), RETRY);
  private readonly finishWrites = new GroupCommit<FinishWrite, undefined>((b) => this.writeFinish(b), RETRY);
  private readonly eventWrites = new GroupCommit<EventWrite, OrderUpdate>((b) => this.writeEvents(b), RETRY);

  constructor(readonly sql: Sql) {}

  // ---- orders ----

  /**
   * Applies a trade message to the order: status moves only forward (or into refund/cancel);
   * ids and names are filled in when first known. One upsert with a row lock, so two messages
   * of one order applied at once cannot lose either; grouped with other orders' messages
   * under load.
   */
  applyOrderEvent(accountId: string, ev: OrderEvent): Promise<OrderUpdate> {
    return this.eventWrites.run({ accountId, ev });
  }

  private async writeEvents(batch: EventWrite[]): Promise<OrderUpdate[]> {
    // One order twice in one statement is an error (ON CONFLICT cannot update a row twice);
    // events without a status may not move it: each kind of round is its own statement.
    const out = new Array<OrderUpdate>(batch.length);
    const rounds: { moves: boolean; keys: Set<string>; items: number[] }[] = [];
    batch.forEach((w, i) => {
      const key = orderKey(w.accountId, w.ev.orderId);
      const moves = w.ev.status !== undefined;
      let round = rounds.find((r) => r.moves === moves && !r.keys.has(key));
      if (!round) {
        round = { moves, keys: new Set(), items: [] };
        rounds.push(round);
      }
      round.keys.add(key);
      round.items.push(i);
    });
    for (const r of rounds) {
      const items = r.items.map((i) => batch[i]!);
      const updates = await this.upsertOrders(items, r.moves);
      r.items.forEach((i, k) => {
        out[i] = updates[k]!;
      });
    }
    return out;
  }

  private async upsertOrders(items: EventWrite[], moves: boolean): Promise<OrderUpdate[]> {
    // A new order is inserted as announced; a known one (row-locked by the upsert) moves only
    // along the (from, to) pairs `orderMayMove` allows, passed in as a table (none for events
    // without a status). `prev` reads the statement's snapshot (the row before this upsert):
    // it only tells what changed, the move itself is decided on the locked row.
    const pairs = moves ? STATUS_MOVES : { from: [], to: [] };
    const first = (ev: OrderEvent): OrderStatus => ev.status ?? 'processing';
    const sorted = sortedBy(items, (w) => orderKey(w.accountId, w.ev.orderId));
    const { rows } = await this.sql.query<
      Row & { inserted: boolean; prev_status: string | null; prev_delivery: string | null }
    >(
      `WITH ev AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
           $8::timestamptz[], $9::boolean[])
           AS ev(account_id, order_id, chat_id, buyer_id, buyer_name, item_id, status, at, bargain)
       ), prev AS (
         SELECT o.account_id, o.order_id, o.status, o.delivery_state FROM orders o JOIN ev USING (account_id, order_id)
       ), up AS (
         INSERT INTO orders AS o (account_id, order_id, chat_id, buyer_id, buyer_name, item_id, status, status_at,
           paid_at, bargain, delivery_state)
         SELECT account_id, order_id, chat_id, buyer_id, buyer_name, item_id, status, at,
           CASE WHEN status = ANY($12::text[]) THEN at END, bargain,
           CASE WHEN status = ANY($12::text[]) THEN 'pending' ELSE 'none' END
         FROM ev
         ON CONFLICT (account_id, order_id) DO UPDATE SET
           chat_id = COALESCE(o.chat_id, EXCLUDED.chat_id),
           buyer_id = COALESCE(o.buyer_id, EXCLUDED.buyer_id),
           buyer_name = COALESCE(EXCLUDED.buyer_name, o.buyer_name),
           item_id = COALESCE(o.item_id, EXCLUDED.item_id),
           status = CASE WHEN (o.status, EXCLUDED.status) IN (SELECT * FROM unnest($10::text[], $11::text[]))
             THEN EXCLUDED.status ELSE o.status END,
           status_at = CASE WHEN (o.status, EXCLUDED.status) IN (SELECT * FROM unnest($10::text[], $11::text[]))
             THEN EXCLUDED.status_at ELSE o.status_at END,
           paid_at = COALESCE(o.paid_at,
             CASE WHEN (o.status, EXCLUDED.status) IN (SELECT * FROM unnest($10::text[], $11::text[]))
               AND EXCLUDED.status = ANY($12::text[]) THEN EXCLUDED.status_at END),
           bargain = o.bargain OR EXCLUDED.bargain,
           delivery_state = CASE
             WHEN (o.status, EXCLUDED.status) IN (SELECT * FROM unnest($10::text[], $11::text[]))
               AND EXCLUDED.status = ANY($12::text[]) AND o.delivery_state IN ('none', 'cancelled') THEN 'pending'
             ELSE o.delivery_state END,
           updated_at = now()
         RETURNING ${ORDER_COLS}, (xmax = 0) AS inserted
       )
       SELECT up.*, prev.status AS prev_status, prev.delivery_state AS prev_delivery
       FROM up LEFT JOIN prev ON prev.account_id = up.account_id AND prev.order_id = up.order_id`,
      [
        sorted.map((w) => w.accountId),
        sorted.map((w) => w.ev.orderId),
        sorted.map((w) => w.ev.chatId ?? null),
        sorted.map((w) => w.ev.buyerId ?? null),
        sorted.map((w) => w.ev.buyerName ?? null),
        sorted.map((w) => w.ev.itemId ?? null),
        sorted.map((w) => first(w.ev)),
        sorted.map((w) => w.ev.at),
        sorted.map((w) => w.ev.bargain === true),
        pairs.from,
        pairs.to,
        PAYABLE_STATUSES,
      ],
    );
    const byKey = new Map(rows.map((r) => [orderKey(String(r.account_id), String(r.order_id)), r]));
    return items.map((w) => {
      const r = byKey.get(orderKey(w.accountId, w.ev.orderId));
      if (!r) throw new Error(`order ${w.ev.orderId}: the upsert returned no row`);
      const order = toOrder(r);
      if (r.inserted === true)
        return { order, changed: true, becamePayable: isPayable(first(w.ev)), created: true };
      const prevDelivery = r.prev_delivery;
      return {
        order,
        changed: r.prev_status !== order.status,
        becamePayable:
          order.deliveryState === 'pending' &&
          (prevDelivery === null || prevDelivery === 'none' || prevDelivery === 'cancelled'),
        created: false,
      };
    });
  }

  async getOrder(accountId: string, orderId: string): Promise<OrderRow | undefined> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${ORDER_COLS} FROM orders WHERE account_id = $1 AND order_id = $2`,
      [accountId, orderId],
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  async getUnits(accountId: string, orderId: string, q: Queryable = this.sql): Promise<UnitRow[]> {
    const { rows } = await q.query<Row>(
      `SELECT ${UNIT_COLS} FROM delivery_units WHERE account_id = $1 AND order_id = $2 ORDER BY unit`,
      [accountId, orderId],
    );
    return rows.map(toUnit);
  }

  /** The latest order of a chat (red reminders carry no order id). */
  async latestOrderOfChat(accountId: string, chatId: string): Promise<OrderRow | undefined> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${ORDER_COLS} FROM orders WHERE account_id = $1 AND chat_id = $2
       ORDER BY status_at DESC, created_at DESC LIMIT 1`,
      [accountId, chatId],
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /** Orders with delivery work left whose retry time has come. */
  async openOrders(accountId: string, now = new Date()): Promise<string[]> {
    const { rows } = await this.sql.query<{ order_id: string }>(
      `SELECT order_id FROM orders
       WHERE account_id = $1 AND delivery_state IN ('pending', 'waiting', 'delivering')
         AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
       ORDER BY paid_at NULLS LAST, order_id`,
      [accountId, now],
    );
    return rows.map((r) => r.order_id);
  }

  /** Orders a human asked to deliver again (`redeliver ORDER`). */
  async redeliverRequests(accountId: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ order_id: string }>(
      'SELECT order_id FROM orders WHERE account_id = $1 AND redeliver_at IS NOT NULL ORDER BY redeliver_at',
      [accountId],
    );
    return rows.map((r) => r.order_id);
  }

  async requestRedeliver(accountId: string, orderId: string): Promise<boolean> {
    const { rows } = await this.sql.query(
      `UPDATE orders SET redeliver_at = now(), updated_at = now()
       WHERE account_id = $1 AND order_id = $2 RETURNING 1 AS ok`,
      [accountId, orderId],
    );
    return rows.length > 0;
  }

  async clearRedeliver(accountId: string, orderId: string): Promise<void> {
    await this.sql.query('UPDATE orders SET redeliver_at = NULL WHERE account_id = $1 AND order_id = $2', [
      accountId,
      orderId,
    ]);
  }

  async setDetails(
    accountId: string,
    orderId: string,
    d: { quantity: number; spec: string | null; amount: string | null },
  ): Promise<void> {
    await this.sql.query(
      `UPDATE orders SET quantity = $3, spec = $4, amount = $5, details_at = now(), updated_at = now()
       WHERE account_id = $1 AND order_id = $2 AND details_at IS NULL`,
      [accountId, orderId, Math.max(1, Math.floor(d.quantity)), d.spec, d.amount],
    );
  }

  async setFreeShippingDone(accountId: string, orderId: string): Promise<void> {
    await this.sql.query(
      `UPDATE orders SET free_shipping_at = now(), updated_at = now()
       WHERE account_id = $1 AND order_id = $2 AND free_shipping_at IS NULL`,
      [accountId, orderId],
    );
  }

  /** Parks an order with a reason until `retryAt` (or until something wakes it). */
  async setWaiting(accountId: string, orderId: string, reason: string, retryAt: Date | null): Promise<void> {
    await this.sql.query(
      `UPDATE orders SET delivery_state = 'waiting', waiting_reason = $3, next_attempt_at = $4, updated_at = now()
       WHERE account_id = $1 AND order_id = $2 AND delivery_state IN ('pending', 'waiting', 'delivering')`,
      [accountId, orderId, reason, retryAt],
    );
  }

  /** Every order waiting for stock becomes due now (codes were added). */
  async wakeWaiting(accountId: string, reasonPrefix: string): Promise<number> {
    const { rows } = await this.sql.query(
      `UPDATE orders SET next_attempt_at = NULL
       WHERE account_id = $1 AND delivery_state = 'waiting' AND waiting_reason LIKE $2 || '%'
       RETURNING 1 AS ok`,
      [accountId, reasonPrefix],
    );
    return rows.length;
  }

  /** The order's delivery ends in `state`; `confirmed` also confirms its sent units. */
  finish(accountId: string, orderId: string, state: FinishWrite['state']): Promise<void> {
    return this.finishWrites.run({ accountId, orderId, state });
  }

  private async writeFinish(batch: FinishWrite[]): Promise<undefined[]> {
    const rows = sortedBy(batch, (w) => orderKey(w.accountId, w.orderId));
    await this.sql.query(
      `WITH v AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS v(account_id, order_id, state)
       ), u AS (
         UPDATE delivery_units d SET state = 'confirmed', confirmed_at = now() FROM v
         WHERE d.account_id = v.account_id AND d.order_id = v.order_id AND v.state = 'confirmed'
           AND d.state = 'sent'
       )
       UPDATE orders o SET delivery_state = v.state, waiting_reason = NULL, next_attempt_at = NULL, updated_at = now()
       FROM v WHERE o.account_id = v.account_id AND o.order_id = v.order_id`,
      [rows.map((w) => w.accountId), rows.map((w) => w.orderId), rows.map((w) => w.state)],
    );
    return batch.map(() => undefined);
  }

  // ---- units ----

  /**
   * Claims units of an order in one transaction: from a pool, one free code per unit taken with
   * `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's rows instead of waiting),
   * all units or none. The unit rows' primary key (account, order, unit) and the unique code id
   * make a second claim of the same unit or code fail instead of delivering twice.
   */
  async claim(c: ClaimInput): Promise<ClaimResult> {
    // One statement: take up to n free codes with FOR UPDATE SKIP LOCKED, and only if there are
    // n of them reserve them, insert the unit rows (the payload is rendered around a marker the
    // statement replaces with the code) and move the order to `delivering`. Locks end with it.
    // `pool >= $10 AND pool <= $10 ... ORDER BY pool, id` means `pool = $10 ... ORDER BY id`,
    // spelled so that only the free-codes index (pool, id) gives that order: with `=` the plan
    // made without the values (prepared, generic) may walk the primary key instead, through
    // every code already claimed, on every claim.
    const templates = c.units.map((u) => c.render(u, CODE_MARK));
    const { rows } = await this.sql.query<Row & { ok: boolean }>(
      `WITH picked AS (
         SELECT id, code, row_number() OVER (ORDER BY id) AS rn FROM (
           SELECT id, code FROM pool_codes
           WHERE $9::boolean AND pool >= $10 AND pool <= $10 AND account_id IS NULL AND NOT withdrawn
           ORDER BY pool, id LIMIT $11 FOR UPDATE SKIP LOCKED
         ) free
       ), enough AS (
         SELECT NOT $9::boolean OR count(*) = $11 AS ok FROM picked
       ), wanted AS (
         SELECT u.unit, u.tpl, u.ord FROM unnest($6::int[], $7::text[]) WITH ORDINALITY AS u(unit, tpl, ord)
       ), reserved AS (
         UPDATE pool_codes p SET account_id = $1, order_id = $2, unit = w.unit, claimed_at = now()
         FROM picked JOIN wanted w ON w.ord = picked.rn, enough
         WHERE p.id = picked.id AND enough.ok AND p.account_id IS NULL
         RETURNING p.id, p.code, w.unit, w.tpl
       ), src AS (
         SELECT w.unit, r.id AS code_id, CASE WHEN r.code IS NULL THEN w.tpl ELSE replace(w.tpl, $8, r.code) END AS payload
         FROM wanted w LEFT JOIN reserved r ON r.unit = w.unit, enough
         WHERE enough.ok AND (NOT $9::boolean OR r.id IS NOT NULL)
       ), ins AS (
         INSERT INTO delivery_units (account_id, order_id, unit, rule, kind, code_id, payload, state, claimed_at, send_after)
         SELECT $1, $2, unit, $3, $4, code_id, payload, 'claimed', now(), $5 FROM src
         RETURNING ${UNIT_COLS}
       ), ord AS (
         UPDATE orders SET delivery_state = 'delivering', rule = $3, confirm_wanted = $12, waiting_reason = NULL,
           next_attempt_at = NULL, updated_at = now()
         WHERE account_id = $1 AND order_id = $2 AND (SELECT ok FROM enough)
       )
       SELECT ins.*, true AS ok FROM ins
       UNION ALL SELECT ${UNIT_NULLS}, false AS ok FROM enough WHERE NOT enough.ok`,
      [
        c.accountId,
        c.orderId,
        c.rule,
        c.kind,
        c.sendAfter,
        c.units,
        templates,
        CODE_MARK,
        c.pool !== undefined,
        c.pool ?? '',
        c.units.length,
        c.confirmWanted,
      ],
    );
    const units = rows.filter((r) => r.ok).map(toUnit);
    if (units.length === c.units.length) return { ok: true, units };
    const free = await this.sql.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pool_codes WHERE pool = $1 AND account_id IS NULL AND NOT withdrawn',
      [c.pool ?? ''],
    );
    return { ok: false, reason: 'out_of_stock', free: Number(free.rows[0]?.n ?? 0) };
  }

  /** Whether a seller message in a chat is one of our deliveries (by message id or content). */
  async isDeliveryMessage(
    accountId: string,
    chatId: string,
    messageIds: string[],
    text: string,
  ): Promise<boolean> {
    const { rows } = await this.sql.query(
      `SELECT 1 AS ok FROM delivery_units u JOIN orders o USING (account_id, order_id)
       WHERE u.account_id = $1 AND o.chat_id = $2 AND (u.message_id = ANY($3::text[]) OR u.payload = $4)
       LIMIT 1`,
      [accountId, chatId, messageIds, text],
    );
    return rows.length > 0;
  }

  /** claimed → sent with the IM messageId; false when the unit was not in `claimed`. */
  markSent(accountId: string, orderId: string, unit: number, messageId: string): Promise<boolean> {
    return this.sentWrites.run({ accountId, orderId, unit, messageId });
  }

  private async writeSent(batch: SentWrite[]): Promise<boolean[]> {
    const unitKey = (accountId: string, orderId: string, unit: number) =>
      `${orderKey(accountId, orderId)}\n${String(unit).padStart(6, '0')}`;
    const sorted = sortedBy(batch, (w) => unitKey(w.accountId, w.orderId, w.unit));
    const { rows } = await this.sql.query<{ account_id: string; order_id: string; unit: number }>(
      `UPDATE delivery_units d SET state = 'sent', message_id = v.message_id, sent_at = now()
       FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) AS v(account_id, order_id, unit, message_id)
       WHERE d.account_id = v.account_id AND d.order_id = v.order_id AND d.unit = v.unit AND d.state = 'claimed'
       RETURNING d.account_id, d.order_id, d.unit`,
      [
        sorted.map((w) => w.accountId),
        sorted.map((w) => w.orderId),
        sorted.map((w) => w.unit),
        sorted.map((w) => w.messageId),
      ],
    );
    const done = new Set(rows.map((r) => unitKey(r.account_id, r.order_id, Number(r.unit))));
    return batch.map((w) => done.has(unitKey(w.accountId, w.orderId, w.unit)));
  }

  async noteRedelivered(accountId: string, orderId: string, unit: number): Promise<void> {
    await this.sql.query(
      `UPDATE delivery_units SET redelivered = redelivered + 1
       WHERE account_id = $1 AND order_id = $2 AND unit = $3`,
      [accountId, orderId, unit],
    );
  }

  /** Gives claimed (never sent) units back: their codes become free again. */
  async release(accountId: string, orderId: string, units: number[]): Promise<number> {
    return this.sql.transaction(async (tx) => {
      const { rows } = await tx.query<{ code_id: unknown }>(
        `DELETE FROM delivery_units
         WHERE account_id = $1 AND order_id = $2 AND unit = ANY($3::int[]) AND state = 'claimed'
         RETURNING code_id`,
        [accountId, orderId, units],
      );
      const ids = rows
        .map((r) => r.code_id)
        .filter((v) => v !== null && v !== undefined)
        .map(Number);
      if (ids.length) {
        await tx.query(
          `UPDATE pool_codes SET account_id = NULL, order_id = NULL, unit = NULL, claimed_at = NULL
           WHERE id = ANY($1::bigint[])`,
          [ids],
        );
      }
      return rows.length;
    });
  }

  // ---- pools ----

  async poolFileHash(pool: string): Promise<string | undefined> {
    const { rows } = await this.sql.query<{ sha256: string }>(
      'SELECT sha256 FROM pool_files WHERE pool = $1',
      [pool],
    );
    return rows[0]?.sha256;
  }

  /**
   * Imports the codes of a pool file: new codes are added, codes no longer in the file are
   * withdrawn while free (a claimed code is never touched), returning codes come back. Batches
   * are idempotent (`ON CONFLICT DO NOTHING`), so an import cut short is simply run again; the
   * file's hash is recorded only at the end. Returns how many codes were added.
   */
  async importPool(
    pool: string,
    codes: string[],
    sha256: string,
    opts: { batchSize?: number; afterBatch?: () => void } = {},
  ): Promise<{ added: number; withdrawn: number; restored: number }> {
    const size = opts.batchSize ?? 1000;
    let added = 0;
    for (let i = 0; i < codes.length; i += size) {
      const batch = codes.slice(i, i + size);
      const { rows } = await this.sql.query(
        `INSERT INTO pool_codes (pool, code) SELECT $1, c FROM unnest($2::text[]) AS c
         ON CONFLICT (pool, code) DO NOTHING RETURNING 1 AS ok`,
        [pool, batch],
      );
      added += rows.length;
      opts.afterBatch?.();
    }
    const { withdrawn, restored } = await this.sql.transaction(async (tx) => {
      // The difference is taken here, not in SQL: a prepared statement's plan cannot hash an
      // array parameter, and `code = ANY($2)` per code is quadratic in the file's length.
      const inFile = new Set(codes);
      const { rows: unclaimed } = await tx.query<{ id: unknown; code: string; withdrawn: boolean }>(
        'SELECT id, code, withdrawn FROM pool_codes WHERE pool = $1 AND account_id IS NULL',
        [pool],
      );
      const gone = unclaimed.filter((c) => !c.withdrawn && !inFile.has(c.code)).map((c) => String(c.id));
      const back = unclaimed.filter((c) => c.withdrawn && inFile.has(c.code)).map((c) => String(c.id));
      // Guarded by the state read above: a code claimed meanwhile is never withdrawn.
      const w = gone.length
        ? await tx.query(
            `UPDATE pool_codes SET withdrawn = true
             WHERE id = ANY($1::bigint[]) AND account_id IS NULL AND NOT withdrawn RETURNING 1 AS ok`,
            [gone],
          )
        : { rows: [] };
      const r = back.length
        ? await tx.query(
            'UPDATE pool_codes SET withdrawn = false WHERE id = ANY($1::bigint[]) AND withdrawn RETURNING 1 AS ok',
            [back],
          )
        : { rows: [] };
      await tx.query(
        `INSERT INTO pool_files (pool, sha256, lines, imported_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (pool) DO UPDATE SET sha256 = EXCLUDED.sha256, lines = EXCLUDED.lines, imported_at = now()`,
        [pool, sha256, codes.length],
      );
      return { withdrawn: w.rows.length, restored: r.rows.length };
    });
    return { added, withdrawn, restored };
  }

  async stock(pools: string[]): Promise<StockCount[]> {
    if (pools.length === 0) return [];
    const { rows } = await this.sql.query<{ pool: string; free: number; claimed: number; withdrawn: number }>(
      `SELECT p.pool,
         count(c.id) FILTER (WHERE c.account_id IS NULL AND NOT c.withdrawn)::int AS free,
         count(c.id) FILTER (WHERE c.account_id IS NOT NULL)::int AS claimed,
         count(c.id) FILTER (WHERE c.account_id IS NULL AND c.withdrawn)::int AS withdrawn
       FROM unnest($1::text[]) AS p(pool) LEFT JOIN pool_codes c ON c.pool = p.pool
       GROUP BY p.pool ORDER BY p.pool`,
      [pools],
    );
    return rows.map((r) => ({
      pool: r.pool,
      free: Number(r.free),
      claimed: Number(r.claimed),
      withdrawn: Number(r.withdrawn),
    }));
  }

  /** Orders waiting, by reason (metrics). */
  async waitingByReason(accountId: string): Promise<Map<string, number>> {
    const { rows } = await this.sql.query<{ reason: string; n: number }>(
      `SELECT split_part(COALESCE(waiting_reason, delivery_state), ':', 1) AS reason, count(*)::int AS n
       FROM orders WHERE account_id = $1 AND delivery_state IN ('pending', 'waiting', 'delivering')
       GROUP BY 1`,
      [accountId],
    );
    return new Map(rows.map((r) => [r.reason, Number(r.n)]));
  }

  async listOrders(accountId: string, limit = 50): Promise<(OrderRow & { units: UnitRow[] })[]> {
    const { rows } = await this.sql.query<Row>(
      `SELECT ${ORDER_COLS} FROM orders WHERE account_id = $1 ORDER BY status_at DESC, order_id DESC LIMIT $2`,
      [accountId, limit],
    );
    const orders = rows.map(toOrder);
    if (orders.length === 0) return [];
    const { rows: urows } = await this.sql.query<Row>(
      `SELECT ${UNIT_COLS} FROM delivery_units WHERE account_id = $1 AND order_id = ANY($2::text[]) ORDER BY unit`,
      [accountId, orders.map((o) => o.orderId)],
    );
    const units = urows.map(toUnit);
    return orders.map((o) => ({ ...o, units: units.filter((u) => u.orderId === o.orderId) }));
  }

  // ---- sweeps ----

  async sweptUntil(accountId: string): Promise<Date | undefined> {
    const { rows } = await this.sql.query<{ swept_until: unknown }>(
      'SELECT swept_until FROM order_sweeps WHERE account_id = $1',
      [accountId],
    );
    return date(rows[0]?.swept_until) ?? undefined;
  }

  async setSweptUntil(accountId: string, until: Date): Promise<void> {
    await this.sql.query(
      `INSERT INTO order_sweeps (account_id, swept_until) VALUES ($1, $2)
       ON CONFLICT (account_id) DO UPDATE SET swept_until = GREATEST(order_sweeps.swept_until, EXCLUDED.swept_until)`,
      [accountId, until],
    );
  }
}
