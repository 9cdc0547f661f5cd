// The thin SQL layer: one `Sql` over either a PostgreSQL pool (`pg`) or an embedded PGlite
// database persisted in a folder. Both speak the same SQL; callers never see which one runs.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PGlite, Transaction as PGliteTransaction } from '@electric-sql/pglite';
import pg from 'pg';
import type { Queryable, Sql } from './types.js';

export interface OpenSqlOptions {
  /** `postgres://` URL (config `database.url`); when absent, PGlite in `dataDir`. */
  url?: string;
  /** PGlite data folder (config `dataDir`); created when missing. */
  dataDir: string;
  /** pg pool size (default 10). */
  poolSize?: number;
  /** How long to wait for the first PostgreSQL connection (default 10 s). */
  connectTimeoutMs?: number;
  /** Called with errors of idle pooled connections (e.g. the server restarted); default: ignored. */
  onIdleError?: (err: Error) => void;
  /** Called once when the server lost our prepared statements (a pooler such as PgBouncer in
   * transaction mode between us): from then on statements are sent unprepared. */
  onUnprepared?: (message: string) => void;
}

type Row = Record<string, unknown>;

/** Opens the database named by the config: PostgreSQL when `url` is given, else PGlite. */
export async function openSql(opts: OpenSqlOptions): Promise<Sql> {
  if (opts.url !== undefined && opts.url.trim() !== '') return openPostgres(opts.url.trim(), opts);
  return openPGlite(opts.dataDir);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** Where a URL points, for messages: `host:port/database`, never the user's password. */
export function describeUrl(url: URL): string {
  const host = url.hostname || url.searchParams.get('host') || 'localhost';
  const port = url.port || '5432';
  const db = decodeURIComponent(url.pathname.replace(/^\//, '')) || '(default database)';
  return `${host}:${port}/${db}`;
}

/** The URL with its password replaced, for anything that gets printed. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

function parsePostgresUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the value: it may well contain a password.
    throw new Error('database.url is not a valid URL; expected postgres://user:password@host:5432/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    // The scheme is not echoed: in `user:password@host` without a scheme, it is the user name.
    const host = url.hostname ? ` (host ${url.hostname})` : '';
    throw new Error(`database.url must be a postgres:// or postgresql:// URL${host}`);
  }
  return url;
}

/** Removes every secret part of the URL from a message (drivers may quote parts of it). */
function scrubSecrets(message: string, url: URL): string {
  let out = message;
  const secrets = [url.password, safeDecode(url.password), url.searchParams.get('password') ?? ''];
  for (const s of secrets) if (s && s.length > 0) out = out.split(s).join('***');
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const WARM_CONNECTIONS = 3;

/** Statement names by text; the texts are the code's constants, so the map stays small. */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `x${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

async function openPostgres(raw: string, opts: OpenSqlOptions): Promise<Sql> {
  const url = parsePostgresUrl(raw);
  const where = describeUrl(url);
  const max = opts.poolSize ?? 10;
  // A few connections are opened at start and kept: a new PostgreSQL backend (fork, cold catalog
  // caches) costs tens to hundreds of ms, which the first order after an idle spell would wait
  // for. Only a few: many accounts share one server, and idle connections above `min` close.
  const min = Math.min(max, WARM_CONNECTIONS);
  const pool = new pg.Pool({
    connectionString: raw,
    max,
    min,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
  });
  // Without a listener, an idle client's error (server restart, network blip) crashes the process.
  pool.on('error', (err) => opts.onIdleError?.(new Error(scrubSecrets(err.message, url))));
  // Prepared statements (see `run`) get one generic plan per connection instead of being planned
  // again on every call: the statements are short key lookups written to plan well without
  // their values, and planning the CTE statements cost more server CPU than running them.
  // Queued before any other query of the new connection, so it always applies.
  pool.on('connect', (client) => {
    client.query('SET plan_cache_mode = force_generic_plan').catch(() => {});
  });
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => {});
    const e = err as Error & { code?: string };
    const reason = scrubSecrets(e.message || e.code || String(err), url);
    throw new Error(`database.url: cannot connect to PostgreSQL at ${where}: ${reason}`);
  }
  // Best effort: a server short of connection slots still gets them opened on demand later.
  const warm = await Promise.allSettled(Array.from({ length: min }, () => pool.connect()));
  for (const r of warm) if (r.status === 'fulfilled') r.value.release();

  let prepare = true;
  const run = async <R>(q: pg.Pool | pg.PoolClient, text: string, params?: unknown[]) => {
    // Without parameters pg uses the simple protocol, which also runs multi-statement scripts
    // (migrations); a script yields one result per statement: the last one is the answer.
    // With parameters the statement is prepared once per connection under a name derived from
    // its text: the server parses and plans the hot statements (claim, upsert) once, not per
    // call, which is most of its CPU per delivery.
    const send = () =>
      params && params.length > 0
        ? q.query(prepare ? { name: statementName(text), text, values: params } : { text, values: params })
        : q.query(text);
    let res: pg.QueryResult | pg.QueryResult[];
    try {
      res = (await send()) as pg.QueryResult | pg.QueryResult[];
    } catch (err) {
      // 26000: the server does not know a statement this connection prepared (a pooler gave us
      // another server connection, or DISCARD ALL ran). Prepared statements cannot work here.
      if (!prepare || (err as { code?: unknown }).code !== '26000') throw err;
      prepare = false;
      opts.onUnprepared?.(
        'the database forgot prepared statements (a pooler in transaction mode?): sending statements unprepared',
      );
      if (q !== pool) throw err; // inside a transaction, which the error aborted: the caller retries
      res = (await send()) as pg.QueryResult | pg.QueryResult[];
    }
    const last = Array.isArray(res) ? res[res.length - 1] : res;
    return { rows: (last?.rows ?? []) as R[] };
  };

  let closed = false;
  return {
    kind: 'postgres',
    query: <R = Row>(text: string, params?: unknown[]) => run<R>(pool, text, params),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let done = false;
      const tx: Queryable = {
        query: <R = Row>(text: string, params?: unknown[]) => {
          if (done) return Promise.reject(new Error('transaction already finished'));
          return run<R>(client, text, params);
        },
      };
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const out = await fn(tx);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable: destroy it instead of returning it to the pool.
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        done = true;
        client.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PGlite

const LOCK_FILE = 'xianyu-workload.lock';
/** A lock written by another host counts as abandoned when not refreshed for this long. */
const FOREIGN_LOCK_STALE_MS = 60_000;
const LOCK_REFRESH_MS = 15_000;
/** Data folders this process holds open (PGlite's own instances do not see each other). */
const openHere = new Set<string>();

interface LockInfo {
  pid: number;
  host: string;
  since: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite runs PostgreSQL in single-user mode and takes no lock on its folder: two processes
 * opening one folder silently diverge and corrupt it (checked with 0.5.16). So the folder gets
 * a lock file with the holder's pid and host. A lock is stale when its process is gone (same
 * host) or, for another host (a previous pod on the same volume), when it has not been
 * refreshed for a minute.
 */
function acquireLock(dir: string): { release(): void } {
  const file = path.join(dir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      const timer = setInterval(() => {
        const now = new Date();
        try {
          fs.utimesSync(file, now, now);
        } catch {
          // Folder gone or read-only: nothing useful to do here; queries will report it.
        }
      }, LOCK_REFRESH_MS);
      timer.unref();
      return {
        release() {
          clearInterval(timer);
          try {
            const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
            if (held.pid === me.pid && held.host === me.host) fs.rmSync(file, { force: true });
          } catch {
            // Already removed.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let held: LockInfo | undefined;
    let mtime = 0;
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
      mtime = fs.statSync(file).mtimeMs;
    } catch {
      // Unreadable or half-written: treat as stale below only if it is old.
      try {
        mtime = fs.statSync(file).mtimeMs;
      } catch {
        continue; // Removed meanwhile: try again.
      }
    }
    const sameHost = held?.host === me.host;
    let stale: boolean;
    if (held && sameHost) {
      // Our own pid can only be in there if a previous incarnation (container restart) left it.
      stale = held.pid === me.pid ? true : !pidAlive(held.pid);
    } else {
      stale = Date.now() - mtime > FOREIGN_LOCK_STALE_MS;
    }
    if (!stale) {
      const who = held ? `process ${held.pid} on ${held.host} (since ${held.since})` : 'another process';
      throw new Error(
        `dataDir ${dir} is in use by ${who}: PGlite allows one process per data folder. ` +
          `Stop the other process, give this one another dataDir, or use database.url (PostgreSQL). ` +
          `If no such process exists, remove ${file}.`,
      );
    }
    fs.rmSync(file, { force: true });
  }
  throw new Error(`dataDir ${dir}: could not take the lock file ${file}`);
}

async function openPGlite(dataDir: string): Promise<Sql> {
  const dir = path.resolve(dataDir);
  if (openHere.has(dir)) {
    throw new Error(`dataDir ${dir} is already open in this process: PGlite allows one instance per folder`);
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new Error(`dataDir ${dir}: cannot create the folder: ${(err as Error).message}`);
  }
  openHere.add(dir);
  let lock: { release(): void };
  try {
    lock = acquireLock(dir);
  } catch (err) {
    openHere.delete(dir);
    throw err;
  }
  let db: PGlite;
  try {
    // Loaded only when used: a workload on a PostgreSQL server never pays for the WASM build.
    const { PGlite } = await import('@electric-sql/pglite');
    db = await PGlite.create(dir);
  } catch (err) {
    lock.release();
    openHere.delete(dir);
    throw new Error(`dataDir ${dir}: cannot open the PGlite database: ${(err as Error).message}`);
  }

  // Without parameters, use the simple protocol (`exec`), as pg does: it runs multi-statement
  // scripts too; the last statement's rows are the answer.
  const run = async <R>(q: PGlite | PGliteTransaction, text: string, params?: unknown[]) => {
    if (params && params.length > 0) {
      const res = await q.query<R>(text, params);
      return { rows: res.rows };
    }
    const results = await q.exec(text);
    return { rows: (results[results.length - 1]?.rows ?? []) as R[] };
  };

  let closed = false;
  return {
    kind: 'pglite',
    query: <R = Row>(text: string, params?: unknown[]) => run<R>(db, text, params),
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      // PGlite serialises: other queries wait until this transaction ends, so fn must use `tx`
      // only (a query on the Sql itself from inside fn would wait forever).
      return db.transaction(async (t) => {
        let done = false;
        try {
          return await fn({
            query: <R = Row>(text: string, params?: unknown[]) => {
              if (done) return Promise.reject(new Error('transaction already finished'));
              return run<R>(t, text, params);
            },
          });
        } finally {
          done = true;
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        lock.release();
        openHere.delete(dir);
      }
    },
  };
}
