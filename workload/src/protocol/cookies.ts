// Cookie strings as the service wants them back: `k=v; k2=v2`, in first-seen order.
// Set-Cookie answers (mtop, passport) are merged in so `_m_h5_tk` and friends stay fresh.

export type CookieMap = Map<string, string>;

export function parseCookies(cookie: string): CookieMap {
  const map: CookieMap = new Map();
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (name) map.set(name, part.slice(eq + 1).trim());
  }
  return map;
}

export function serializeCookies(map: CookieMap): string {
  return [...map].map(([k, v]) => `${k}=${v}`).join('; ');
}

export function getCookie(cookie: string, name: string): string | undefined {
  return parseCookies(cookie).get(name);
}

/** The seller's numeric user id (protocol §1.2). */
export function readUnb(cookie: string): string | undefined {
  const unb = getCookie(cookie, 'unb');
  return unb && /^\d+$/.test(unb) ? unb : undefined;
}

interface SetCookie {
  name: string;
  value: string;
  deleted: boolean;
}

/** One `Set-Cookie` header value; deletion = Max-Age<=0 or Expires in the past. */
export function parseSetCookie(header: string, now = Date.now()): SetCookie | undefined {
  const [pair, ...attrs] = header.split(';');
  if (!pair) return undefined;
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  if (!name) return undefined;
  let deleted = false;
  for (const attr of attrs) {
    const [k = '', v = ''] = attr.split('=').map((s) => s.trim());
    const key = k.toLowerCase();
    if (key === 'max-age' && Number(v) <= 0) deleted = true;
    if (key === 'expires') {
      const at = Date.parse(v);
      if (!Number.isNaN(at) && at <= now) deleted = true;
    }
  }
  return { name, value, deleted };
}

/**
 * Merges `Set-Cookie` values into a cookie string. Accepts a `Headers` object (uses
 * `getSetCookie()`, which keeps the comma-bearing Expires dates intact) or raw values.
 */
export function mergeSetCookies(
  cookie: string,
  setCookies: Headers | readonly string[],
  now = Date.now(),
): { cookies: string; changed: boolean; names: string[] } {
  const list = Array.isArray(setCookies) ? setCookies : (setCookies as Headers).getSetCookie();
  const map = parseCookies(cookie);
  const names: string[] = [];
  for (const header of list) {
    const sc = parseSetCookie(header, now);
    if (!sc) continue;
    if (sc.deleted) {
      if (map.delete(sc.name)) names.push(sc.name);
    } else if (map.get(sc.name) !== sc.value) {
      map.set(sc.name, sc.value);
      names.push(sc.name);
    }
  }
  return names.length
    ? { cookies: serializeCookies(map), changed: true, names }
    : { cookies: cookie, changed: false, names };
}
