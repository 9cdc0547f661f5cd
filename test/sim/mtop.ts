// The h5api mtop surface (`/h5/<api>/<version>/`): session and sign checks, failure shapes,
// and the handful of APIs the workload calls (protocol 1.3 and 2).

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Order, SellerState, State } from './state.js';
import {
  DEVICE_ID_RE,
  delay,
  hex,
  IM_APP_KEY,
  isRecord,
  MTOP_APP_KEY,
  md5,
  parseCookies,
  readBody,
  SUCCESS_RET,
  sendJson,
  setCookieLine,
  tryJson,
} from './util.js';

export const FAIL = {
  sessionExpired: 'FAIL_SYS_SESSION_EXPIRED::Session过期',
  tokenExpired: 'FAIL_SYS_TOKEN_EXOIRED::令牌过期',
  tokenEmpty: 'FAIL_SYS_TOKEN_EMPTY::令牌为空',
  illegalAccess: 'FAIL_SYS_ILLEGAL_ACCESS::非法请求',
  paramInvalid: 'FAIL_SYS_PARAMINVALID_ERROR::请求参数非法',
  apiNotFound: 'FAIL_SYS_API_NOT_FOUNDED::请求API不存在',
  userValidate: 'FAIL_SYS_USER_VALIDATE',
  rgv587: 'RGV587_ERROR::SM::哎哟喂,被挤爆啦,请稍后重试',
  itemNotExist: 'FAIL_BIZ_ITEM_NOT_EXIST::宝贝不存在',
  orderNotExist: 'FAIL_BIZ_ORDER_NOT_EXIST::订单不存在',
  orderStatus: 'FAIL_BIZ_ORDER_STATUS_ERROR::订单状态异常',
} as const;

export interface MtopDeps {
  state: State;
  log: (line: string) => void;
  baseUrl: () => string;
  /** Called after a successful consign: the real service then shows `[你已发货]` in the chat. */
  onShipped: (order: Order) => void;
}

type ApiResult = { ret: string[]; data?: Record<string, unknown>; setCookies?: string[] };
type ApiHandler = (seller: SellerState, data: Record<string, unknown>, deps: MtopDeps) => ApiResult;

const ok = (data: Record<string, unknown>, setCookies?: string[]): ApiResult => ({
  ret: [SUCCESS_RET],
  data,
  setCookies,
});
const fail = (ret: string, data: Record<string, unknown> = {}): ApiResult => ({ ret: [ret], data });

/** Callable without a session: the pre-login call that hands out `_m_h5_tk` (protocol 2). */
export const ANON_API = 'mtop.gaia.nodejs.gaia.idle.data.gw.v2.index.get';

