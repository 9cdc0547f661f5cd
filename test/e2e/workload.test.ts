import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  pollUntil,
  simEnv,
  startWorkloadProcess,
  type WorkloadProcess,
} from '../harness/workload-process.js';
import { type Seller, type Sim, startSim } from '../sim/index.js';

// The built workload as a separate process against the simulator over loopback sockets.

let sim: Sim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim.close();
});

function baseConfig(seller: Seller, over: Record<string, unknown> = {}) {
  return {
    account: { id: `e2e-${seller.unb}` },
    session: { registerSettleMs: 0, heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 1000 },
    reply: {
      debounceMs: 0,
      default: { text: '您好 {buyer_name}' },
      keywords: [{ match: ['发货'], reply: '自动发货，{item_title}' }],
    },
    ...over,
  };
}

function envFor(seller: Seller, extra: Record<string, string> = {}) {
  return {
    ...simEnv(sim, seller),
    ...extra,
  };
}

async function replyTo(seller: Seller, text: string, buyerId = '3200000001', itemId?: string) {
  const before = sim.sent(seller.unb).length;
  const { chatId } = await sim.buyerSays({
    sellerId: seller.unb,
    buyerId,
    buyerNick: '小王',
    text,
    ...(itemId ? { itemId } : {}),
  });
  return sim.waitFor(
    () =>
      sim
        .sent(seller.unb)
        .slice(before)
        .find((s) => s.chatId === chatId),
    10_000,
  );
}

const databases: [string, () => Record<string, string>][] = [
  ['PGlite', () => ({})],
  [
    'PostgreSQL',
    () => {
      const url = process.env.TEST_DATABASE_URL;
      if (!url)
        throw new Error('TEST_DATABASE_URL is not set: run through `make test` (scripts/with-postgres.sh)');
      return { DATABASE_URL: url };
    },
  ],
];

for (const [name, dbEnv] of databases) {
  describe(`workload end to end on ${name}`, () => {
    let seller: Seller;
    let itemId: string;
    let wl: WorkloadProcess;
    before(async () => {
      seller = sim.createSeller();
      itemId = sim.createItem({ sellerId: seller.unb, title: '激活码', price: '9.9' }).itemId;
      wl = await startWorkloadProcess({ config: baseConfig(seller), env: envFor(seller, dbEnv()) });
    });
    after(async () => {
      await wl?.stop('SIGKILL');
    });

    it('is live and ready, answers by keyword with item placeholders, and logs the decision', async () => {
      assert.equal((await wl.get('/health')).status, 200);
      assert.deepEqual((await wl.get('/ready')).json(), { ready: true });
      const sent = await replyTo(seller, '怎么发货', '3200000001', itemId);
      assert.equal(sent.text, '自动发货，激活码');
      assert.deepEqual(sent.toUserIds, ['3200000001']);
      const line = await wl.waitForLog((l) => l.decision === 'reply' && l.source === 'keyword');
      assert.match(String(line.rule), /keywords\[0\]/);
    });

    it('exposes metrics and status', async () => {
      await replyTo(seller, '你好', '3200000002', itemId);
      const m = (await wl.get('/metrics')).body;
      assert.match(m, /xianyu_connected\{account="[^"]+"\} 1/);
      assert.match(m, /xianyu_replies_sent_total\{[^}]*source="default"[^}]*\} [1-9]/);
      assert.match(m, /xianyu_reply_latency_seconds_count\{[^}]*\} [1-9]/);
      assert.match(m, /process_resident_memory_bytes/);
      const status = (await wl.get('/status')).json() as {
        session: { state: string; connectedSince: string };
      };
      assert.equal(status.session.state, 'registered');
      assert.ok(Date.parse(status.session.connectedSince) > 0);
    });

    // The PGlite folder belongs to the running process; the PostgreSQL server can be read beside it.
    if (name === 'PostgreSQL') {
      it('keeps the conversation log in the database (written behind the replies)', async () => {
        const client = new pg.Client({ connectionString: dbEnv().DATABASE_URL });
        await client.connect();
        try {
          const by = await pollUntil(async () => {
            const r = await client.query(
              'SELECT direction, count(*)::int AS n FROM messages WHERE account_id = $1 GROUP BY 1',
              [`e2e-${seller.unb}`],
            );
            const counts = Object.fromEntries(
              r.rows.map((x: { direction: string; n: number }) => [x.direction, x.n]),
            );
            return (counts.in ?? 0) >= 2 && (counts.out ?? 0) >= 2 ? counts : undefined;
          });
          assert.deepEqual(Object.keys(by).sort(), ['in', 'out']);
        } finally {
          await client.end();
        }
      });
    }
  });
}

