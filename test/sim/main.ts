// Runnable simulator: `node --import tsx test/sim/main.ts [--port N] [--host H]`.
import { parseArgs } from 'node:util';
import { startSim } from './index.js';

const USAGE = `Usage: node --import tsx test/sim/main.ts [options]

A protocol-faithful simulator of the Xianyu (goofish) service on loopback:
mtop (/h5/<api>/<version>/), passport (/newlogin/..., /mini_login.htm, QR login), the IM WebSocket (/),
an OpenAI-compatible AI endpoint (/v1/chat/completions) and a control API (/_sim/...).

Options:
  --port N     port to listen on (default 0 = random free port)
  --host H     address to bind (default 127.0.0.1)
  --quiet      do not print log lines
  --help       show this help

On start it creates one demo seller and one item and prints one JSON line with
url, imUrl, aiBaseURL and the seller's unb + cookies.

Control API (JSON POST unless noted):
  /_sim/sellers {unb?,nick?}                  /_sim/items {sellerId,title,price,desc?,itemId?,skuList?}
  /_sim/buyer-says {sellerId,buyerId,text,buyerNick?,itemId?,chatId?,createdAt?,sessionType?}
  /_sim/seller-says {sellerId,chatId,buyerId,text}
  /_sim/trade-card {sellerId,buyerId,itemId,orderId,kind,quantity?,spec?,amount?}
  GET /order-detail?orderId=<id>&role=seller   the seller's order page (cookies required)
  /_sim/typing {sellerId,buyerId}   /_sim/system-notice {sellerId}   /_sim/entries {sellerId,entries,plainJson?}
  /_sim/inject/<name>  riskControl|sessionExpired|tokenExpired|silent|duplicatePushes|rejectRegister {sellerId,on}
                       dropSockets {sellerId,closeFrame}  malformedPush {sellerId}  slowMs {ms}
                       csiForbid {pattern?,flags?}  (kebab-case names work too)
  /_sim/qr/scan {t?}   /_sim/qr/confirm {t?,sellerId?,verify?}   /_sim/qr/expire {t?}   GET /_sim/qr
  /_sim/ai/script {answers}   /_sim/ai/fail {status,count?}   /_sim/ai/delay {ms}
  GET /_sim/sent  /_sim/frames  /_sim/mtop-calls  /_sim/pushes  /_sim/orders  /_sim/connections
      /_sim/ai/requests  /_sim/info   (?sellerId= filters where it applies)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${values.port}`);
  const sim = await startSim({
    host: values.host,
    port,
    log: values.quiet ? undefined : (line) => process.stderr.write(`[sim] ${line}\n`),
  });
  const seller = sim.createSeller({ nick: '演示卖家' });
  const item = sim.createItem({
    sellerId: seller.unb,
    title: '九成新 Kindle Paperwhite 5',
    price: '450.00',
    desc: '自用九成新，无划痕，送保护套。',
  });
  process.stdout.write(
    `${JSON.stringify({ url: sim.url, imUrl: sim.imUrl, aiBaseURL: sim.aiBaseURL, seller, item })}\n`,
  );
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`[sim] ${signal}: shutting down\n`);
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`sim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
