import { parseArgs } from 'node:util';

export const USAGE = `Usage: xianyu-workload [run] --config FILE [--data-dir DIR]
       xianyu-workload check --config FILE
       xianyu-workload orders --config FILE [--limit N]
       xianyu-workload redeliver ORDER --config FILE
       xianyu-workload explain-order [ORDER] --config FILE [--item ID] [--spec "名:值"] [--title TEXT]

Runs one Xianyu seller account: the IM session, the reply engine, auto-delivery,
/health /ready /metrics /status.

Commands:
  run            (default) start the workload; with PostgreSQL, a second process for the same
                 account waits on standby (/ready: 503 "standby") and takes over when the first dies
  check          validate the configuration and print every problem with its field path
  orders         list the account's orders with their delivery state (never the codes)
  redeliver      ask the running workload to send the same content of ORDER again (补发货)
  explain-order  which delivery rule ORDER (or an order of --item/--spec/--title) takes, and why

Options:
  -c, --config FILE    YAML or JSON configuration (required)
      --data-dir DIR   PGlite data directory when no database URL is set (default ./data)
      --limit N        orders: how many, newest first (default 50)
      --item ID        explain-order: item id of a hypothetical order (or overriding ORDER's)
      --spec TEXT      explain-order: spec as "规格名:规格值[;...]"
      --title TEXT     explain-order: item title for keyword rules
  -h, --help           this text
  -v, --version        print the version

Environment overrides: DATABASE_URL, PORT, LOG_LEVEL, XIANYU_COOKIES, XIANYU_API_URL,
XIANYU_IM_URL, XIANYU_PASSPORT_URL, AI_BASE_URL, AI_MODEL, AI_API_KEY.
Test hook (never in production): XIANYU_CRASH_AT=after-claim:P,after-send:P,after-record:P,mid-import:P
kills the process with SIGKILL at that delivery step with probability P.
With PGlite (no database URL) the orders/redeliver/explain-order commands need the workload
stopped (one process per data folder); with PostgreSQL they work while it runs.
Exit status: 0 ok, 1 runtime failure, 2 bad configuration or usage.`;

export type Command = 'run' | 'check' | 'orders' | 'redeliver' | 'explain-order' | 'help' | 'version';

export interface CliArgs {
  command: Command;
  config?: string;
  dataDir?: string;
  orderId?: string;
  limit?: number;
  item?: string;
  spec?: string;
  title?: string;
}

export class UsageError extends Error {}

const COMMANDS = new Set(['run', 'check', 'orders', 'redeliver', 'explain-order']);

export function parseCli(argv: string[]): CliArgs {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const command = positionals[0] ?? 'run';
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`);
  const takesOrder = command === 'redeliver' || command === 'explain-order';
  const maxPositionals = takesOrder ? 2 : 1;
  if (positionals.length > maxPositionals)
    throw new UsageError(`unexpected argument "${positionals[maxPositionals]}"`);
  const orderId = takesOrder ? positionals[1] : undefined;
  if (command === 'redeliver' && !orderId) throw new UsageError('redeliver needs an ORDER id');
  if (command === 'explain-order' && !orderId && !values.item) {
    throw new UsageError('explain-order needs an ORDER id or --item');
  }
  if (!values.config) throw new UsageError('--config FILE is required');
  let limit: number | undefined;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
  }
  return {
    command: command as Command,
    config: values.config,
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    ...(orderId ? { orderId } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(values.item ? { item: values.item } : {}),
    ...(values.spec ? { spec: values.spec } : {}),
    ...(values.title ? { title: values.title } : {}),
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string' },
      limit: { type: 'string' },
      item: { type: 'string' },
      spec: { type: 'string' },
      title: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}
