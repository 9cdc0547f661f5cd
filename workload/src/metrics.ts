import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

// Every metric of the workload, in one registry. Labels never carry secrets or message text.

export function createMetrics(accountId: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ account: accountId });
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    messagesReceived: new Counter({
      name: 'xianyu_messages_received_total',
      help: 'Decoded inbound pushes by kind (chat, system, trade, own, typing, duplicate, expired, group ...)',
      labelNames: ['kind'],
      registers: r,
    }),
    repliesSent: new Counter({
      name: 'xianyu_replies_sent_total',
      help: 'Replies sent by source (keyword, ai, item, default, bargain_refusal)',
      labelNames: ['source'],
      registers: r,
    }),
    replyFailures: new Counter({
      name: 'xianyu_reply_failures_total',
      help: 'Replies that could not be sent, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    replyLatency: new Histogram({
      name: 'xianyu_reply_latency_seconds',
      help: 'From inbound frame to reply sent, without the deliberate delay and debounce',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    connected: new Gauge({
      name: 'xianyu_connected',
      help: '1 while registered on the IM, else 0',
      registers: r,
    }),
    sessionState: new Gauge({
      name: 'xianyu_session_state',
      help: '1 for the current session state, 0 for the others',
      labelNames: ['state'],
      registers: r,
    }),
    reconnects: new Counter({
      name: 'xianyu_reconnects_total',
      help: 'IM reconnect attempts by cause',
      labelNames: ['cause'],
      registers: r,
    }),
    tokenRefreshes: new Counter({
      name: 'xianyu_token_refreshes_total',
      help: 'Access-token calls by result (success, failure, risk_control, login_expired)',
      labelNames: ['result'],
      registers: r,
    }),
    aiRequestDuration: new Histogram({
      name: 'xianyu_ai_request_duration_seconds',
      help: 'OpenAI-compatible chat-completions request duration',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: r,
    }),
    aiErrors: new Counter({
      name: 'xianyu_ai_errors_total',
      help: 'AI requests that failed, by reason (timeout, http, invalid)',
      labelNames: ['reason'],
      registers: r,
    }),
    deliveries: new Counter({
      name: 'xianyu_deliveries_total',
      help: 'Auto-delivery outcomes (sent, found_in_history, confirmed, delivered, cancelled, redelivered, rejected, send_error, no_order_id)',
      labelNames: ['result'],
      registers: r,
    }),
    paidToSent: new Histogram({
      name: 'xianyu_delivery_paid_to_sent_seconds',
      help: 'From the paid trade message to each unit sent',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: r,
    }),
    stock: new Gauge({
      name: 'xianyu_delivery_stock_codes',
      help: 'Free codes per pool',
      labelNames: ['pool'],
      registers: r,
    }),
    ordersWaiting: new Gauge({
      name: 'xianyu_orders_waiting',
      help: 'Paid orders not delivered yet, by reason (pending, delivering, out_of_stock, no_rule ...)',
      labelNames: ['reason'],
      registers: r,
    }),
    accountHeld: new Gauge({
      name: 'xianyu_account_lease_held',
      help: '1 while this process holds the account (IM session and delivery), 0 on standby',
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