const APIS: Record<string, ApiHandler> = {
  [ANON_API]: () => ok({ bizScene: 'home', sections: [] }),
  'mtop.taobao.idlemessage.pc.login.token': (seller, data, { state }) => {
    if (data.appKey !== IM_APP_KEY) return fail(FAIL.paramInvalid);
    const did = typeof data.deviceId === 'string' ? data.deviceId : '';
    const m = DEVICE_ID_RE.exec(did.replace(/^[0-9a-f-]{36}/, (u) => u.toUpperCase()));
    if (!m || m[1] !== seller.unb) return fail(FAIL.paramInvalid);
    const token = randomBytes(36).toString('base64url');
    seller.accessToken = { token, deviceId: did, at: Date.now() };
    // The real call refreshes some cookies; the client must merge Set-Cookie into its string.
    const sg = `E100${hex(40)}`;
    state.sellers.get(seller.unb)?.jar.set('sgcookie', sg);
    return ok({ accessToken: token, accessTokenExpiredTime: String(Date.now() + 20 * 3600_000) }, [
      setCookieLine('sgcookie', sg, 31536000),
    ]);
  },
  'mtop.taobao.idlemessage.pc.loginuser.get': (seller) => {
    const t = hex(16);
    seller.jar.set('t', t);
    return ok({ userId: seller.unb, nick: seller.nick, displayName: seller.nick, module: { base: {} } }, [
      setCookieLine('t', t, 7776000),
    ]);
  },
  'mtop.idle.web.xyh.item.list': (seller, data, { state }) => {
    const pageNumber = Number(data.pageNumber ?? 1);
    const pageSize = Number(data.pageSize ?? 20);
    if (!Number.isInteger(pageNumber) || pageNumber < 1 || !Number.isInteger(pageSize) || pageSize < 1) {
      return fail(FAIL.paramInvalid);
    }
    const userId = data.userId === undefined ? seller.unb : String(data.userId);
    const all = [...state.items.values()]
      .filter((i) => i.sellerId === userId)
      .sort((a, b) => b.createdAt - a.createdAt || Number(b.itemId) - Number(a.itemId));
    const page = all.slice((pageNumber - 1) * pageSize, pageNumber * pageSize);
    return ok({
      cardList: page.map((i) => ({
        cardType: 1003,
        cardData: {
          id: i.itemId,
          title: i.title,
          priceInfo: { price: i.price, preText: '¥' },
          categoryId: 50025969,
          auctionType: 'b',
          itemStatus: 0,
          detailUrl: `https://www.goofish.com/item?id=${i.itemId}`,
          picInfo: {
            picUrl: `https://img.alicdn.com/bao/uploaded/i1/O1CN01${i.itemId}.jpg`,
            width: 800,
            height: 800,
          },
          detailParams: { itemId: i.itemId, title: i.title, soldPrice: i.price },
          trackParams: { item_id: i.itemId },
          itemLabelDataVO: {},
        },
      })),
      nextPage: pageNumber * pageSize < all.length,
      totalCount: all.length,
    });
  },
  'mtop.taobao.idle.pc.detail': (_seller, data, { state }) => {
    const item = state.items.get(String(data.itemId ?? ''));
    if (!item) return fail(FAIL.itemNotExist);
    const seller = state.sellers.get(item.sellerId);
    return ok({
      itemDO: {
        itemId: item.itemId,
        title: item.title,
        desc: item.desc,
        soldPrice: item.price,
        quantity: item.quantity,
        itemStatus: 0,
        skuList: item.skuList.map((s, i) => ({ skuId: Number(`${item.itemId.slice(-6)}${i + 1}`), ...s })),
      },
      sellerDO: { sellerId: item.sellerId, nick: seller?.nick ?? '' },
    });
  },
  'mtop.taobao.idle.logistic.consign.dummy': (seller, data, deps) => {
    const order = deps.state.orders.get(String(data.orderId ?? ''));
    if (!order || order.sellerId !== seller.unb) return fail(FAIL.orderNotExist);
    if (!['paid', 'bargain', 'refund-cancelled'].includes(order.status) || order.shippedAt) {
      return fail(FAIL.orderStatus);
    }
    order.shippedAt = Date.now();
    order.status = 'shipped';
    deps.onShipped(order);
    return ok({ orderId: order.orderId, success: 'true' });
  },
  'mtop.idle.groupon.activity.seller.freeshipping': (seller, data, { state }) => {
    const order = state.orders.get(String(data.bizOrderId ?? ''));
    if (!order || order.sellerId !== seller.unb) return fail(FAIL.orderNotExist);
    order.freeShippingAt = Date.now();
    return ok({ success: true, bizOrderId: order.orderId });
  },
};

export const MTOP_APIS = Object.keys(APIS);

/** The punish URL the risk-control failure points at (served by web.ts as a slider page). */
export const punishUrl = (base: string, api: string, version: string): string =>
  `${base}//h5/${api}/${version}/_____tmd_____/punish?x5secdata=${hex(48)}&x5step=2&action=captcha&pureCaptcha=`;