describe('workload failure states', () => {
  it('risk control: /ready 503 risk_control, punish URL logged, no hammering', async () => {
    const seller = sim.createSeller();
    sim.inject.riskControl(seller.unb, true);
    const wl = await startWorkloadProcess({
      config: baseConfig(seller),
      env: envFor(seller),
      waitReady: false,
    });
    try {
      const line = await wl.waitForLog((l) => typeof l.punishUrl === 'string');
      assert.match(String(line.punishUrl), /punish/);
      const ready = await pollUntil(async () => {
        const r = await wl.get('/ready');
        return r.status === 503 && (r.json() as { reason: string }).reason === 'risk_control' ? r : undefined;
      });
      const body = ready.json() as { nextRetryAt: string };
      assert.ok(Date.parse(body.nextRetryAt) - Date.now() >= 55_000, `retry too soon: ${body.nextRetryAt}`);
      const tokenCalls = () =>
        sim
          .mtopCalls()
          .filter(
            (c) => c.api === 'mtop.taobao.idlemessage.pc.login.token' && c.cookieHeader.includes(seller.unb),
          );
      const n = tokenCalls().length;
      await wl.get('/health');
      assert.equal(tokenCalls().length, n, 'no token call while backing off');
    } finally {
      await wl.stop('SIGKILL');
      sim.inject.riskControl(seller.unb, false);
    }
  });

  it('expired login: /ready 503 login_expired', async () => {
    const seller = sim.createSeller();
    sim.inject.sessionExpired(seller.unb, true);
    const wl = await startWorkloadProcess({
      config: baseConfig(seller),
      env: envFor(seller),
      waitReady: false,
    });
    try {
      await pollUntil(async () => {
        const r = await wl.get('/ready');
        return r.status === 503 && (r.json() as { reason: string }).reason === 'login_expired';
      });
    } finally {
      await wl.stop('SIGKILL');
    }
  });

  it('SIGTERM finishes the reply waiting in debounce, then exits 0', async (t) => {
    const seller = sim.createSeller();
    sim.createItem({ sellerId: seller.unb, title: '激活码', price: '1' });
    const config = baseConfig(seller);
    (config.reply as Record<string, unknown>).debounceMs = 60_000;
    const wl = await startWorkloadProcess({ config, env: envFor(seller) });
    t.after(() => wl.stop('SIGKILL'));
    const { chatId } = await sim.buyerSays({ sellerId: seller.unb, buyerId: '3200000009', text: '发货吗' });
    // The message must have reached the workload before the signal.
    await pollUntil(async () => {
      const m = (await wl.get('/metrics')).body;
      return /xianyu_messages_received_total\{[^}]*kind="chat"[^}]*\} [1-9]/.test(m);
    });
    const code = await wl.stop('SIGTERM');
    assert.equal(code, 0);
    assert.ok(
      sim.sent(seller.unb).some((s) => s.chatId === chatId && s.text === '自动发货，激活码'),
      JSON.stringify(sim.sent(seller.unb)),
    );
  });

  it('never writes a cookie, token or API key to its output, metrics or status', async () => {
    const seller = sim.createSeller();
    sim.createItem({ sellerId: seller.unb, title: '激活码', price: '1' });
    const config = baseConfig(seller, {
      reply: { debounceMs: 0, ai: { enabled: true, model: 'm', systemPrompt: 'x' } },
    });
    const key = 'sk-e2e-SECRET-KEY-0123456789';
    const wl = await startWorkloadProcess({
      config,
      env: envFor(seller, { LOG_LEVEL: 'trace', AI_BASE_URL: sim.aiBaseURL, AI_API_KEY: key }),
    });
    try {
      sim.ai.script(['好的，马上安排']);
      const sent = await replyTo(seller, '有货吗');
      assert.equal(sent.text, '好的，马上安排');
      // Force a reconnect so the token path is logged again.
      sim.inject.dropSockets(seller.unb, { closeFrame: false });
      await sim.waitFor(() => sim.connections(seller.unb) > 0, 10_000);
      const secrets = seller.cookies
        .split(';')
        .map((c) => c.trim().split('=').slice(1).join('='))
        .filter((v) => v.length >= 6 && !/^\d+$/.test(v)); // unb (the numeric seller id) is an id, not a secret
      secrets.push(key);
      const everything = [
        wl.output().join('\n'),
        (await wl.get('/metrics')).body,
        (await wl.get('/status')).body,
      ].join('\n');
      assert.ok(wl.output().length >= 8, `expected trace output, got:\n${wl.output().join('\n')}`);
      for (const s of secrets) assert.ok(!everything.includes(s), `secret leaked: ${s.slice(0, 4)}…`);
      const tokenFrames = sim.frames(seller.unb).filter((f) => f.lwp === '/reg');
      for (const f of tokenFrames)
        assert.ok(!everything.includes(String(f.headers.token)), 'access token leaked');
    } finally {
      await wl.stop('SIGKILL');
    }
  });
});
