import type { LoadedConfig } from '../config/load.js';
import { MtopClient } from '../session/mtop.js';
import { createStore, openSql } from '../store/index.js';
import { formatSpec, matchRule, type OrderFacts, parseSpec } from './rules.js';
import { DeliveryStore, type OrderRow } from './store.js';

// The delivery commands of the CLI: `orders`, `redeliver ORDER`, `explain-order ORDER`. They
// read (and for redeliver, write a request into) the account's database; the process holding
// the account performs a redelivery. Codes are never printed.

type Out = (line: string) => void;

async function withStore<T>(loaded: LoadedConfig, fn: (s: DeliveryStore) => Promise<T>): Promise<T> {
  const { config } = loaded;
  const sql = await openSql({
    ...(config.database.url ? { url: config.database.url } : {}),
    dataDir: config.dataDir,
  });
  try {
    await createStore(sql);
    return await fn(new DeliveryStore(sql));
  } finally {
    await sql.close();
  }
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));

export async function ordersCommand(loaded: LoadedConfig, out: Out, limit = 50): Promise<number> {
  return withStore(loaded, async (s) => {
    const rows = await s.listOrders(loaded.config.account.id, limit);
    out(
      `${pad('ORDER', 20)}${pad('STATUS', 18)}${pad('DELIVERY', 12)}${pad('UNITS', 16)}${pad('RULE', 18)}REASON`,
    );
    for (const o of rows) {
      const by = (st: string) => o.units.filter((u) => u.state === st).length;
      const units = o.units.length
        ? `${o.units.length}/${o.quantity} (${by('claimed')}c ${by('sent')}s ${by('confirmed')}k)`
        : `0/${o.quantity}`;
      const redo = o.units.reduce((n, u) => n + u.redelivered, 0);
      out(
        `${pad(o.orderId, 20)}${pad(o.status, 18)}${pad(o.deliveryState, 12)}${pad(units, 16)}${pad(o.rule ?? '-', 18)}` +
          `${o.waitingReason ?? ''}${redo ? ` redelivered×${redo}` : ''}${o.redeliverAt ? ' (redeliver requested)' : ''}`,
      );
    }
    if (rows.length === 0) out('(no orders yet)');
    return 0;
  });
}

export async function redeliverCommand(loaded: LoadedConfig, orderId: string, out: Out): Promise<number> {
  return withStore(loaded, async (s) => {
    const order = await s.getOrder(loaded.config.account.id, orderId);
    if (!order) {
      out(`order ${orderId} is not known for account ${loaded.config.account.id}`);
      return 1;
    }
    await s.requestRedeliver(loaded.config.account.id, orderId);
    const sent = (await s.getUnits(loaded.config.account.id, orderId)).filter(
      (u) => u.state !== 'claimed',
    ).length;
    out(
      sent
        ? `redeliver of order ${orderId} requested: the running workload re-sends the same ${sent} unit(s) (补发货)`
        : `order ${orderId} has nothing sent yet: the running workload delivers it normally`,
    );
    return 0;
  });
}

export interface ExplainOptions {
  item?: string;
  spec?: string;
  title?: string;
}

/** Which rule an order takes and why (an order from the database, or a hypothetical one). */
export async function explainCommand(
  loaded: LoadedConfig,
  orderId: string | undefined,
  opt: ExplainOptions,
  out: Out,
): Promise<number> {
  const { config } = loaded;
  let order: OrderRow | undefined;
  let title = opt.title;
  let description: string | undefined;
  if (orderId) {
    const found = await withStore(loaded, async (s) => {
      const o = await s.getOrder(config.account.id, orderId);
      const item = o?.itemId
        ? await s.sql.query<{ title: string; description: string | null }>(
            'SELECT title, description FROM items WHERE account_id = $1 AND item_id = $2',
            [config.account.id, o.itemId],
          )
        : undefined;
      return { o, item: item?.rows[0] };
    });
    order = found.o;
    if (!order) {
      out(`order ${orderId} is not known for account ${config.account.id}`);
      return 1;
    }
    title ??= found.item?.title;
    description = found.item?.description ?? undefined;
  }
  const itemId = opt.item ?? order?.itemId ?? undefined;
  const spec = parseSpec(opt.spec ?? order?.spec ?? '');
  let facts: OrderFacts = { itemId, spec, title, description };
  let r = matchRule(config.delivery.rules, facts);
  if (r.kind === 'needs_item_text' && itemId) {
    try {
      const d = await new MtopClient({ config, cookies: loaded.cookies }).getItemDetail(itemId);
      facts = { ...facts, title: d.title, description: d.desc ?? '' };
      r = matchRule(config.delivery.rules, facts);
    } catch (err) {
      out(`(item title not available: ${(err as Error).message})`);
    }
  }
  out(`order:    ${orderId ?? '(hypothetical)'}`);
  out(`item:     ${itemId ?? '(unknown)'}${facts.title ? ` 「${facts.title}」` : ''}`);
  out(`spec:     ${spec.length ? formatSpec(spec) : '(none)'}   quantity: ${order?.quantity ?? 1}`);
  if (order)
    out(
      `status:   ${order.status}, delivery ${order.deliveryState}${order.waitingReason ? ` (${order.waitingReason})` : ''}`,
    );
  out('');
  out('priority: item+spec > item > keyword+spec > keyword');
  for (const v of r.verdicts)
    out(`  ${v.matched ? '✓' : '·'} ${pad(v.rule.name, 20)} ${pad(v.tier, 13)} ${v.why}`);
  out('');
  switch (r.kind) {
    case 'matched':
      out(`rule: ${r.rule.name} (${r.tier}; source ${r.rule.source.type}) because ${r.why}`);
      return 0;
    case 'ambiguous':
      out(`no rule: ${r.why}; the order waits (reason ambiguous_rules) until the rules are told apart`);
      return 0;
    default:
      out(`no rule: ${r.why}`);
      return 0;
  }
}
