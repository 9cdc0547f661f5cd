import { createHash } from 'node:crypto';
import { MTOP_APP_KEY, MTOP_JSV } from './constants.js';
import { getCookie } from './cookies.js';

// mtop request signing (protocol §1.3): the same md5 for every h5api call.

/** The sign token: `_m_h5_tk` up to its first `_` (the rest is its expiry). */
export function signToken(cookies: string): string {
  const tk = getCookie(cookies, '_m_h5_tk') ?? '';
  const us = tk.indexOf('_');
  return us === -1 ? tk : tk.slice(0, us);
}

/** Lowercase hex md5 of `<token>&<t>&34839810&<data>`. */
export function mtopSign(token: string, t: string | number, data: string, appKey = MTOP_APP_KEY): string {
  return createHash('md5').update(`${token}&${t}&${appKey}&${data}`, 'utf8').digest('hex');
}

export interface MtopQueryInput {
  api: string;
  version: string;
  /** The exact JSON string sent as form field `data`. */
  data: string;
  cookies: string;
  t?: number;
  /** Call-specific extras (the token call's spm/sm params). */
  extra?: Record<string, string>;
}

/** The common query params of an h5api call, signed. */
export function mtopQuery(input: MtopQueryInput): URLSearchParams {
  const t = String(input.t ?? Date.now());
  const sign = mtopSign(signToken(input.cookies), t, input.data);
  return new URLSearchParams({
    jsv: MTOP_JSV,
    appKey: MTOP_APP_KEY,
    t,
    sign,
    v: input.version,
    type: 'originaljson',
    accountSite: 'xianyu',
    dataType: 'json',
    timeout: '20000',
    api: input.api,
    sessionOption: 'AutoLoginOnly',
    ...input.extra,
  });
}

/** Extra params the browser sends on the token call (cosmetic, but kept to look like the web client). */
export const TOKEN_CALL_EXTRA: Record<string, string> = {
  dangerouslySetWindvaneParams: '[object Object]',
  smToken: 'token',
  queryToken: 'sm',
  sm: 'sm',
  spm_cnt: 'a21ybx.im.0.0',
  spm_pre: 'a21ybx.home.sidebar.1.4c053da6IXTxSx',
};
