// Passport QR login (protocol 2): mini_login.htm viewData, generate.do, query.do with
// NEW → SCANED → CONFIRMED / EXPIRED, and the iframeRedirect risk-verification case.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Seller, State } from './state.js';
import { delay, hex, readBody, sendJson, setCookieLine } from './util.js';

export type QrStatus = 'NEW' | 'SCANED' | 'CONFIRMED' | 'EXPIRED' | 'CANCELED';

interface QrSession {
  t: number;
  ck: string;
  status: QrStatus;
  sellerId?: string;
  verify: boolean;
  createdAt: number;
}

export interface SimQr {
  /** QR sessions generated so far (newest last). */
  sessions(): { t: string; status: QrStatus; sellerId?: string }[];
  /** The phone app scanned the code (default: newest session). */
  scan(t?: string): void;
  /** The user confirmed on the phone: logs in `sellerId` (a new seller if absent); verify → iframeRedirect. */
  confirm(o?: { t?: string; sellerId?: string; verify?: boolean }): Seller;
  expire(t?: string): void;
  cancel(t?: string): void;
}

const QR_TTL_MS = 300_000;

const envelope = (success: boolean, data: Record<string, unknown>) => ({
  content: { data, status: 0, success },
  hasError: false,
});

export class Qr {
  private readonly list: QrSession[] = [];
  readonly api: SimQr;

  constructor(
    private readonly state: State,
    private readonly baseUrl: () => string,
    private readonly log: (line: string) => void,
  ) {
    const find = (t?: string): QrSession => {
      const s = t === undefined ? this.list.at(-1) : this.list.find((x) => String(x.t) === t);
      if (!s) throw new Error(`no QR session ${t ?? '(none generated yet)'}`);
      return s;
    };
    this.api = {
      sessions: () =>
        this.list.map((s) => ({ t: String(s.t), status: this.status(s), sellerId: s.sellerId })),
      scan: (t) => {
        const s = find(t);
        if (this.status(s) === 'NEW') s.status = 'SCANED';
      },
      confirm: (o = {}) => {
        const s = find(o.t);
        const seller = o.sellerId ? this.state.seller(o.sellerId) : this.state.createSeller();
        s.status = 'CONFIRMED';
        s.sellerId = seller.unb;
        s.verify = o.verify ?? false;
        return this.state.sellerView(seller);
      },
      expire: (t) => {
        find(t).status = 'EXPIRED';
      },
      cancel: (t) => {
        find(t).status = 'CANCELED';
      },
    };
  }

  private status(s: QrSession): QrStatus {
    if ((s.status === 'NEW' || s.status === 'SCANED') && Date.now() - s.createdAt > QR_TTL_MS)
      s.status = 'EXPIRED';
    return s.status;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path === '/mini_login.htm') {
      await readBody(req);
      const viewData = {
        loginFormData: {
          appName: url.searchParams.get('appName') ?? 'xianyu',
          appEntrance: url.searchParams.get('appEntrance') ?? 'web',
          _csrf_token: hex(16),
          umidToken: hex(20),
          hsiz: hex(16),
          bizParams: 'taobaoBizLoginFrom=web',
          mainPage: false,
          isMobile: false,
          lang: 'zh_CN',
          returnUrl: '',
          fromSite: '77',
          isIframe: true,
          documentReferer: 'https://www.goofish.com/',
          defaultView: 'qrcode',
        },
      };
      const html = `<!doctype html><html><head><meta charset="utf-8"></head><body><div id="login"></div><script>window.viewData = ${JSON.stringify(viewData)};</script></body></html>`;
      await delay(this.state.inject.slowMs);
      res.writeHead(200, { 'content-type': 'text/html;charset=UTF-8' });
      res.end(html);
      return true;
    }
    if (path === '/newlogin/qrcode/generate.do') {
      await readBody(req);
      const s: QrSession = {
        t: Date.now() * 1000 + this.list.length,
        ck: hex(16),
        status: 'NEW',
        verify: false,
        createdAt: Date.now(),
      };
      this.list.push(s);
      this.log('qr generated');
      await delay(this.state.inject.slowMs);
      sendJson(
        res,
        200,
        envelope(true, {
          t: s.t,
          ck: s.ck,
          codeContent: `https://passport.goofish.com/qrcodeCheck.htm?lgToken=${hex(16)}&tbScanOpenType=Notification`,
          resultCode: 100,
        }),
      );
      return true;
    }
    if (path === '/newlogin/qrcode/query.do') {
      const form = new URLSearchParams((await readBody(req)).toString('utf8'));
      const s = this.list.find((x) => String(x.t) === form.get('t'));
      await delay(this.state.inject.slowMs);
      if (req.method !== 'POST' || !s || s.ck !== form.get('ck')) {
        sendJson(res, 200, envelope(false, { resultCode: 14030, titleMsg: '二维码无效' }));
        return true;
      }
      const status = this.status(s);
      if (status !== 'CONFIRMED' || !s.sellerId) {
        sendJson(res, 200, envelope(true, { qrCodeStatus: status, resultCode: 100 }));
        return true;
      }
      if (s.verify) {
        sendJson(
          res,
          200,
          envelope(true, {
            qrCodeStatus: 'CONFIRMED',
            iframeRedirect: true,
            iframeRedirectUrl: `${this.baseUrl()}/iv/identity_verify.htm?havanaId=${s.sellerId}&token=${hex(16)}`,
            resultCode: 100,
          }),
        );
        return true;
      }
      const seller = this.state.seller(s.sellerId);
      this.log(`qr confirmed seller=${seller.unb}`);
      sendJson(res, 200, envelope(true, { qrCodeStatus: 'CONFIRMED', resultCode: 100 }), {
        'set-cookie': [...seller.jar].map(([k, v]) => setCookieLine(k, v, 31536000)),
      });
      return true;
    }
    return false;
  }
}
