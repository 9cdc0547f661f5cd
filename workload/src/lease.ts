import pg from 'pg';
import type { Logger } from './log.js';

// Only one process holds an account's IM session (and delivers its orders) at a time. On
// PostgreSQL the holder keeps a session-level advisory lock on a connection of its own: when the
// process dies, the server ends that connection and the lock is free at once, so a standby that
// polls for it takes over within `retryMs`. PGlite needs nothing more: its data folder is locked
// to one process already.

export interface AccountLease {
  readonly kind: 'advisory-lock' | 'single-process';
  readonly held: boolean;
  /** Resolves once this process holds the account; rejects when `stop()` ends the wait. */
  acquire(): Promise<void>;
  /** Called once if the lock connection breaks while held (the caller must stop serving). */
  onLost(cb: (err: Error) => void): void;
  stop(): Promise<void>;
}

export function singleProcessLease(): AccountLease {
  let held = false;
  return {
    kind: 'single-process',
    get held() {
      return held;
    },
    async acquire() {
      held = true;
    },
    onLost() {},
    async stop() {
      held = false;
    },
  };
}

export function advisoryLease(o: {
  url: string;
  accountId: string;
  log: Logger;
  retryMs?: number;
  pingMs?: number;
}): AccountLease {
  const retryMs = o.retryMs ?? 500;
  const pingMs = o.pingMs ?? 5_000;
  const key = `xianyu-account:${o.accountId}`;
  let client: pg.Client | undefined;
  let held = false;
  let stopped = false;
  let lostCb: ((err: Error) => void) | undefined;
  let ping: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const lost = (err: Error) => {
    if (!held || stopped) return;
    held = false;
    clearInterval(ping);
    o.log.error({ err }, 'account lease lost: the lock connection broke');
    lostCb?.(err);
  };

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: o.url, connectionTimeoutMillis: 10_000 });
    c.on('error', (err) => lost(err));
    c.on('end', () => lost(new Error('lock connection ended')));
    await c.connect();
    return c;
  };

  return {
    kind: 'advisory-lock',
    get held() {
      return held;
    },
    async acquire() {
      let waitingLogged = false;
      while (!stopped) {
        try {
          client ??= await connect();
          const { rows } = await client.query<{ ok: boolean }>(
            'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
            [key],
          );
          if (rows[0]?.ok) {
            held = true;
            ping = setInterval(() => {
              client?.query('SELECT 1').catch((err: Error) => lost(err));
            }, pingMs);
            ping.unref();
            o.log.info({ account: o.accountId }, 'account lease acquired: this process holds the account');
            return;
          }
          if (!waitingLogged) {
            waitingLogged = true;
            o.log.info({ account: o.accountId }, 'standby: another process holds the account; waiting');
          }
        } catch (err) {
          o.log.warn({ err }, 'account lease: cannot reach PostgreSQL; retrying');
          const c = client;
          client = undefined;
          await c?.end().catch(() => {});
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, retryMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      throw new Error('stopped while waiting for the account lease');
    },
    onLost(cb) {
      lostCb = cb;
    },
    async stop() {
      stopped = true;
      wake?.();
      clearInterval(ping);
      const c = client;
      client = undefined;
      held = false;
      // Closing the connection releases the lock.
      await c?.end().catch(() => {});
    },
  };
}
