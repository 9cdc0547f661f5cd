import type { Server } from 'node:http';
import { type AiClient, createAiClient } from './ai/client.js';
import type { LoadedConfig } from './config/load.js';
import { crashHookFromEnv } from './delivery/crash.js';
import { logNotifier } from './delivery/notify.js';
import { browserDetails, httpDetails, noDetails, type OrderDetailsSource } from './delivery/order-details.js';
import { PoolWatcher } from './delivery/pools.js';
import { DeliveryService } from './delivery/service.js';
import { DeliveryStore } from './delivery/store.js';
import { createHttpApp } from './http/server.js';
import { type AccountLease, advisoryLease, singleProcessLease } from './lease.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { parseCookies } from './protocol/cookies.js';
import { createItemLookup } from './reply/items.js';
import { Responder } from './reply/responder.js';
import { MtopClient } from './session/mtop.js';
import { XianyuSession } from './session/xianyu-session.js';
import { stockCondition } from './status/conditions.js';
import { startStatusReporting } from './status/index.js';
import { createStore, openSql } from './store/index.js';
import type { Store } from './store/types.js';

// Wires one account's workload together: storage, IM session, reply engine, HTTP probes.

export interface Workload {
  readonly port: number;
  readonly session: XianyuSession;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly delivery: DeliveryService;
  readonly lease: AccountLease;
  /** Finishes in-flight replies (≤ 10 s), closes the socket, the HTTP server and the database. */
  stop(): Promise<void>;
}

