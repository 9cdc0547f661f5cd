// One suite, two backends: PGlite in a temp folder and a real PostgreSQL server
// (TEST_DATABASE_URL, set by scripts/with-postgres.sh / `make test`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Sql, Store } from '../src/store/index.js';
import {
  appliedVersions,
  checkMigrations,
  createStore,
  migrate,
  migrations,
  openSql,
} from '../src/store/index.js';

const rnd = () => randomBytes(5).toString('hex');
const acct = () => `acct-${rnd()}`;
const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const at = (sec: number) => new Date(t0 + sec * 1000);

interface Backend {
  kind: 'pglite' | 'postgres';
  setup(): Promise<void>;
  /** Opens the run's database (again). */
  open(): Promise<Sql>;
  /** A second, empty database of the same kind, opened `n` times (like n processes), or null. */
  freshShared(n: number): Promise<{ sqls: Sql[]; drop(): Promise<void> } | null>;
  /** The URL of the run's database (postgres only). */
  url?(): string;
  teardown(): Promise<void>;
}

function pgliteBackend(): Backend {
  let dir = '';
  return {
    kind: 'pglite',
    async setup() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xianyu-store-'));
    },
    open: () => openSql({ dataDir: path.join(dir, 'data') }),
    async freshShared(n) {
      // PGlite allows one process per folder: only the in-process case exists.
      if (n > 1) return null;
      const sub = fs.mkdtempSync(path.join(dir, 'fresh-'));
      const sqls = [await openSql({ dataDir: sub })];
      return { sqls, drop: () => sqls[0]!.close() };
    },
    async teardown() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresBackend(adminUrl: string): Backend {
  const dbUrl = (name: string) => {
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    return u.toString();
  };
  const admin = new pg.Pool({ connectionString: adminUrl, max: 2 });
  const created: string[] = [];
  const createDb = async () => {
    const name = `xianyu_store_${rnd()}`;
    await admin.query(`CREATE DATABASE ${name}`);
    created.push(name);
    return name;
  };
  let main = '';
  return {
    kind: 'postgres',
    async setup() {
      main = await createDb();
    },
    open: () => openSql({ url: dbUrl(main), dataDir: '/nonexistent-unused' }),
    async freshShared(n) {
      const name = await createDb();
      const sqls = await Promise.all(
        Array.from({ length: n }, () => openSql({ url: dbUrl(name), dataDir: '/nonexistent-unused' })),
      );
      return {
        sqls,
        drop: async () => {
          await Promise.all(sqls.map((s) => s.close()));
        },
      };
    },
    url: () => dbUrl(main),
    async teardown() {
      for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

function storeSuite(name: string, backend: Backend) {
  describe(name, { timeout: 120_000 }, () => {
    let sql: Sql;
    let store: Store;

    before(async () => {
      await backend.setup();
      sql = await backend.open();
      store = await createStore(sql);
    });
    after(async () => {
      await store?.close();
      await backend.teardown();
    });

    it('applies every migration once and is idempotent', async () => {
      assert.equal(sql.kind, backend.kind);
      assert.deepEqual(
        await appliedVersions(sql),
        migrations.map((m) => m.version),
      );
      assert.deepEqual(await migrate(sql), [], 'a second run applies nothing');
      const again = await createStore(sql); // same Sql: must not close it
      await again.ping();
      const { rows } = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      assert.equal(rows[0]?.n, migrations.length);
    });

    it('rejects a shipped migration that was renamed', async () => {
      const renamed = migrations.map((m, i) => (i === 0 ? { ...m, name: `${m.name} (edited)` } : m));
      await assert.rejects(migrate(sql, renamed), /never be edited or renumbered/);
      assert.throws(() => checkMigrations([{ version: 2, name: 'x', sql: '' }]), /expected 1/);
    });

    it('concurrent migrators in one process apply each migration once', async () => {
      const fresh = await backend.freshShared(1);
      assert.ok(fresh);
      try {
        const [a, b, c] = await Promise.all([
          migrate(fresh.sqls[0]!),
          migrate(fresh.sqls[0]!),
          migrate(fresh.sqls[0]!),
        ]);
        assert.deepEqual(
          [...a!, ...b!, ...c!].sort((x, y) => x - y),
          migrations.map((m) => m.version),
        );
      } finally {
        await fresh.drop();
      }
    });

    it('two processes migrating one PostgreSQL at once both succeed, with one application', {
      skip: backend.kind === 'pglite' ? 'PGlite is single-process' : false,
    }, async () => {
      const fresh = await backend.freshShared(4);
      assert.ok(fresh);
      try {
        // Four pools on one fresh database, like four workload processes starting together.
        const applied = await Promise.all(fresh.sqls.map((s) => migrate(s)));
        assert.deepEqual(
          applied.flat().sort((x, y) => x - y),
          migrations.map((m) => m.version),
          'each version applied by exactly one migrator',
        );
        const [one, two] = fresh.sqls as [Sql, Sql];
        assert.deepEqual(
          await appliedVersions(one),
          migrations.map((m) => m.version),
        );
        const s = await createStore(two);
        assert.equal(await s.markOnce('a', 'c', 'k'), true);
      } finally {
        await fresh.drop();
      }
    });

    it('logs a message once per id and upserts the conversation', async () => {
      const a = acct();
      const base = { accountId: a, chatId: 'c1', direction: 'in' as const, senderId: 'buyer1', itemId: 'i1' };
      assert.equal(await store.recordMessage({ ...base, messageId: 'm1', text: 'hello', at: at(10) }), true);
      assert.equal(
        await store.recordMessage({ ...base, messageId: 'm1', text: 'changed', at: at(99) }),
        false,
        'duplicate id',
      );
      // Same message id under another account is another message.
      assert.equal(
        await store.recordMessage({ ...base, accountId: acct(), messageId: 'm1', text: 'x', at: at(10) }),
        true,
      );
      assert.equal(
        await store.recordMessage({
          accountId: a,
          chatId: 'c1',
          messageId: 'm2',
          direction: 'out',
          senderId: 'seller',
          text: 'hi, still available',
          source: 'keyword',
          at: at(20),
        }),
        true,
      );
      const turns = await store.recentTurns(a, 'c1', 10);
      assert.deepEqual(
        turns.map((t) => [t.direction, t.text]),
        [
          ['in', 'hello'],
          ['out', 'hi, still available'],
        ],
      );
      assert.equal(turns[0]?.at.getTime(), at(10).getTime());

      const conv = await sql.query<Record<string, unknown>>(
        `SELECT buyer_id, item_id, first_seen, last_message_at FROM conversations
         WHERE account_id = $1 AND chat_id = $2`,
        [a, 'c1'],
      );
      assert.equal(conv.rows.length, 1);
      const c = conv.rows[0]!;
      assert.equal(c.buyer_id, 'buyer1', 'the outbound message does not replace the buyer');
      assert.equal(c.item_id, 'i1');
      assert.equal((c.first_seen as Date).getTime(), at(10).getTime());
      assert.equal((c.last_message_at as Date).getTime(), at(20).getTime());

      // A late-arriving older message does not move last_message_at backwards.
      await store.recordMessage({ ...base, messageId: 'm0', text: 'earlier', at: at(5) });
      const c2 = await sql.query<{ first_seen: Date; last_message_at: Date }>(
        'SELECT first_seen, last_message_at FROM conversations WHERE account_id = $1 AND chat_id = $2',
        [a, 'c1'],
      );
      assert.equal(c2.rows[0]?.last_message_at.getTime(), at(20).getTime());
      assert.equal(c2.rows[0]?.first_seen.getTime(), at(5).getTime());
      const src = await sql.query<{ source: string | null }>(
        'SELECT source FROM messages WHERE account_id = $1 AND message_id = $2',
        [a, 'm2'],
      );
      assert.equal(src.rows[0]?.source, 'keyword');
    });

    it('records one of many concurrent copies of a message', async () => {
      const a = acct();
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          store.recordMessage({
            accountId: a,
            chatId: 'c',
            messageId: 'dup',
            direction: 'in',
            senderId: 'b',
            text: 'once',
            at: at(1),
          }),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal((await store.recentTurns(a, 'c', 10)).length, 1);
    });

    it('recordMessages writes a batch in one statement, skipping duplicates, and upserts conversations', async () => {
      const a = acct();
      const m = (chatId: string, id: string, sec: number, direction: 'in' | 'out', senderId: string) => ({
        accountId: a,
        chatId,
        messageId: id,
        direction,
        senderId,
        text: `t-${id}`,
        itemId: 'item-1',
        at: at(sec),
      });
      await store.recordMessage(m('c1', 'b0', 1, 'in', 'buyer'));
      await store.recordMessages([
        m('c1', 'b0', 1, 'in', 'buyer'), // already logged
        m('c1', 'b1', 2, 'in', 'buyer'),
        m('c1', 'b2', 3, 'out', 'seller'),
        m('c2', 'b3', 4, 'in', 'buyer2'),
        m('c2', 'b3', 4, 'in', 'buyer2'), // duplicate inside the batch
        { ...m('c2', 'b4', 5, 'out', 'seller'), itemId: undefined, source: 'keyword' },
      ]);
      await store.recordMessages([]);
      assert.deepEqual(
        (await store.recentTurns(a, 'c1', 10)).map((t) => t.text),
        ['t-b0', 't-b1', 't-b2'],
      );
      assert.deepEqual(
        (await store.recentTurns(a, 'c2', 10)).map((t) => [t.direction, t.text]),
        [
          ['in', 't-b3'],
          ['out', 't-b4'],
        ],
      );
      const { rows } = await sql.query<{ chat_id: string; buyer_id: string; n: number }>(
        `SELECT c.chat_id, c.buyer_id, (SELECT count(*)::int FROM messages m WHERE m.account_id = c.account_id AND m.chat_id = c.chat_id) AS n
         FROM conversations c WHERE c.account_id = $1 ORDER BY c.chat_id`,
        [a],
      );
      assert.deepEqual(
        rows.map((r) => [r.chat_id, r.buyer_id, r.n]),
        [
          ['c1', 'buyer', 3],
          ['c2', 'buyer2', 2],
        ],
      );
    });

    it('recentTurns returns the last N, oldest first, of that chat only', async () => {
      const a = acct();
      const log = (chatId: string, id: string, sec: number, direction: 'in' | 'out' = 'in') =>
        store.recordMessage({
          accountId: a,
          chatId,
          messageId: id,
          direction,
          senderId: 's',
          text: id,
          at: at(sec),
        });
      // Inserted out of time order on purpose.
      for (const [id, sec] of [
        ['t3', 3],
        ['t1', 1],
        ['t5', 5],
        ['t2', 2],
        ['t4', 4],
      ] as const) {
        await log('chat', id, sec, sec % 2 ? 'in' : 'out');
      }
      await log('other', 'o9', 9);
      const texts = async (n: number) => (await store.recentTurns(a, 'chat', n)).map((t) => t.text);
      assert.deepEqual(await texts(3), ['t3', 't4', 't5']);
      assert.deepEqual(await texts(100), ['t1', 't2', 't3', 't4', 't5']);
      assert.deepEqual(await texts(1), ['t5']);
      assert.deepEqual(await texts(0), []);
      const turns = await store.recentTurns(a, 'chat', 2);
      assert.deepEqual(
        turns.map((t) => t.direction),
        ['out', 'in'],
      );
      assert.ok(turns.every((t) => t.at instanceof Date));
      assert.deepEqual(await store.recentTurns(acct(), 'chat', 10), [], 'other account sees nothing');
      // Same timestamp: insertion order decides.
      await log('tie', 'x', 7);
      await log('tie', 'y', 7);
      await log('tie', 'z', 7);
      assert.deepEqual(
        (await store.recentTurns(a, 'tie', 2)).map((t) => t.text),
        ['y', 'z'],
      );
    });

    it('takeover: unset, set, read, overwrite', async () => {
      const a = acct();
      assert.equal(await store.takeoverUntil(a, 'c'), null);
      await store.setTakeover(a, 'c', at(600));
      assert.equal((await store.takeoverUntil(a, 'c'))?.getTime(), at(600).getTime());
      await store.setTakeover(a, 'c', at(60)); // overwrite, even with an earlier time
      assert.equal((await store.takeoverUntil(a, 'c'))?.getTime(), at(60).getTime());
      assert.equal(await store.takeoverUntil(a, 'other-chat'), null);
      assert.equal(await store.takeoverUntil(acct(), 'c'), null);
    });

    it('markOnce is true only the first time, also under concurrency', async () => {
      const a = acct();
      assert.equal(await store.markOnce(a, 'c', 'greeting'), true);
      assert.equal(await store.markOnce(a, 'c', 'greeting'), false);
      assert.equal(await store.markOnce(a, 'c', 'other-key'), true);
      assert.equal(await store.markOnce(a, 'c2', 'greeting'), true);
      assert.equal(await store.markOnce(acct(), 'c', 'greeting'), true);
      const results = await Promise.all(Array.from({ length: 10 }, () => store.markOnce(a, 'race', 'k')));
      assert.equal(results.filter((r) => r === true).length, 1);
      assert.equal(results.filter((r) => r === false).length, 9);
    });

    it('items round trip and overwrite', async () => {
      const a = acct();
      assert.equal(await store.getItem(a, 'i1'), null);
      const full = {
        itemId: 'i1',
        title: '九成新 iPhone 13 128G',
        price: '2999.00',
        description: '无拆修，电池 88%',
        fetchedAt: at(100),
      };
      await store.putItem(a, full);
      assert.deepEqual(await store.getItem(a, 'i1'), full);
      const bare = { itemId: 'i1', title: 'renamed', fetchedAt: at(200) };
      await store.putItem(a, bare);
      assert.deepEqual(await store.getItem(a, 'i1'), bare, 'optional fields cleared, not kept');
      assert.equal(await store.getItem(acct(), 'i1'), null);
    });

    it('bargain rounds count atomically', async () => {
      const a = acct();
      assert.equal(await store.bumpBargainRound(a, 'c'), 1);
      assert.equal(await store.bumpBargainRound(a, 'c'), 2);
      assert.equal(await store.bumpBargainRound(a, 'other'), 1);
      const got = await Promise.all(Array.from({ length: 20 }, () => store.bumpBargainRound(a, 'race')));
      assert.deepEqual(
        got.sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(await store.bumpBargainRound(a, 'race'), 21);
    });

    it('transaction commits, and rolls back when fn throws', async () => {
      const a = acct();
      const out = await sql.transaction(async (tx) => {
        await tx.query('INSERT INTO once_marks (account_id, chat_id, key) VALUES ($1, $2, $3)', [
          a,
          'c',
          'kept',
        ]);
        const { rows } = await tx.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM once_marks WHERE account_id = $1',
          [a],
        );
        return rows[0]?.n;
      });
      assert.equal(out, 1);
      let leaked: { query: Sql['query'] } | undefined;
      const boom = new Error('boom');
      await assert.rejects(
        sql.transaction(async (tx) => {
          leaked = tx;
          await tx.query('INSERT INTO once_marks (account_id, chat_id, key) VALUES ($1, $2, $3)', [
            a,
            'c',
            'gone',
          ]);
          await tx.query('INSERT INTO takeovers (account_id, chat_id, until) VALUES ($1, $2, $3)', [
            a,
            'c',
            at(1),
          ]);
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await store.markOnce(a, 'c', 'kept'), false, 'committed row is there');
      assert.equal(await store.markOnce(a, 'c', 'gone'), true, 'rolled-back row is not');
      assert.equal(await store.takeoverUntil(a, 'c'), null);
      await assert.rejects(leaked!.query('SELECT 1'), /transaction already finished/);
      // A failing statement also rolls back, and the connection stays usable.
      await assert.rejects(
        sql.transaction(async (tx) => {
          await tx.query('INSERT INTO once_marks (account_id, chat_id, key) VALUES ($1, $2, $3)', [
            a,
            'c',
            'bad',
          ]);
          await tx.query('SELECT * FROM no_such_table');
        }),
        /no_such_table/,
      );
      assert.equal(await store.markOnce(a, 'c', 'bad'), true);
      await store.ping();
    });

    if (backend.kind === 'postgres') {
      it('statements go on unprepared when the server forgets prepared ones (a pooler in transaction mode)', async () => {
        const warnings: string[] = [];
        const one = await openSql({
          url: backend.url!(),
          dataDir: '/nonexistent',
          poolSize: 1,
          onUnprepared: (m) => warnings.push(m),
        });
        try {
          const q = 'SELECT $1::int + 1 AS n';
          assert.deepEqual((await one.query(q, [1])).rows, [{ n: 2 }]);
          // What PgBouncer's transaction mode amounts to: the server connection no longer has the
          // statement the client prepared on it.
          await one.query('DEALLOCATE ALL');
          assert.deepEqual((await one.query(q, [2])).rows, [{ n: 3 }]);
          assert.deepEqual((await one.query(q, [3])).rows, [{ n: 4 }]);
          assert.equal(warnings.length, 1);
          assert.match(warnings[0]!, /pooler/);
        } finally {
          await one.close();
        }
      });

      it('a wrong database on a live server: error names database.url and the host, not the password', async () => {
        const u = new URL(backend.url!());
        u.username = 'postgres';
        u.password = 'Sup3rS3cretPw';
        u.pathname = '/no_such_database_here';
        const err = await openSql({ url: u.toString(), dataDir: '/nonexistent' }).then(
          () => assert.fail('expected an error'),
          (e: Error) => e,
        );
        assert.match(err.message, /database\.url/);
        assert.match(err.message, new RegExp(`${u.hostname}:${u.port}`));
        assert.match(err.message, /no_such_database_here/);
        assert.doesNotMatch(err.message + String(err.stack), /Sup3rS3cretPw/);
      });
    }

    it('data survives closing and reopening', async () => {
      const a = acct();
      await store.recordMessage({
        accountId: a,
        chatId: 'c',
        messageId: 'persist',
        direction: 'in',
        senderId: 'b',
        text: '还在吗',
        at: at(1),
      });
      await store.setTakeover(a, 'c', at(300));
      await store.markOnce(a, 'c', 'k');
      await store.bumpBargainRound(a, 'c');
      await store.putItem(a, { itemId: 'i', title: 'T', fetchedAt: at(2) });
      await store.close();
      await store.close(); // idempotent

      sql = await backend.open();
      store = await createStore(sql);
      assert.deepEqual(await migrate(sql), []);
      assert.deepEqual(
        (await store.recentTurns(a, 'c', 5)).map((t) => t.text),
        ['还在吗'],
      );
      assert.equal((await store.takeoverUntil(a, 'c'))?.getTime(), at(300).getTime());
      assert.equal(await store.markOnce(a, 'c', 'k'), false);
      assert.equal(await store.bumpBargainRound(a, 'c'), 2);
      assert.equal((await store.getItem(a, 'i'))?.title, 'T');
    });
  });
}

storeSuite('store on PGlite', pgliteBackend());

const pgUrl = process.env.TEST_DATABASE_URL;
if (pgUrl) {
  storeSuite('store on PostgreSQL', postgresBackend(pgUrl));
} else if (process.env.SKIP_POSTGRES === '1') {
  it('store on PostgreSQL', { skip: 'SKIP_POSTGRES=1: PostgreSQL variant skipped on request' }, () => {});
} else {
  it('store on PostgreSQL', () => {
    assert.fail(
      'TEST_DATABASE_URL is not set, so the PostgreSQL half of this suite cannot run. Run it through ' +
        '`make test` or `scripts/with-postgres.sh node --import tsx --test workload/test/store.test.ts` ' +
        '(or set SKIP_POSTGRES=1 to skip it explicitly).',
    );
  });
}

describe('openSql errors', () => {
  const secret = 'hunter2-pw';
  const expectError = async (url: string, ...patterns: RegExp[]) => {
    const err = await openSql({ url, dataDir: '/nonexistent', connectTimeoutMs: 5000 }).then(
      () => assert.fail('expected an error'),
      (e: Error) => e,
    );
    for (const p of patterns) assert.match(err.message, p);
    assert.doesNotMatch(`${err.message}\n${err.stack}`, new RegExp(secret));
    return err;
  };

  it('unreachable server names database.url and the host, hides the password', async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    await expectError(`postgres://seller:${secret}@127.0.0.1:1/xianyu`, /database\.url/, /127\.0\.0\.1:1\b/);
  });

  it('unknown host', async () => {
    await expectError(
      `postgres://seller:${secret}@no-such-host.invalid:5432/db`,
      /database\.url/,
      /no-such-host\.invalid/,
    );
  });

  it('not a postgres URL', async () => {
    await expectError(
      `mysql://seller:${secret}@db.example:3306/x`,
      /database\.url/,
      /db\.example/,
      /postgres:\/\//,
    );
  });

  it('not a URL at all', async () => {
    await expectError(`postgres://seller:${secret}@[db-host`, /database\.url/, /not a valid URL/);
    await expectError(`seller:${secret}@db-host:5432/x`, /database\.url/, /postgres:\/\//);
  });
});

describe('PGlite data folder lock', { timeout: 120_000 }, () => {
  let root = '';
  let dir = '';
  const lockFile = () => path.join(dir, 'xianyu-workload.lock');
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'xianyu-lock-'));
    dir = path.join(root, 'data');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('refuses a second open in the same process and releases on close', async () => {
    const first = await openSql({ dataDir: dir });
    try {
      assert.ok(fs.existsSync(lockFile()));
      await assert.rejects(openSql({ dataDir: dir }), /already open in this process/);
      await assert.rejects(openSql({ dataDir: `${dir}/` }), /already open in this process/);
    } finally {
      await first.close();
    }
    assert.equal(fs.existsSync(lockFile()), false, 'lock removed on close');
  });

  it('refuses a folder held by another live process', async () => {
    const { spawn } = await import('node:child_process');
    const sqlModule = new URL('../src/store/sql.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `const { openSql } = await import(${JSON.stringify(sqlModule)});
         const s = await openSql({ dataDir: ${JSON.stringify(dir)} });
         await s.query('CREATE TABLE IF NOT EXISTS held (x int)');
         process.stdout.write('ready\\n');
         process.stdin.resume();
         process.stdin.on('end', async () => { await s.close(); process.exit(0); });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      const err = await openSql({ dataDir: dir }).then(
        () => assert.fail('expected the lock to hold'),
        (e: Error) => e,
      );
      assert.match(err.message, new RegExp(`in use by process ${child.pid}`));
      assert.match(err.message, /one process per data folder/);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      await exited;
    }
    const after = await openSql({ dataDir: dir });
    const { rows } = await after.query<{ n: number }>('SELECT count(*)::int AS n FROM held');
    assert.equal(rows[0]?.n, 0);
    await after.close();
  });

  it('takes over a lock left by a dead process or an old pod', async () => {
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    const host = os.hostname();
    fs.writeFileSync(lockFile(), JSON.stringify({ pid: Number(dead), host, since: 'x' }));
    await (await openSql({ dataDir: dir })).close();

    // Another host's lock: honoured while fresh, taken over once it is no longer refreshed.
    fs.writeFileSync(lockFile(), JSON.stringify({ pid: 1, host: 'old-pod-xyz', since: 'x' }));
    await assert.rejects(openSql({ dataDir: dir }), /in use by process 1 on old-pod-xyz/);
    const old = new Date(Date.now() - 5 * 60_000);
    fs.utimesSync(lockFile(), old, old);
    const s = await openSql({ dataDir: dir });
    await s.close();
  });
});
