// `make demo`: the simulator and the built workload (on PGlite) play a scripted conversation;
// prints the transcript and a summary, stops the workload with SIGTERM, exits 0 when every
// expectation held. Run with --help for options.
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { simEnv, startWorkloadProcess, type WorkloadProcess } from '../harness/workload-process.js';
import { type Sim, startSim } from '../sim/index.js';

const { values } = parseArgs({
  options: { help: { type: 'boolean', short: 'h' }, keep: { type: 'boolean' }, verbose: { type: 'boolean' } },
});
if (values.help) {
  console.log(`Usage: node --import tsx test/demo/run.ts [--keep] [--verbose]

Starts the Xianyu simulator and the workload (workload/examples/demo.yaml, PGlite in .demo/),
plays: greeting → default reply once; keyword question; bargaining answered by the AI within
limits; the seller replies by hand → bot silent in that chat; a duplicate push → answered once;
a paid order → a code from the pool sent to the buyer and the shipment confirmed (自动发货).
  --keep      keep .demo/data (default: start from an empty database each run)
  --verbose   print the workload's log lines too`);
  process.exit(0);
}

const CONFIG = new URL('../../workload/examples/demo.yaml', import.meta.url).pathname;
const DATA = new URL('../../.demo/data', import.meta.url).pathname;

interface Step {
  who: string;
  text: string;
  expect: string;
  ok: boolean;
  got: string;
}
const steps: Step[] = [];
const say = (s: string) => process.stdout.write(`${s}\n`);