export async function startWorkload(
  loaded: LoadedConfig,
  opts: { log?: Logger; onFatal?: (err: Error) => void } = {},
): Promise<Workload> {
  const { config, cookies, aiApiKey } = loaded;
  let session: XianyuSession | undefined;
  // Cookie values (not the numeric seller id) and the AI key are scrubbed from free text.
  // Recomputed only when Set-Cookie changed the jar: the logger asks on every line.
  let secretsOf = '';
  let secretList: string[] = [];
  const secrets = () => {
    const jar = session ? session.cookies() : cookies;
    if (jar !== secretsOf) {
      secretsOf = jar;
      secretList = [
        ...[...parseCookies(jar).values()].filter((v) => !/^\d+$/.test(v)),
        ...(aiApiKey ? [aiApiKey] : []),
      ];
    }
    return secretList;
  };
  const log = opts.log ?? createLogger(config.log.level, undefined, secrets);
  const metrics = createMetrics(config.account.id);
  const sellerId = parseCookies(cookies).get('unb')!;

  const sql = await openSql({
    ...(config.database.url ? { url: config.database.url } : {}),
    dataDir: config.dataDir,
    poolSize: config.database.poolSize,
    onUnprepared: (message) => log.warn(message),
  });
  const store = await createStore(sql);
  log.info({ database: sql.kind, account: config.account.id }, 'database ready');

  const mtop = new MtopClient({ config, cookies, log });
  session = new XianyuSession({ config, cookies, log, metrics, mtop });
  const s = session;
  const reporter = startStatusReporting(s, log);
  let stockTimer: NodeJS.Timeout | undefined;

  let ai: AiClient | undefined;
  if (config.reply.ai.enabled) {
    ai = createAiClient({
      baseURL: config.reply.ai.baseURL,
      model: config.reply.ai.model,
      apiKey: aiApiKey,
      timeoutMs: config.reply.ai.timeoutMs,
    });
  }
  const itemLookup = createItemLookup(store, config.account.id, async (itemId) => {
    const d = await mtop.getItemDetail(itemId);
    return {
      title: d.title,
      ...(d.soldPrice !== undefined ? { price: String(d.soldPrice) } : {}),
      ...(d.desc ? { description: d.desc } : {}),
    };
  });
  const responder = new Responder({
    config,
    sellerId,
    send: (chatId, to, text) => s.sendText(chatId, to, text),
    store,
    ...(ai ? { ai } : {}),
    itemInfo: itemLookup,
    metrics,
    log,
  });
  // Auto-delivery: orders from trade messages, the state machine in the database.
  const crash = crashHookFromEnv();
  const dcfg = config.delivery;
  const od = dcfg.orderDetails;
  const details: OrderDetailsSource =
    od.source === 'browser'
      ? browserDetails({
          url: od.url,
          cookies: () => s.cookies(),
          chromiumPath: od.chromiumPath,
          timeoutMs: od.timeoutMs,
          log,
        })
      : od.source === 'http'
        ? httpDetails({ url: od.url, cookies: () => s.cookies(), timeoutMs: od.timeoutMs })
        : noDetails();
  const deliveryStore = new DeliveryStore(sql);
  // StockAvailable into the account status (in a cluster): checked every 30 s, written on change.
  const reportStock = () => {
    const check = async () => {
      const [counts, waiting] = await Promise.all([
        deliveryStore.stock(Object.keys(dcfg.pools)),
        deliveryStore.waitingByReason(config.account.id),
      ]);
      reporter?.update([stockCondition(counts, waiting.get('out_of_stock') ?? 0)]);
    };
    const run = () => void check().catch((err: Error) => log.warn({ err }, 'stock check failed'));
    run();
    const timer = setInterval(run, 30_000);
    timer.unref();
    return timer;
  };
  const delivery = new DeliveryService({
    config,
    sellerId,
    store: deliveryStore,
    im: s,
    mtop,
    itemInfo: itemLookup,
    details,
    notifier: logNotifier(log),
    metrics,
    log,
    crash,
  });
  const pools = new PoolWatcher({
    pools: dcfg.pools,
    store: deliveryStore,
    log,
    intervalMs: dcfg.poolCheckIntervalMs,
    crash,
    onStock: (pool) => delivery.stockAdded(pool),
    onChecked: (pool) => delivery.checkStock(pool),
  });

  s.on('message', (m) => {
    if (dcfg.enabled) delivery.onMessage(m);
    if (dcfg.enabled && m.senderId === sellerId && !m.isOwnEcho) {
      // The echo of a delivery sent by a process that died is not the seller typing by hand.
      delivery.isDeliveryEcho(m).then(
        (ours) => responder.handle(ours ? { ...m, isOwnEcho: true } : m),
        () => responder.handle(m),
      );
      return;
    }
    responder.handle(m);
  });
  s.on('push', (e) => {
    if (dcfg.enabled) delivery.onPush(e);
  });
  // Each (re)registration: orders that waited for the link go on; missed paid cards are swept.
  s.on('state', (st) => {
    if (st.state === 'registered' && dcfg.enabled) delivery.onConnected();
  });

  // One process holds the account at a time; a second one waits (not ready) and takes over.
  const lease: AccountLease = config.database.url
    ? advisoryLease({ url: config.database.url, accountId: config.account.id, log })
    : singleProcessLease();
  metrics.accountHeld.set(0);

  const http = createHttpApp({
    accountId: config.account.id,
    session: () => s.status(),
    pingDatabase: () => store.ping(),
    metrics,
    notReady: () => (lease.held ? undefined : 'standby'),
    extraStatus: () => ({ lease: { kind: lease.kind, held: lease.held }, delivery: delivery.status() }),
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
  let stopRequested = false;
  const holding = lease
    .acquire()
    .then(() => {
      if (stopRequested) return;
      metrics.accountHeld.set(1);
      s.start();
      if (dcfg.enabled) {
        pools.start();
        if (reporter && Object.keys(dcfg.pools).length > 0) stockTimer = reportStock();
        delivery.start();
      }
    })
    .catch((err: Error) => {
      if (!stopRequested) log.error({ err }, 'account lease: giving up');
    });
  lease.onLost((err) => {
    metrics.accountHeld.set(0);
    // Another process may take the account over now: stop touching it at once.
    void s.stop();
    opts.onFatal?.(err);
  });

  let stopping: Promise<void> | undefined;
  return {
    port,
    session: s,
    store,
    metrics,
    log,
    delivery,
    lease,
    stop() {
      stopping ??= (async () => {
        stopRequested = true;
        log.info('shutting down: finishing in-flight replies and deliveries');
        await pools.stop();
        await Promise.all([responder.drain(10_000), delivery.stop(10_000)]);
        await s.stop();
        if (stockTimer) clearInterval(stockTimer);
        await reporter?.flush();
        await lease.stop();
        await holding;
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
