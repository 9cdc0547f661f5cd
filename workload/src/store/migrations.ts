// Versioned schema migrations. Append new entries at the end with the next version number;
// never edit or renumber an entry once it has shipped (the name is checked against the record).
import type { Sql } from './types.js';

export interface Migration {
  version: number;
  name: string;
  /** One or more statements, run in one transaction. */
  sql: string;
}

// Every table is keyed by account_id first: many accounts may share one PostgreSQL database.
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'conversations, messages, takeovers, once marks, items, bargaining',
    sql: `
CREATE TABLE conversations (
  account_id      text        NOT NULL,
  chat_id         text        NOT NULL,
  buyer_id        text,
  item_id         text,
  first_seen      timestamptz NOT NULL,
  last_message_at timestamptz NOT NULL,
  PRIMARY KEY (account_id, chat_id)
);

CREATE TABLE messages (
  account_id text        NOT NULL,
  chat_id    text        NOT NULL,
  message_id text        NOT NULL,
  direction  text        NOT NULL CHECK (direction IN ('in', 'out')),
  sender_id  text        NOT NULL,
  text       text        NOT NULL,
  item_id    text,
  source     text,
  at         timestamptz NOT NULL,
  -- insertion order: breaks ties between messages with the same timestamp
  seq        bigint      GENERATED ALWAYS AS IDENTITY,
  UNIQUE (account_id, message_id)
);
CREATE INDEX messages_chat_at ON messages (account_id, chat_id, at, seq);

CREATE TABLE takeovers (
  account_id text        NOT NULL,
  chat_id    text        NOT NULL,
  until      timestamptz NOT NULL,
  PRIMARY KEY (account_id, chat_id)
);

CREATE TABLE once_marks (
  account_id text        NOT NULL,
  chat_id    text        NOT NULL,
  key        text        NOT NULL,
  at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, chat_id, key)
);

CREATE TABLE items (
  account_id  text        NOT NULL,
  item_id     text        NOT NULL,
  title       text        NOT NULL,
  price       text,
  description text,
  fetched_at  timestamptz NOT NULL,
  PRIMARY KEY (account_id, item_id)
);

CREATE TABLE bargain_rounds (
  account_id text    NOT NULL,
  chat_id    text    NOT NULL,
  rounds     integer NOT NULL,
  PRIMARY KEY (account_id, chat_id)
);
`,
  },
  {
    version: 2,
    name: 'orders, code pools, delivery units',
    sql: `
-- One row per order and account: status from trade messages (never backwards except into
-- refund/cancel) and where its delivery stands.
CREATE TABLE orders (
  account_id       text        NOT NULL,
  order_id         text        NOT NULL,
  chat_id          text,
  buyer_id         text,
  buyer_name       text,
  item_id          text,
  status           text        NOT NULL,
  status_at        timestamptz NOT NULL,
  paid_at          timestamptz,
  bargain          boolean     NOT NULL DEFAULT false,
  free_shipping_at timestamptz,
  quantity         integer     NOT NULL DEFAULT 1 CHECK (quantity >= 1),
  spec             text,
  amount           text,
  details_at       timestamptz,
  delivery_state   text        NOT NULL DEFAULT 'none',
  waiting_reason   text,
  rule             text,
  confirm_wanted   boolean,
  next_attempt_at  timestamptz,
  redeliver_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, order_id)
);
CREATE INDEX orders_open ON orders (account_id, delivery_state)
  WHERE delivery_state IN ('pending', 'waiting', 'delivering');
CREATE INDEX orders_chat ON orders (account_id, chat_id, status_at);

-- Codes of a named pool (shared by every account that names it). A code is free while
-- account_id is NULL; claiming sets (account_id, order_id, unit) in the transaction that
-- inserts the delivery unit.
CREATE TABLE pool_codes (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pool        text        NOT NULL,
  code        text        NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  withdrawn   boolean     NOT NULL DEFAULT false,
  account_id  text,
  order_id    text,
  unit        integer,
  claimed_at  timestamptz,
  UNIQUE (pool, code),
  UNIQUE (account_id, order_id, unit)
);
CREATE INDEX pool_codes_free ON pool_codes (pool, id) WHERE account_id IS NULL AND NOT withdrawn;

-- The last fully imported version of each pool file.
CREATE TABLE pool_files (
  pool        text        PRIMARY KEY,
  sha256      text        NOT NULL,
  lines       integer     NOT NULL,
  imported_at timestamptz NOT NULL
);

-- One row per order unit: claimed -> sent -> confirmed. The payload is the rendered message
-- (it holds the code); it never leaves the database except into the buyer's chat.
CREATE TABLE delivery_units (
  account_id    text        NOT NULL,
  order_id      text        NOT NULL,
  unit          integer     NOT NULL CHECK (unit >= 0),
  rule          text        NOT NULL,
  kind          text        NOT NULL CHECK (kind IN ('text', 'image')),
  code_id       bigint      UNIQUE REFERENCES pool_codes (id),
  payload       text        NOT NULL,
  state         text        NOT NULL CHECK (state IN ('claimed', 'sent', 'confirmed')),
  message_id    text,
  claimed_at    timestamptz NOT NULL,
  send_after    timestamptz NOT NULL,
  sent_at       timestamptz,
  confirmed_at  timestamptz,
  send_attempts integer     NOT NULL DEFAULT 0,
  redelivered   integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, order_id, unit)
);

-- Up to when each account's conversations were swept for missed trade cards.
CREATE TABLE order_sweeps (
  account_id  text        PRIMARY KEY,
  swept_until timestamptz NOT NULL
);
`,
  },
];

/**
 * Key of the transaction-scoped advisory lock that serialises migrators. Advisory locks are
 * per database, so workloads on other databases of the same server do not wait for each other.
 */
export const MIGRATION_LOCK_KEY = 0x7869_616e; // 'xian'

/** Throws when the list is not strictly increasing from 1 without gaps. */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration #${i} (${m.name}) has version ${m.version}, expected ${i + 1}`);
    }
  });
}

/**
 * Applies the migrations that the database has not seen yet, each in its own transaction that
 * first takes the migration advisory lock and then re-checks `schema_migrations`, so two
 * processes starting together against one PostgreSQL apply each migration exactly once.
 * Returns the versions this call applied.
 */
export async function migrate(sql: Sql, list: readonly Migration[] = migrations): Promise<number[]> {
  checkMigrations(list);
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`);
  });
  const applied: number[] = [];
  for (const m of list) {
    const did = await sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const { rows } = await tx.query<{ name: string }>(
        'SELECT name FROM schema_migrations WHERE version = $1',
        [m.version],
      );
      const done = rows[0];
      if (done) {
        if (done.name !== m.name) {
          throw new Error(
            `schema migration ${m.version} was applied as "${done.name}" but this build calls it "${m.name}": ` +
              'migrations must never be edited or renumbered once shipped',
          );
        }
        return false;
      }
      await tx.query(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (did) applied.push(m.version);
  }
  return applied;
}

/** Versions recorded in `schema_migrations`, ascending. */
export async function appliedVersions(sql: Sql): Promise<number[]> {
  const { rows } = await sql.query<{ version: number }>(
    'SELECT version FROM schema_migrations ORDER BY version',
  );
  return rows.map((r) => Number(r.version));
}
