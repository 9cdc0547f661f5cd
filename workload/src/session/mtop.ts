import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { API_ITEM_DETAIL, API_TOKEN, CHROME_UA, IM_APP_KEY, ORIGIN, REFERER } from '../protocol/constants.js';
import { mergeSetCookies } from '../protocol/cookies.js';
import { mtopQuery, TOKEN_CALL_EXTRA } from '../protocol/sign.js';
import { LoginExpiredError, MtopError, RiskControlError } from './errors.js';
import { httpPost, PostError, type PostResult } from './http-post.js';

// The h5api client (protocol §1.3, §2): signed POSTs, a cookie jar kept fresh from Set-Cookie,
// one re-signed retry when the h5 token was stale, and typed failures.

export interface MtopClientOptions {
  config: Pick<Config, 'endpoints'>;
  cookies: string;
  log?: Logger;
  /** Per-request timeout; default 20 s (the `timeout` param the browser sends). */
  timeoutMs?: number;
}

interface Envelope {
  ret?: unknown;
  data?: unknown;
}

export interface ItemDetail {
  itemId: string;
  title: string;
  desc?: string;
  /** Price in yuan as the service formats it ("9.90"). */
  soldPrice?: string;
  quantity?: number;
  skus: { properties: string[]; price?: number; quantity?: number }[];
}

const TOKEN_STALE = ['FAIL_SYS_TOKEN_EXOIRED', 'FAIL_SYS_TOKEN_EMPTY', '令牌过期', '令牌为空'];
const RISK = ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR'];
const LOGIN_DEAD = ['FAIL_SYS_SESSION_EXPIRED', 'Session过期'];

const has = (ret: readonly string[], needles: readonly string[]) =>
  ret.some((r) => needles.some((n) => r.includes(n)));

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Emits `'cookies'` (the new cookie string) whenever a Set-Cookie changed the jar. */
export class MtopClient extends EventEmitter<{ cookies: [string] }> {
  #cookies: string;
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #log: Logger | undefined;

  constructor(opts: MtopClientOptions) {
    super();
    this.#cookies = opts.cookies;
    this.#base = opts.config.endpoints.api.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs ?? 20_000;
    this.#log = opts.log;
  }

  get cookies(): string {
    return this.#cookies;
  }

  /** Replaces the jar (a human pasted new cookies). */
  setCookies(cookies: string): void {
    if (cookies === this.#cookies) return;
    this.#cookies = cookies;
    this.emit('cookies', cookies);
  }

  /** Merges a response's Set-Cookie headers; returns the names that changed. */
  mergeCookies(headers: Headers | readonly string[]): string[] {
    const r = mergeSetCookies(this.#cookies, headers);
    if (r.changed) {
      this.#cookies = r.cookies;
      this.#log?.debug({ cookieNames: r.names }, 'cookies refreshed from Set-Cookie');
      this.emit('cookies', r.cookies);
    }
    return r.names;
  }

  /** POST <api>/h5/<api>/<version>/; resolves with `data` on SUCCESS, else throws a typed error. */
  async call<T = unknown>(
    api: string,
    version: string,
    data: unknown,
    opts: { extra?: Record<string, string> } = {},
  ): Promise<T> {
    const body = typeof data === 'string' ? data : JSON.stringify(data);
    let res = await this.#post(api, version, body, opts.extra);
    if (has(res.ret, TOKEN_STALE) && res.tokenRefreshed) {
      // The answer carried a fresh _m_h5_tk: re-sign with it, once.
      this.#log?.debug({ api }, 'h5 token refreshed, re-signing');
      res = await this.#post(api, version, body, opts.extra);
    }
    const { ret, envelope } = res;
    if (ret[0]?.startsWith('SUCCESS')) return envelope.data as T;
    if (has(ret, RISK)) {
      const url = obj(envelope.data)?.url;
      throw new RiskControlError(api, ret, typeof url === 'string' ? url : undefined);
    }
    if (has(ret, LOGIN_DEAD)) throw new LoginExpiredError(api, ret);
    throw new MtopError(api, ret);
  }

  async #post(api: string, version: string, data: string, extra?: Record<string, string>) {
    const query = mtopQuery({ api, version, data, cookies: this.#cookies, ...(extra ? { extra } : {}) });
    const url = `${this.#base}/h5/${api}/${version}/?${query}`;
    let response: PostResult;
    try {
      response = await httpPost(
        url,
        {
          accept: 'application/json',
          'content-type': 'application/x-www-form-urlencoded',
          origin: ORIGIN,
          referer: REFERER,
          'user-agent': CHROME_UA,
          cookie: this.#cookies,
        },
        new URLSearchParams({ data }).toString(),
        this.#timeoutMs,
      );
    } catch (err) {
      const e = err as Error;
      throw new MtopError(
        api,
        [err instanceof PostError ? err.kind : 'NETWORK'],
        `${api}: ${e.name}: ${e.message}`,
        { cause: err },
      );
    }
    const changed = this.mergeCookies(response.setCookies);
    let envelope: Envelope;
    try {
      envelope = JSON.parse(response.body) as Envelope;
    } catch (err) {
      throw new MtopError(api, [`HTTP_${response.status}`], `${api}: HTTP ${response.status}, no JSON body`, {
        cause: err,
      });
    }
    const ret = Array.isArray(envelope?.ret) ? envelope.ret.map(String) : [`HTTP_${response.status}`];
    return { ret, envelope: envelope ?? {}, tokenRefreshed: changed.includes('_m_h5_tk') };
  }

  /** The IM access token for `/reg` (protocol §1.3). */
  async getAccessToken(deviceId: string): Promise<string> {
    const data = await this.call<{ accessToken?: unknown }>(
      API_TOKEN,
      '1.0',
      { appKey: IM_APP_KEY, deviceId },
      { extra: TOKEN_CALL_EXTRA },
    );
    const token = obj(data)?.accessToken;
    if (typeof token !== 'string' || !token) throw new MtopError(API_TOKEN, ['NO_ACCESS_TOKEN']);
    return token;
  }

  /** Item title, description, price and SKUs from `data.itemDO` (protocol §2). */
  async getItemDetail(itemId: string): Promise<ItemDetail> {
    const data = await this.call<unknown>(API_ITEM_DETAIL, '1.0', { itemId });
    const item = obj(obj(data)?.itemDO);
    if (!item) throw new MtopError(API_ITEM_DETAIL, ['NO_ITEM_DO']);
    const num = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : Number(v));
    const skuList = Array.isArray(item.skuList) ? item.skuList : [];
    const detail: ItemDetail = {
      itemId: String(item.itemId ?? itemId),
      title: String(item.title ?? ''),
      skus: skuList.map((s) => {
        const sku = obj(s) ?? {};
        const props = Array.isArray(sku.propertyList) ? sku.propertyList : [];
        const price = num(sku.price);
        const quantity = num(sku.quantity);
        return {
          properties: props.map((p) => String(obj(p)?.valueText ?? '')).filter(Boolean),
          ...(price !== undefined && Number.isFinite(price) ? { price } : {}),
          ...(quantity !== undefined && Number.isFinite(quantity) ? { quantity } : {}),
        };
      }),
    };
    if (typeof item.desc === 'string' && item.desc) detail.desc = item.desc;
    if (item.soldPrice !== undefined && item.soldPrice !== null) detail.soldPrice = String(item.soldPrice);
    const q = num(item.quantity);
    if (q !== undefined && Number.isFinite(q)) detail.quantity = q;
    return detail;
  }
}