async function main(): Promise<number> {
  if (!values.keep) rmSync(DATA, { recursive: true, force: true });
  const sim = await startSim();
  const seller = sim.createSeller({ nick: '数码小店' });
  const item = sim.createItem({
    sellerId: seller.unb,
    title: 'Switch 游戏兑换码',
    price: '100',
    desc: '正版兑换码，付款后自动发货',
  });
  sim.ai.setHandler((req) => {
    const last = req.messages.at(-1)?.content ?? '';
    if (/80/.test(last)) return '好吧，那就 80 元给你吧';
    return '这个已经很实惠啦，最多给您优惠到 95 元哦';
  });
  say(`simulator  ${sim.url}  (seller ${seller.nick}, item ${item.itemId} 「${item.title}」 ¥${item.price})`);

  let wl: WorkloadProcess | undefined;
  try {
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const config = parse(readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;
    // The harness writes the config into a temp folder: pool files stay next to demo.yaml.
    const pools = (config.delivery as { pools?: Record<string, { file: string }> } | undefined)?.pools ?? {};
    for (const p of Object.values(pools)) p.file = new URL(p.file, new URL('.', `file://${CONFIG}`)).pathname;
    wl = await startWorkloadProcess({
      config: { ...config, dataDir: DATA },
      env: {
        ...simEnv(sim, seller),
        AI_BASE_URL: sim.aiBaseURL,
        AI_API_KEY: 'demo-key',
        LOG_LEVEL: 'info',
      },
    });
    say(`workload   ${wl.url}  ready (/health /ready /metrics /status)\n`);
    const w = wl;

    const buyer = async (
      buyerId: string,
      nick: string,
      text: string,
      expect: { reply: RegExp } | { silent: string },
    ): Promise<void> => {
      const before = sim.sent(seller.unb).length;
      const { chatId, messageId } = await sim.buyerSays({
        sellerId: seller.unb,
        buyerId,
        buyerNick: nick,
        itemId: item.itemId,
        text,
      });
      say(`  ${nick.padEnd(4, '　')} → ${text}`);
      if ('reply' in expect) {
        const sent = await sim
          .waitFor(
            () =>
              sim
                .sent(seller.unb)
                .slice(before)
                .find((s) => s.chatId === chatId),
            10_000,
          )
          .catch(() => undefined);
        const got = sent?.text ?? '(no reply)';
        say(`  ${'机器人'.padEnd(4, '　')} ← ${got}`);
        steps.push({
          who: nick,
          text,
          expect: `reply ${expect.reply}`,
          ok: !!sent && expect.reply.test(got),
          got,
        });
      } else {
        const line = await w
          .waitForLog((l) => l.messageId === messageId && l.decision !== undefined, 10_000)
          .catch(() => undefined);
        const extra = sim
          .sent(seller.unb)
          .slice(before)
          .find((s) => s.chatId === chatId);
        const reason = String(line?.reason ?? 'unknown');
        say(`  ${'机器人'.padEnd(4, '　')} · (silent: ${reason})`);
        steps.push({
          who: nick,
          text,
          expect: `silent (${expect.silent})`,
          ok: !extra && reason === expect.silent,
          got: extra ? `sent "${extra.text}"` : `silent (${reason})`,
        });
      }
    };

    say('① greeting → default reply, once per conversation');
    await buyer('3100000001', '小王', '你好', { reply: /欢迎光临/ });
    await buyer('3100000001', '小王', '在吗？', { silent: 'default_already_sent' });
    say('② keyword question');
    await buyer('3100000001', '小王', '请问什么时候发货？', { reply: /自动发货.*Switch 游戏兑换码/ });
    say('③ bargaining: the AI answers within limits (list ¥100, floor ¥90, 2 rounds)');
    await buyer('3100000001', '小王', '能便宜点吗？', { reply: /95 元/ });
    await buyer('3100000001', '小王', '80 元行吗', { reply: /不能再便宜/ });
    await buyer('3100000001', '小王', '再少点吧', { reply: /不能再便宜/ });
    say('④ the seller replies by hand → the bot stays silent in that chat');
    await buyer('3100000002', '小李', '你好', { reply: /欢迎光临/ });
    const chat2 = sim.sent(seller.unb).at(-1)!.chatId;
    await sim.sellerSaysByHand({
      sellerId: seller.unb,
      chatId: chat2,
      buyerId: '3100000002',
      text: '我是店主，我来跟你聊',
    });
    say(`  ${'店主'.padEnd(4, '　')} ← 我是店主，我来跟你聊   (typed in the app)`);
    await w.waitForLog((l) => l.decision === 'takeover', 10_000);
    await buyer('3100000002', '小李', '那什么时候发货？', { silent: 'takeover' });
    say('⑤ a duplicate push is answered once');
    sim.inject.duplicatePushes(seller.unb, true);
    await buyer('3100000003', '小张', '多久到账？', { reply: /自动发货/ });
    // Both copies have been acked (or the second dropped) before we count the replies.
    await w
      .waitForLog((l) => l.kind === 'duplicate' || l.msg === 'duplicate message dropped', 3_000)
      .catch(() => {});
    sim.inject.duplicatePushes(seller.unb, false);
    const chat3 = sim.sent(seller.unb).at(-1)!.chatId;
    const answers = sim.sent(seller.unb).filter((s) => s.chatId === chat3).length;
    steps.push({
      who: '小张',
      text: '(duplicate push)',
      expect: 'exactly 1 reply',
      ok: answers === 1,
      got: `${answers} replies`,
    });
    say(`  duplicate push delivered twice, replies in that chat: ${answers}`);

    say('⑥ a paid order: a code from the pool is sent and the shipment confirmed (自动发货)');
    {
      const orderId = '4100000000001';
      const before = sim.sent(seller.unb).length;
      const { chatId } = await sim.pushTradeCard({
        sellerId: seller.unb,
        buyerId: '3100000001',
        itemId: item.itemId,
        orderId,
        kind: 'paid',
      });
      say(`  ${'小王'.padEnd(4, '　')} → [我已付款，等待你发货]   (order ${orderId})`);
      const sent = await sim
        .waitFor(
          () =>
            sim
              .sent(seller.unb)
              .slice(before)
              .find((s) => s.chatId === chatId && s.text?.includes(orderId)),
          10_000,
        )
        .catch(() => undefined);
      say(`  ${'机器人'.padEnd(4, '　')} ← ${sent?.text ?? '(nothing sent)'}`);
      const shipped = await sim
        .waitFor(() => sim.orders(seller.unb).find((o) => o.orderId === orderId && o.shippedAt), 10_000)
        .catch(() => undefined);
      say(
        `  ${'闲鱼'.padEnd(4, '　')} · ${shipped ? '[你已发货] shipment confirmed (consign.dummy)' : '(not confirmed)'}`,
      );
      steps.push({
        who: '小王',
        text: '(paid order)',
        expect: 'one code sent, shipment confirmed',
        ok: !!sent && /DEMO-SW-/.test(sent.text ?? '') && !!shipped,
        got: `${sent ? 'code sent' : 'no code'}, ${shipped ? 'confirmed' : 'not confirmed'}`,
      });
    }

    const metrics = (await w.get('/metrics')).body;
    const replies = [...metrics.matchAll(/^xianyu_replies_sent_total\{[^}]*source="([^"]+)"[^}]*\} (\d+)/gm)]
      .map((m) => `${m[1]}=${m[2]}`)
      .join(' ');
    const deliveries = [...metrics.matchAll(/^xianyu_deliveries_total\{[^}]*result="([^"]+)"[^}]*\} (\d+)/gm)]
      .map((m) => `${m[1]}=${m[2]}`)
      .join(' ');
    const stock = /^xianyu_delivery_stock_codes\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? '?';
    const status = (await w.get('/status')).json() as { session: { state: string } };
    const code = await w.stop('SIGTERM');
    steps.push({ who: '-', text: 'SIGTERM', expect: 'exit 0', ok: code === 0, got: `exit ${code}` });
    say(`\nworkload stopped with SIGTERM: exit ${code}`);
    if (values.verbose) for (const l of w.output()) say(`    ${l}`);

    const failed = steps.filter((s) => !s.ok);
    say('\nsummary');
    say(`  session state during the demo: ${status.session.state}`);
    say(`  replies by source: ${replies}`);
    say(`  deliveries: ${deliveries}; codes left in the pool: ${stock}`);
    say(`  checks: ${steps.length - failed.length} passed, ${failed.length} failed`);
    for (const f of failed) say(`  FAILED ${f.who}: "${f.text}" expected ${f.expect}, got ${f.got}`);
    return failed.length === 0 ? 0 : 1;
  } catch (err) {
    say(`demo failed: ${(err as Error).message}`);
    if (wl) for (const l of wl.output().slice(-30)) say(`    ${l}`);
    return 1;
  } finally {
    await wl?.stop('SIGKILL').catch(() => {});
    await closeSim(sim);
  }
}

async function closeSim(sim: Sim): Promise<void> {
  await sim.close().catch(() => {});
}

main().then((code) => process.exit(code));
