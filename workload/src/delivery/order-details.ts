import type { Logger } from '../log.js';
import { CHROME_UA } from '../protocol/constants.js';
import { parseCookies } from '../protocol/cookies.js';
import { parseSpec, type SpecPair } from './rules.js';

// Order details the delivery needs (quantity, spec, amount). The service has no order-detail
// API: the reference projects render https://www.goofish.com/order-detail?orderId=<id>&role=seller
// in a browser and scrape `规格名:规格值`, the quantity and the amount. `browser` does exactly that
// with playwright-core and the system Chromium; `http` fetches the same page without a browser
// (only useful where the page is rendered on the server, as the simulator's is); `none` means
// quantity 1 and no spec.

export interface OrderDetails {
  quantity: number;
  spec: SpecPair[];
  amount?: string;
}

export interface OrderDetailsSource {
  readonly kind: 'none' | 'browser' | 'http';
  get(orderId: string): Promise<OrderDetails>;
  close(): Promise<void>;
}

/** Labels of the order page that look like `name:value` but are not a spec. */
const NOT_SPEC =
  /^(订单编号|订单号|创建时间|下单时间|付款时间|成交时间|发货时间|实付款|实付|数量|买家|卖家|商品总价|运费|支付方式|交易快照|收货地址|联系电话|备注|状态|订单状态)$/;

/** Reads quantity, spec and amount from the text of the rendered order-detail page. */
export function parseOrderDetailText(text: string): OrderDetails {
  const lines = text
    .split(/\n+/)
    .map((l) => l.trim())
    .filter(Boolean);
  let quantity = 1;
  let amount: string | undefined;
  const spec: SpecPair[] = [];
  for (const line of lines) {
    const q = /^(?:数量\s*[:：]?\s*|[x×]\s*)(\d+)$/.exec(line);
    if (q?.[1]) {
      quantity = Math.max(1, Number(q[1]));
      continue;
    }
    const a = /^实付(?:款)?\s*[:：]?\s*¥?\s*([\d.]+)/.exec(line);
    if (a?.[1]) {
      amount = a[1];
      continue;
    }
    for (const pair of parseSpec(line)) {
      if (!NOT_SPEC.test(pair.name) && pair.name.length <= 12) spec.push(pair);
    }
  }
  return { quantity, spec, ...(amount !== undefined ? { amount } : {}) };
}

export function detailUrl(template: string, orderId: string): string {
  return template.replace(/\{order_id\}/g, encodeURIComponent(orderId));
}

export function noDetails(): OrderDetailsSource {
  return { kind: 'none', get: async () => ({ quantity: 1, spec: [] }), close: async () => {} };
}

/** Plain HTTP GET of the order page with the account's cookies; text between tags is parsed. */
export function httpDetails(o: {
  url: string;
  cookies: () => string;
  timeoutMs: number;
}): OrderDetailsSource {
  return {
    kind: 'http',
    async get(orderId) {
      const res = await fetch(detailUrl(o.url, orderId), {
        headers: { cookie: o.cookies(), 'user-agent': CHROME_UA, accept: 'text/html' },
        signal: AbortSignal.timeout(o.timeoutMs),
        redirect: 'manual',
      });
      if (res.status !== 200) throw new Error(`order page answered HTTP ${res.status}`);
      const html = await res.text();
      const text = html
        .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, '')
        .replace(/<br\s*\/?>|<\/(div|p|li|tr|span|h\d)>/gi, '\n')
        .replace(/<[^>]+>/g, '')
        .replace(/&nbsp;/g, ' ')
        .replace(/&amp;/g, '&');
      return parseOrderDetailText(text);
    },
    close: async () => {},
  };
}

/**
 * Renders the order page in the system Chromium (playwright-core, never a downloaded browser),
 * with the account's cookies, and parses its visible text. One browser per process, started on
 * first use; one page per lookup.
 */
export function browserDetails(o: {
  url: string;
  cookies: () => string;
  chromiumPath: string;
  timeoutMs: number;
  log: Logger;
}): OrderDetailsSource {
  type Browser = import('playwright-core').Browser;
  let browser: Promise<Browser> | undefined;
  const launch = async (): Promise<Browser> => {
    const { chromium } = await import('playwright-core');
    const b = await chromium.launch({
      executablePath: o.chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    b.on('disconnected', () => {
      browser = undefined;
    });
    o.log.info({ chromium: o.chromiumPath }, 'order details: browser started');
    return b;
  };
  return {
    kind: 'browser',
    async get(orderId) {
      browser ??= launch().catch((err: Error) => {
        browser = undefined;
        throw new Error(`cannot start Chromium at ${o.chromiumPath}: ${err.message.split('\n')[0]}`);
      });
      const b = await browser;
      const url = new URL(detailUrl(o.url, orderId));
      const context = await b.newContext({ userAgent: CHROME_UA, locale: 'zh-CN' });
      try {
        const cookies = [...parseCookies(o.cookies())].map(([name, value]) => ({
          name,
          value,
          url: url.origin,
        }));
        await context.addCookies(cookies);
        const page = await context.newPage();
        const res = await page.goto(url.toString(), { timeout: o.timeoutMs, waitUntil: 'domcontentloaded' });
        if (res && res.status() !== 200) throw new Error(`order page answered HTTP ${res.status()}`);
        // The page renders its details with script: wait until the amount is on screen.
        await page.getByText(/实付/).first().waitFor({ timeout: o.timeoutMs });
        // biome-ignore lint/performance/useDomNodeTextContent: innerText keeps the rendered line breaks
        return parseOrderDetailText(await page.innerText('body'));
      } finally {
        await context.close().catch(() => {});
      }
    },
    async close() {
      const b = browser;
      browser = undefined;
      if (b) await (await b.catch(() => undefined))?.close().catch(() => {});
    },
  };
}
