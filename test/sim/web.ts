// Non-mtop HTTP endpoints of protocol 2: passport session revive, image upload, punish page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { State } from './state.js';
import { delay, hex, parseCookies, readBody, sendJson, setCookieLine } from './util.js';

export interface WebDeps {
  state: State;
  log: (line: string) => void;
}

/** Returns false when the path is not one of ours. */
export async function handleWeb(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: WebDeps,
): Promise<boolean> {
  const { state } = deps;
  const path = url.pathname;
  if (path === '/newlogin/hasLogin.do' || path === '/newlogin/silentHasLogin.do') {
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    const cookies = parseCookies(req.headers.cookie);
    const seller = state.sellers.get(form.get('hid') ?? cookies.get('unb') ?? '');
    const cookie2 = form.get('hsiz') || cookies.get('cookie2');
    const valid =
      req.method === 'POST' &&
      !!seller &&
      !seller.flags.sessionExpired &&
      cookie2 === seller.jar.get('cookie2') &&
      cookies.get('unb') === seller.unb;
    deps.log(`passport ${path} -> ${valid ? 'success' : 'failure'}`);
    await delay(state.inject.slowMs);
    if (!valid || !seller) {
      sendJson(res, 200, {
        content: {
          data: { resultCode: 14032, titleMsg: '登录已失效，请重新登录' },
          status: 0,
          success: false,
        },
        hasError: false,
      });
      return true;
    }
    // A revived session gets refreshed cookies, like the browser flow.
    const sg = `E100${hex(40)}`;
    seller.jar.set('sgcookie', sg);
    sendJson(
      res,
      200,
      { content: { data: { resultCode: 100, hid: seller.unb }, status: 0, success: true }, hasError: false },
      { 'set-cookie': [setCookieLine('sgcookie', sg, 31536000)] },
    );
    return true;
  }
  if (path === '/api/upload.api') {
    const body = await readBody(req);
    const cookies = parseCookies(req.headers.cookie);
    const seller = state.sellers.get(cookies.get('unb') ?? '');
    await delay(state.inject.slowMs);
    if (!seller || cookies.get('cookie2') !== seller.jar.get('cookie2')) {
      sendJson(res, 200, { success: false, code: 'NOT_LOGIN', message: '未登录' });
      return true;
    }
    if (req.method !== 'POST' || !body.includes('name="file"')) {
      sendJson(res, 200, { success: false, code: 'PARAM_ERROR', message: 'missing multipart field file' });
      return true;
    }
    sendJson(res, 200, {
      success: true,
      object: {
        url: `https://img.alicdn.com/imgextra/i4/O1CN01${hex(10)}_!!${seller.unb}-0-fleamarket.jpg`,
        pix: '800x600',
        size: body.length,
      },
    });
    return true;
  }
  if (path === '/order-detail') {
    // www.goofish.com/order-detail?orderId=<id>&role=seller: no API exists; the reference projects
    // scrape this page for 规格名:规格值, quantity and amount. Here it is rendered on the server.
    const cookies = parseCookies(req.headers.cookie);
    const seller = state.sellers.get(cookies.get('unb') ?? '');
    const order = state.orders.get(url.searchParams.get('orderId') ?? '');
    await delay(state.inject.slowMs);
    if (!seller || cookies.get('cookie2') !== seller.jar.get('cookie2') || seller.flags.sessionExpired) {
      res.writeHead(302, { location: '/mini_login.htm' });
      res.end();
      return true;
    }
    if (!order || order.sellerId !== seller.unb) {
      res.writeHead(404, { 'content-type': 'text/html;charset=UTF-8' });
      res.end('<!doctype html><html><body><div class="error">订单不存在</div></body></html>');
      return true;
    }
    const item = state.items.get(order.itemId);
    const esc = (t: string) => t.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
    const unit = Number(item?.price ?? '0');
    const amount = order.amount ?? (unit * order.quantity).toFixed(2);
    const html =
      '<!doctype html><html><head><meta charset="utf-8"><title>订单详情</title></head><body>' +
      `<div class="order-status">${esc(order.status)}</div>` +
      `<div class="item"><div class="title">${esc(item?.title ?? '')}</div>` +
      (order.spec ? `<div class="sku">${esc(order.spec)}</div>` : '') +
      `<div class="price">¥${esc(item?.price ?? '')}</div><div class="quantity">x${order.quantity}</div></div>` +
      `<div class="pay">实付款 ¥${esc(amount)}</div>` +
      `<div class="info"><div>订单编号:${esc(order.orderId)}</div></div>` +
      '</body></html>';
    res.writeHead(200, { 'content-type': 'text/html;charset=UTF-8' });
    res.end(html);
    return true;
  }
  if (/\/_____tmd_____\/punish$/.test(path)) {
    await readBody(req);
    const html =
      '<!doctype html><html><head><meta charset="utf-8"><title>验证</title></head>' +
      '<body><div id="nc_1_wrapper"><span id="nc_1_n1z" class="nc_iconfont btn_slide">&gt;</span>' +
      '<span class="nc-lang-cnt">请按住滑块，拖动到最右边</span></div></body></html>';
    res.writeHead(200, { 'content-type': 'text/html;charset=UTF-8' });
    res.end(html);
    return true;
  }
  return false;
}
