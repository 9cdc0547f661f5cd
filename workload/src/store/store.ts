// The workload's durable facts over plain parameterised SQL; the same on PostgreSQL and PGlite.
import { migrate } from './migrations.js';
import type { ItemInfo, LoggedMessage, Sql, Store, Turn } from './types.js';

// ---------------------------------------------------------------------------------------------
// Row → object mapping, in one place.

interface TurnRow {
  direction: string;
  text: string;
  at: unknown;
}

interface ItemRow {
  item_id: string;
  title: string;
  price: string | null;
  description: string | null;
  fetched_at: unknown;
}

/** timestamptz arrives as a Date from both drivers; accept its text form too. */
function toDate(v: unknown): Date {
  if (v instanceof Date) return v;
  if (typeof v === 'string' || typeof v === 'number') {
    const d = new Date(v);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new Error(`expected a timestamp from the database, got ${typeof v}`);
}

function toTurn(r: TurnRow): Turn {
  if (r.direction !== 'in' && r.direction !== 'out') throw new Error(`bad message direction ${r.direction}`);
  return { direction: r.direction, text: r.text, at: toDate(r.at) };
}

function toItem(r: ItemRow): ItemInfo {
  const item: ItemInfo = { itemId: r.item_id, title: r.title, fetchedAt: toDate(r.fetched_at) };
  if (r.price !== null) item.price = r.price;
  if (r.description !== null) item.description = r.description;
  return item;
}

// ---------------------------------------------------------------------------------------------

// One statement: the message insert is skipped on a duplicate id, and then the conversation
// upsert has no input row either, so a returned row means "new message logged".
const RECORD_MESSAGE = `
WITH ins AS (
  INSERT INTO messages (account_id, chat_id, message_id, direction, sender_id, text, item_id, source, at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (account_id, message_id) DO NOTHING
  RETURNING account_id, chat_id, direction, sender_id, item_id, at
)
INSERT INTO conversations AS c (account_id, chat_id, buyer_id, item_id, first_seen, last_message_at)
SELECT account_id, chat_id, CASE WHEN direction = 'in' THEN sender_id END, item_id, at, at FROM ins
ON CONFLICT (account_id, chat_id) DO UPDATE SET
  buyer_id        = COALESCE(c.buyer_id, EXCLUDED.buyer_id),
  item_id         = COALESCE(EXCLUDED.item_id, c.item_id),
  first_seen      = LEAST(c.first_seen, EXCLUDED.first_seen),
  last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at)
RETURNING 1 AS logged`;

// Many messages in one statement (the write-behind message log): arrays in, one row per chat
// for the conversation upsert (a row may not be updated twice by one INSERT ... ON CONFLICT).
const RECORD_MESSAGES = `
WITH src AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
    AS s(account_id, chat_id, message_id, direction, sender_id, text, item_id, source, at)
), ins AS (
  INSERT INTO messages (account_id, chat_id, message_id, direction, sender_id, text, item_id, source, at)
  SELECT account_id, chat_id, message_id, direction, sender_id, text, item_id, source, at FROM src
  ON CONFLICT (account_id, message_id) DO NOTHING
  RETURNING account_id, chat_id, direction, sender_id, item_id, at
)
INSERT INTO conversations AS c (account_id, chat_id, buyer_id, item_id, first_seen, last_message_at)
SELECT account_id, chat_id, max(CASE WHEN direction = 'in' THEN sender_id END), max(item_id), min(at), max(at)
FROM ins GROUP BY account_id, chat_id
ON CONFLICT (account_id, chat_id) DO UPDATE SET
  buyer_id        = COALESCE(c.buyer_id, EXCLUDED.buyer_id),
  item_id         = COALESCE(EXCLUDED.item_id, c.item_id),
  first_seen      = LEAST(c.first_seen, EXCLUDED.first_seen),
  last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at)`;

const RECENT_TURNS = `
SELECT direction, text, at FROM (
  SELECT direction, text, at, seq FROM messages
  WHERE account_id = $1 AND chat_id = $2
  ORDER BY at DESC, seq DESC
  LIMIT $3
) last_turns
ORDER BY at ASC, seq ASC`;

/** Opens the store over an open Sql, applying pending migrations first. */
export async function createStore(sql: Sql): Promise<Store> {
  await migrate(sql);

  return {
    sql,

    async ping() {
      await sql.query('SELECT 1');
    },

    close: () => sql.close(),

    async recordMessage(m: LoggedMessage) {
      const { rows } = await sql.query(RECORD_MESSAGE, [
        m.accountId,
        m.chatId,
        m.messageId,
        m.direction,
        m.senderId,
        m.text,
        m.itemId ?? null,
        m.source ?? null,
        m.at,
      ]);
      return rows.length > 0;
    },

    async recordMessages(batch: LoggedMessage[]) {
      if (batch.length === 0) return;
      const col = <K extends keyof LoggedMessage>(k: K) => batch.map((m) => m[k] ?? null);
      await sql.query(RECORD_MESSAGES, [
        col('accountId'),
        col('chatId'),
        col('messageId'),
        col('direction'),
        col('senderId'),
        col('text'),
        col('itemId'),
        col('source'),
        batch.map((m) => m.at.toISOString()),
      ]);
    },

    async recentTurns(accountId, chatId, limit) {
      const n = Math.floor(limit);
      if (!(n > 0)) return [];
      const { rows } = await sql.query<TurnRow>(RECENT_TURNS, [accountId, chatId, n]);
      return rows.map(toTurn);
    },

    async setTakeover(accountId, chatId, until) {
      await sql.query(
        `INSERT INTO takeovers (account_id, chat_id, until) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, chat_id) DO UPDATE SET until = EXCLUDED.until`,
        [accountId, chatId, until],
      );
    },

    async takeoverUntil(accountId, chatId) {
      const { rows } = await sql.query<{ until: unknown }>(
        'SELECT until FROM takeovers WHERE account_id = $1 AND chat_id = $2',
        [accountId, chatId],
      );
      const row = rows[0];
      return row ? toDate(row.until) : null;
    },

    async markOnce(accountId, chatId, key) {
      const { rows } = await sql.query(
        `INSERT INTO once_marks (account_id, chat_id, key) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, chat_id, key) DO NOTHING
         RETURNING 1 AS first`,
        [accountId, chatId, key],
      );
      return rows.length > 0;
    },

    async getItem(accountId, itemId) {
      const { rows } = await sql.query<ItemRow>(
        `SELECT item_id, title, price, description, fetched_at FROM items
         WHERE account_id = $1 AND item_id = $2`,
        [accountId, itemId],
      );
      const row = rows[0];
      return row ? toItem(row) : null;
    },

    async putItem(accountId, item) {
      await sql.query(
        `INSERT INTO items (account_id, item_id, title, price, description, fetched_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id, item_id) DO UPDATE SET
           title = EXCLUDED.title, price = EXCLUDED.price,
           description = EXCLUDED.description, fetched_at = EXCLUDED.fetched_at`,
        [accountId, item.itemId, item.title, item.price ?? null, item.description ?? null, item.fetchedAt],
      );
    },

    async bumpBargainRound(accountId, chatId) {
      const { rows } = await sql.query<{ rounds: number }>(
        `INSERT INTO bargain_rounds AS b (account_id, chat_id, rounds) VALUES ($1, $2, 1)
         ON CONFLICT (account_id, chat_id) DO UPDATE SET rounds = b.rounds + 1
         RETURNING rounds`,
        [accountId, chatId],
      );
      const row = rows[0];
      if (!row) throw new Error('bumpBargainRound: no row returned');
      return Number(row.rounds);
    },
  };
}
