// Durable facts of one workload, the same on PostgreSQL and PGlite.

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/** Thin SQL layer over `pg` or PGlite. */
export interface Sql extends Queryable {
  /** Runs fn in one transaction on one connection; rolls back when fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly kind: 'postgres' | 'pglite';
}

export interface LoggedMessage {
  accountId: string;
  chatId: string;
  messageId: string;
  direction: 'in' | 'out';
  senderId: string;
  text: string;
  itemId?: string;
  /** For outbound: keyword / ai / item / default / manual. */
  source?: string;
  at: Date;
}

export interface Turn {
  direction: 'in' | 'out';
  text: string;
  at: Date;
}

export interface ItemInfo {
  itemId: string;
  title: string;
  price?: string;
  description?: string;
  fetchedAt: Date;
}

export interface Store {
  readonly sql: Sql;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Logs a message and upserts its conversation; false when that message id was already logged. */
  recordMessage(m: LoggedMessage): Promise<boolean>;
  /** Logs many messages in one statement; duplicates are skipped. */
  recordMessages(batch: LoggedMessage[]): Promise<void>;
  /** The last `limit` turns of a chat, oldest first. */
  recentTurns(accountId: string, chatId: string, limit: number): Promise<Turn[]>;
  setTakeover(accountId: string, chatId: string, until: Date): Promise<void>;
  takeoverUntil(accountId: string, chatId: string): Promise<Date | null>;
  /** True the first time (accountId, chatId, key) is marked, false afterwards. */
  markOnce(accountId: string, chatId: string, key: string): Promise<boolean>;
  getItem(accountId: string, itemId: string): Promise<ItemInfo | null>;
  putItem(accountId: string, item: ItemInfo): Promise<void>;
  /** Increments and returns the bargaining round counter of a chat. */
  bumpBargainRound(accountId: string, chatId: string): Promise<number>;
}
