import type { Logger } from '../log.js';
import { CHROME_UA, ORIGIN, REFERER } from '../protocol/constants.js';
import { getCookie } from '../protocol/cookies.js';
import type { MtopClient } from './mtop.js';

// Session revive (protocol §2 "Session revive"): what XianyuAutoAgent tries once before it
// declares the login dead. Success refreshes cookies through the MtopClient's jar.

export async function reviveLogin(p: {
  passport: string;
  mtop: MtopClient;
  log?: Logger;
  timeoutMs?: number;
}): Promise<boolean> {
  const cookies = p.mtop.cookies;
  const form = new URLSearchParams({
    hid: getCookie(cookies, 'unb') ?? '',
    ltl: 'true',
    appName: 'xianyu',
    appEntrance: 'web',
    _csrf_token: getCookie(cookies, 'XSRF-TOKEN') ?? '',
    umidToken: '',
    hsiz: getCookie(cookies, 'cookie2') ?? '',
    bizParams: 'taobaoBizLoginFrom=web',
    mainPage: 'false',
    isMobile: 'false',
    lang: 'zh_CN',
    returnUrl: '',
    fromSite: '77',
    isIframe: 'true',
    documentReferer: REFERER,
    defaultView: 'hasLogin',
    umidTag: 'SERVER',
    deviceId: getCookie(cookies, 'cna') ?? '',
  });
  const url = `${p.passport.replace(/\/+$/, '')}/newlogin/hasLogin.do?appName=xianyu&fromSite=77`;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: ORIGIN,
        referer: REFERER,
        'user-agent': CHROME_UA,
        cookie: cookies,
      },
      body: form,
      signal: AbortSignal.timeout(p.timeoutMs ?? 20_000),
    });
    p.mtop.mergeCookies(res.headers);
    const body = (await res.json()) as { content?: { success?: unknown } };
    return body?.content?.success === true;
  } catch (err) {
    p.log?.warn({ err }, 'session revive (hasLogin) failed');
    return false;
  }
}
