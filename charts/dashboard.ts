// The Grafana dashboard the chart ships (files/dashboards/xianyu.json), built from the metric
// names the operator (operator/src/metrics/registry.ts) and the workload (workload/src/metrics.ts)
// really export; test/chart checks every name used here against those files.
// Written by charts/sync.ts.

interface Panel {
  title: string;
  type: 'timeseries' | 'stat' | 'table';
  unit?: string;
  description?: string;
  targets: { expr: string; legend?: string }[];
  w?: number;
  h?: number;
}

/** Grafana's data-source variable reference. */
const DS = { type: 'prometheus', uid: '\u0024{datasource}' };
const OP = 'job=~"$operator_job"';
const WL = 'namespace=~"$namespace", account=~"$account"';

const rows: { title: string; panels: Panel[] }[] = [
  {
    title: 'Accounts',
    panels: [
      {
        title: 'Connected accounts',
        type: 'stat',
        description: 'Workloads registered on the Xianyu IM (xianyu_connected = 1).',
        targets: [{ expr: `sum(xianyu_connected{${WL}})` }],
        w: 4,
      },
      {
        title: 'Accounts by phase',
        type: 'stat',
        description: 'XianyuAccount status.phase as the operator sees it.',
        targets: [{ expr: `sum by (phase) (xianyu_operator_accounts{${OP}})`, legend: '{{phase}}' }],
        w: 8,
      },
      {
        title: 'Login expired / risk control',
        type: 'stat',
        description: 'Accounts where a human must log in again or solve a captcha.',
        targets: [
          { expr: `sum(xianyu_session_state{${WL}, state="login_expired"})`, legend: 'login expired' },
          { expr: `sum(xianyu_session_state{${WL}, state="risk_control"})`, legend: 'risk control' },
        ],
        w: 6,
      },
      {
        title: 'Session state',
        type: 'table',
        targets: [
          {
            expr: `max by (namespace, account, state) (xianyu_session_state{${WL}}) == 1`,
            legend: '{{state}}',
          },
        ],
        w: 6,
      },
    ],
  },
  {
    title: 'Replies',
    panels: [
      {
        title: 'Messages received',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (kind) (rate(xianyu_messages_received_total{${WL}}[$__rate_interval]))`,
            legend: '{{kind}}',
          },
        ],
      },
      {
        title: 'Replies sent',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (source) (rate(xianyu_replies_sent_total{${WL}}[$__rate_interval]))`,
            legend: '{{source}}',
          },
          {
            expr: `sum by (reason) (rate(xianyu_reply_failures_total{${WL}}[$__rate_interval]))`,
            legend: 'failed: {{reason}}',
          },
        ],
      },
      {
        title: 'Reply latency',
        type: 'timeseries',
        unit: 's',
        description: 'Inbound frame to reply sent, without the deliberate human-like delay.',
        targets: [0.5, 0.95, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(xianyu_reply_latency_seconds_bucket{${WL}}[$__rate_interval])))`,
          legend: `p${q * 100}`,
        })),
      },
      {
        title: 'AI requests',
        type: 'timeseries',
        unit: 's',
        targets: [
          {
            expr: `histogram_quantile(0.95, sum by (le) (rate(xianyu_ai_request_duration_seconds_bucket{${WL}}[$__rate_interval])))`,
            legend: 'p95 duration',
          },
          {
            expr: `sum by (reason) (rate(xianyu_ai_errors_total{${WL}}[$__rate_interval]))`,
            legend: 'errors: {{reason}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Delivery',
    panels: [
      {
        title: 'Deliveries',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (result) (rate(xianyu_deliveries_total{${WL}}[$__rate_interval]))`,
            legend: '{{result}}',
          },
        ],
      },
      {
        title: 'Paid to sent',
        type: 'timeseries',
        unit: 's',
        targets: [0.5, 0.95].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(xianyu_delivery_paid_to_sent_seconds_bucket{${WL}}[$__rate_interval])))`,
          legend: `p${q * 100}`,
        })),
      },
      {
        title: 'Free codes per pool',
        type: 'timeseries',
        targets: [
          {
            expr: `min by (namespace, account, pool) (xianyu_delivery_stock_codes{${WL}})`,
            legend: '{{account}}/{{pool}}',
          },
        ],
      },
      {
        title: 'Orders waiting',
        type: 'timeseries',
        targets: [{ expr: `sum by (reason) (xianyu_orders_waiting{${WL}})`, legend: '{{reason}}' }],
      },
    ],
  },
  {
    title: 'Sessions',
    panels: [
      {
        title: 'Reconnects',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (cause) (rate(xianyu_reconnects_total{${WL}}[$__rate_interval]))`,
            legend: '{{cause}}',
          },
        ],
      },
      {
        title: 'Token refreshes',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (result) (rate(xianyu_token_refreshes_total{${WL}}[$__rate_interval]))`,
            legend: '{{result}}',
          },
        ],
      },
      {
        title: 'Account lease held',
        type: 'timeseries',
        description: '1 on the process that holds the account (IM session and delivery), 0 on a standby.',
        targets: [
          {
            expr: `max by (namespace, account) (xianyu_account_lease_held{${WL}})`,
            legend: '{{namespace}}/{{account}}',
          },
        ],
      },
      {
        title: 'Workload memory (RSS)',
        type: 'timeseries',
        unit: 'bytes',
        targets: [{ expr: `process_resident_memory_bytes{${WL}}`, legend: '{{namespace}}/{{account}}' }],
      },
      {
        title: 'Workload event-loop lag p99',
        type: 'timeseries',
        unit: 's',
        targets: [{ expr: `nodejs_eventloop_lag_p99_seconds{${WL}}`, legend: '{{namespace}}/{{account}}' }],
      },
    ],
  },
  {
    title: 'Operator',
    panels: [
      {
        title: 'Operator up / leader',
        type: 'stat',
        targets: [
          { expr: `sum(up{${OP}})`, legend: 'up' },
          { expr: `max(leader_election_master_status{${OP}})`, legend: 'leader' },
        ],
        w: 4,
      },
      {
        title: 'Reconciles',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (result) (rate(controller_runtime_reconcile_total{${OP}}[$__rate_interval]))`,
            legend: '{{result}}',
          },
          {
            expr: `sum(rate(controller_runtime_reconcile_errors_total{${OP}}[$__rate_interval]))`,
            legend: 'errors',
          },
        ],
        w: 7,
      },
      {
        title: 'Reconcile time',
        type: 'timeseries',
        unit: 's',
        targets: [0.5, 0.99].map((q) => ({
          expr: `histogram_quantile(${q}, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{${OP}}[$__rate_interval])))`,
          legend: `p${q * 100}`,
        })),
        w: 7,
      },
      {
        title: 'Work queue',
        type: 'timeseries',
        targets: [
          { expr: `sum(workqueue_depth{${OP}})`, legend: 'depth' },
          { expr: `sum(rate(workqueue_adds_total{${OP}}[$__rate_interval]))`, legend: 'adds/s' },
          { expr: `sum(rate(workqueue_retries_total{${OP}}[$__rate_interval]))`, legend: 'retries/s' },
          {
            expr: `histogram_quantile(0.99, sum by (le) (rate(workqueue_queue_duration_seconds_bucket{${OP}}[$__rate_interval])))`,
            legend: 'p99 wait (s)',
          },
        ],
        w: 6,
      },
      {
        title: 'API writes and errors',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (verb, resource) (rate(xianyu_operator_api_writes_total{${OP}}[$__rate_interval]))`,
            legend: '{{verb}} {{resource}}',
          },
          {
            expr: `sum by (code) (rate(xianyu_operator_api_errors_total{${OP}}[$__rate_interval]))`,
            legend: 'error {{code}}',
          },
        ],
        w: 8,
      },
      {
        title: 'Watches and caches',
        type: 'timeseries',
        targets: [
          {
            expr: `sum by (resource, reason) (increase(xianyu_operator_watch_restarts_total{${OP}}[$__rate_interval]))`,
            legend: 'restart {{resource}} {{reason}}',
          },
          { expr: `sum by (resource) (xianyu_operator_cache_objects{${OP}})`, legend: 'cached {{resource}}' },
        ],
        w: 8,
      },
      {
        title: 'Events emitted',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          {
            expr: `sum by (type, reason) (rate(xianyu_operator_events_total{${OP}}[$__rate_interval]))`,
            legend: '{{type}} {{reason}}',
          },
        ],
        w: 8,
      },
    ],
  },
];

export function buildDashboard(): unknown {
  const panels: unknown[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { x: 0, y, w: 24, h: 1 },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowH = 0;
    for (const p of row.panels) {
      const w = p.w ?? 6;
      const h = p.h ?? (p.type === 'stat' ? 5 : 8);
      if (x + w > 24) {
        x = 0;
        y += rowH;
        rowH = 0;
      }
      panels.push({
        id: id++,
        type: p.type,
        title: p.title,
        ...(p.description ? { description: p.description } : {}),
        datasource: DS,
        gridPos: { x, y, w, h },
        fieldConfig: { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
        options:
          p.type === 'timeseries'
            ? { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } }
            : p.type === 'stat'
              ? { reduceOptions: { calcs: ['lastNotNull'] }, colorMode: 'value', graphMode: 'none' }
              : { showHeader: true },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DS,
          expr: t.expr,
          ...(t.legend ? { legendFormat: t.legend } : {}),
          ...(p.type === 'table' ? { format: 'table', instant: true } : {}),
        })),
      });
      x += w;
      rowH = Math.max(rowH, h);
    }
    y += rowH;
  }
  const query = (name: string, label: string, q: string, includeAll = true) => ({
    name,
    label,
    type: 'query',
    datasource: DS,
    query: { query: q, refId: name },
    definition: q,
    refresh: 2,
    includeAll,
    multi: includeAll,
    allValue: '.*',
    current: includeAll ? { text: 'All', value: '$__all' } : {},
  });
  return {
    uid: 'xianyu-overview',
    title: 'Xianyu auto-reply',
    description:
      'XianyuAccount workloads (sessions, replies, AI) and the xianyu-operator (reconciles, work queue, API).',
    tags: ['xianyu', 'operator'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    graphTooltip: 1,
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {} },
        query('namespace', 'Namespace', 'label_values(xianyu_connected, namespace)'),
        query('account', 'Account', 'label_values(xianyu_connected{namespace=~"$namespace"}, account)'),
        query('operator_job', 'Operator job', 'label_values(controller_runtime_reconcile_total, job)'),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}
