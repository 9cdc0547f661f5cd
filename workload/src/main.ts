#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseCli, USAGE, UsageError } from './cli.js';
import { ConfigError, loadConfig } from './config/load.js';

// Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** In a cluster, the reason for exit 2 also goes to the account status (best effort, bounded). */
async function reportInvalid(message: string): Promise<void> {
  const [{ reportConfigInvalid }, { createLogger }] = await Promise.all([
    import('./status/index.js'),
    import('./log.js'),
  ]);
  const done = reportConfigInvalid(
    message.replace(/^invalid configuration in [^\n]*\n/, ''),
    createLogger('warn'),
  );
  await Promise.race([done, new Promise((r) => setTimeout(r, 5_000).unref())]);
}

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseCli>;
  try {
    args = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xianyu-workload: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (args.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(args.config!, process.env, args.dataDir ? { dataDir: args.dataDir } : {});
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      if (args.command === 'run') await reportInvalid(err.message);
      return 2;
    }
    throw err;
  }
  if (args.command === 'check') {
    process.stdout.write(`${args.config}: configuration is valid (account ${loaded.config.account.id})\n`);
    return 0;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (args.command === 'orders' || args.command === 'redeliver' || args.command === 'explain-order') {
    const cmd = await import('./delivery/commands.js');
    if (args.command === 'orders') return cmd.ordersCommand(loaded, out, args.limit);
    if (args.command === 'redeliver') return cmd.redeliverCommand(loaded, args.orderId!, out);
    return cmd.explainCommand(
      loaded,
      args.orderId,
      {
        ...(args.item ? { item: args.item } : {}),
        ...(args.spec ? { spec: args.spec } : {}),
        ...(args.title ? { title: args.title } : {}),
      },
      out,
    );
  }
  // Loaded only to run: `check` and `--help` stay fast and need no database or network code.
  const { startWorkload } = await import('./app.js');
  let fatal: ((err: Error) => void) | undefined;
  const workload = await startWorkload(loaded, { onFatal: (err) => fatal?.(err) });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      workload.log.info({ signal }, 'signal received');
      const force = setTimeout(() => resolve(1), 15_000);
      force.unref();
      workload.stop().then(
        () => resolve(0),
        (err: Error) => {
          workload.log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    fatal = (err) => {
      workload.log.error({ err }, 'fatal: stopping');
      const force = setTimeout(() => resolve(1), 15_000);
      force.unref();
      workload.stop().finally(() => resolve(1));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`xianyu-workload: ${err.message}\n`);
    process.exit(1);
  },
);
