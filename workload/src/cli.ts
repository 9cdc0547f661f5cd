import { parseArgs } from 'node:util';

export const USAGE = `Usage: xianyu-workload [run] --config FILE [--data-dir DIR]
       xianyu-workload check --config FILE

Runs one Xianyu seller account: the IM session, the reply engine, /health /ready /metrics /status.

Commands:
  run      (default) start the workload
  check    validate the configuration and print every problem with its field path

Options:
  -c, --config FILE    YAML or JSON configuration (required)
      --data-dir DIR   PGlite data directory when no database URL is set (default ./data)
  -h, --help           this text
  -v, --version        print the version

Environment overrides: DATABASE_URL, PORT, LOG_LEVEL, XIANYU_COOKIES, XIANYU_API_URL,
XIANYU_IM_URL, XIANYU_PASSPORT_URL, AI_BASE_URL, AI_MODEL, AI_API_KEY.
Exit status: 0 ok, 1 runtime failure, 2 bad configuration or usage.`;

export interface CliArgs {
  command: 'run' | 'check' | 'help' | 'version';
  config?: string;
  dataDir?: string;
}

export class UsageError extends Error {}

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
  if (command !== 'run' && command !== 'check') throw new UsageError(`unknown command "${command}"`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  if (!values.config) throw new UsageError('--config FILE is required');
  return { command, config: values.config, ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}) };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}
