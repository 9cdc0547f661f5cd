import type { Server } from 'node:http';
import { type AiClient, createAiClient } from './ai/client.js';
import type { LoadedConfig } from './config/load.js';
import { createHttpApp } from './http/server.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { parseCookies } from './protocol/cookies.js';
import { createItemLookup } from './reply/items.js';
import { Responder } from './reply/responder.js';
import { MtopClient } from './session/mtop.js';
import type { SessionState } from './session/types.js';
import { XianyuSession } from './session/xianyu-session.js';
import { createStore, openSql } from './store/index.js';
import type { Store } from './store/types.js';

// Wires one account's workload together: storage, IM session, reply engine, HTTP probes.

export interface Workload {
  readonly port: number;
  readonly session: XianyuSession;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Finishes in-flight replies (≤ 10 s), closes the socket, the HTTP server and the database. */
  stop(): Promise<void>;
}

const STATES: SessionState[] = [
  'idle',
  'connecting',
  'registering',
  'registered',
  'backoff',
  'risk_control',
  'login_expired',
  'stopped',
];

export async function startWorkload(loaded: LoadedConfig, opts: { log?: Logger } = {}): Promise<Workload> {
  const { config, cookies, aiApiKey } = loaded;
  let session: XianyuSession | undefined;
  // Cookie values (not the numeric seller id) and the AI key are scrubbed from free text.
  const secrets = () => [
    ...[...parseCookies(session ? session.cookies() : cookies).values()].filter((v) => !/^\d+$/.test(v)),
    ...(aiApiKey ? [aiApiKey] : []),
  ];
  const log = opts.log ?? createLogger(config.log.level, undefined, secrets);
  const metrics = createMetrics(config.account.id);
  const sellerId = parseCookies(cookies).get('unb')!;

  const sql = await openSql({
    ...(config.database.url ? { url: config.database.url } : {}),
    dataDir: config.dataDir,
  });
  const store = await createStore(sql);
  log.info({ database: sql.kind, account: config.account.id }, 'database ready');

  const mtop = new MtopClient({ config, cookies, log });
  session = new XianyuSession({ config, cookies, log, metrics, mtop });
  const s = session;

  let ai: AiClient | undefined;
  if (config.reply.ai.enabled) {
    ai = createAiClient({
      baseURL: config.reply.ai.baseURL,
      model: config.reply.ai.model,
      apiKey: aiApiKey,
      timeoutMs: config.reply.ai.timeoutMs,
    });
  }
  const responder = new Responder({
    config,
    sellerId,
    send: (chatId, to, text) => s.sendText(chatId, to, text),
    store,
    ...(ai ? { ai } : {}),
    itemInfo: createItemLookup(store, config.account.id, async (itemId) => {
      const d = await mtop.getItemDetail(itemId);
      return {
        title: d.title,
        ...(d.soldPrice !== undefined ? { price: String(d.soldPrice) } : {}),
        ...(d.desc ? { description: d.desc } : {}),
      };
    }),
    metrics,
    log,
  });
  s.on('message', (m) => responder.handle(m));
  s.on('state', (st) => {
    metrics.connected.set(st.state === 'registered' ? 1 : 0);
    for (const name of STATES) metrics.sessionState.set({ state: name }, name === st.state ? 1 : 0);
  });

  const http = createHttpApp({
    accountId: config.account.id,
    session: () => s.status(),
    pingDatabase: () => store.ping(),
    metrics,
  });
  let server: Server;
  try {
    server = await http.listen(config.server.port, config.server.host);
  } catch (err) {
    await store.close();
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  log.info({ port }, 'http listening: /health /ready /metrics /status');
  s.start();

  let stopping: Promise<void> | undefined;
  return {
    port,
    session: s,
    store,
    metrics,
    log,
    stop() {
      stopping ??= (async () => {
        log.info('shutting down: finishing in-flight replies');
        await responder.drain(10_000);
        await s.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await store.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
