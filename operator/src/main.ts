#!/usr/bin/env node
import { pino } from 'pino';
import { startOperator } from './operator.js';
import { parseOptions, USAGE } from './options.js';

// Entry point: flags → operator; SIGTERM/SIGINT drain reconciles and release the lease.

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`xianyu-operator: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = pino({
    level: parsed.logLevel,
    base: { controller: 'xianyuaccount' },
    formatters: { level: (label) => ({ level: label }) },
  });
  const operator = await startOperator(parsed.options, log);
  return await new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'signal received');
      const force = setTimeout(() => resolve(1), 25_000);
      force.unref();
      void operator.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    void operator.lostLeadership.then(() => {
      log.error('leadership lost: exiting so a restart campaigns again');
      void operator.stop().finally(() => resolve(1));
    });
  });
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`xianyu-operator: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