export async function handleMtop(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: MtopDeps,
): Promise<void> {
  const { state } = deps;
  const m = /^\/h5\/([^/]+)\/([^/]+)\/?$/.exec(url.pathname);
  const body = (await readBody(req)).toString('utf8');
  if (!m) {
    sendJson(res, 404, { ret: [FAIL.apiNotFound], data: {} });
    return;
  }
  const api = decodeURIComponent(m[1]!);
  const version = decodeURIComponent(m[2]!);
  const query = Object.fromEntries(url.searchParams);
  const form = new URLSearchParams(req.method === 'POST' ? body : '');
  const rawData = form.get('data') ?? url.searchParams.get('data');
  const parsed = rawData === null ? undefined : tryJson(rawData);
  const cookieHeader = req.headers.cookie ?? '';
  const cookies = parseCookies(cookieHeader);

  const answer = async (r: ApiResult): Promise<void> => {
    state.mtopRecords.push({
      api,
      version,
      query,
      data: parsed?.ok ? parsed.value : (rawData ?? undefined),
      cookieHeader,
      at: Date.now(),
      ret: r.ret,
    });
    deps.log(`mtop ${api} -> ${r.ret[0]}`);
    await delay(state.inject.slowMs);
    sendJson(
      res,
      200,
      { api, data: r.data ?? {}, ret: r.ret, v: version },
      r.setCookies ? { 'set-cookie': r.setCookies } : {},
    );
  };

  const handler = APIS[api];
  if (!handler) return answer(fail(FAIL.apiNotFound));

  const seller = state.sellers.get(cookies.get('unb') ?? '');
  if (api === ANON_API && !seller) return anonymous(cookies, query, rawData, answer, deps);
  // Risk control sits in front of everything else, like the real gateway's slider.
  if (seller?.flags.riskControl) {
    return answer({
      ret: [FAIL.userValidate, FAIL.rgv587],
      data: { url: punishUrl(deps.baseUrl(), api, version) },
    });
  }
  if (!seller || cookies.get('cookie2') !== seller.jar.get('cookie2') || seller.flags.sessionExpired) {
    return answer(fail(FAIL.sessionExpired));
  }
  if (query.appKey !== MTOP_APP_KEY || !query.t || !/^\d+$/.test(query.t) || rawData === null) {
    return answer(fail(FAIL.paramInvalid));
  }
  // A missing or stale h5 token is answered with a fresh one in Set-Cookie; the client re-signs.
  const tokenCookies = [
    setCookieLine('_m_h5_tk', seller.jar.get('_m_h5_tk') ?? ''),
    setCookieLine('_m_h5_tk_enc', seller.jar.get('_m_h5_tk_enc') ?? ''),
  ];
  const clientTk = cookies.get('_m_h5_tk');
  if (!clientTk) return answer({ ret: [FAIL.tokenEmpty], data: {}, setCookies: tokenCookies });
  if (clientTk !== seller.jar.get('_m_h5_tk')) {
    return answer({ ret: [FAIL.tokenExpired], data: {}, setCookies: tokenCookies });
  }
  const expected = md5(`${state.h5Token(seller)}&${query.t}&${MTOP_APP_KEY}&${rawData}`);
  if (query.sign !== expected) return answer(fail(FAIL.illegalAccess));
  if (!parsed?.ok || !isRecord(parsed.value)) return answer(fail(FAIL.paramInvalid));
  return answer(handler(seller, parsed.value, deps));
}

/** A visitor without a session: hand out an h5 token first, then accept calls signed with it. */
function anonymous(
  cookies: Map<string, string>,
  query: Record<string, string>,
  rawData: string | null,
  answer: (r: ApiResult) => Promise<void>,
  { state }: MtopDeps,
): Promise<void> {
  const tk = cookies.get('_m_h5_tk');
  if (!tk || !state.anonTokens.has(tk)) {
    const fresh = `${hex(16)}_${Date.now() + 86_400_000}`;
    state.anonTokens.add(fresh);
    return answer({
      ret: [FAIL.tokenEmpty],
      data: {},
      setCookies: [setCookieLine('_m_h5_tk', fresh), setCookieLine('_m_h5_tk_enc', hex(16))],
    });
  }
  const token = tk.split('_')[0] ?? '';
  if (query.appKey !== MTOP_APP_KEY || !query.t || rawData === null) return answer(fail(FAIL.paramInvalid));
  if (query.sign !== md5(`${token}&${query.t}&${MTOP_APP_KEY}&${rawData}`))
    return answer(fail(FAIL.illegalAccess));
  return answer(ok({ bizScene: 'home', sections: [] }));
}
