// `make bench`, operator part: 1 000 XianyuAccounts created at once against the local control
// plane (operator/test/bench/scale.ts), reported beside the targets and the previous run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { report } from './table.js';

const { values } = parseArgs({
  options: {
    help: { type: 'boolean', short: 'h' },
    accounts: { type: 'string', default: '1000' },
    'no-write': { type: 'boolean' },
  },
});
if (values.help) {
  console.log(`Usage: node --import tsx bench/operator.ts [--accounts N] [--no-write]
Creates N accounts at once on a fresh local control plane and measures the seconds until every
one is reconciled, operator RSS, API writes per account, and the writes of a second pass over
unchanged accounts. Writes bench/operator.json and bench/OPERATOR.md unless --no-write.`);
  process.exit(0);
}

const out = join(mkdtempSync(join(tmpdir(), 'xianyu-opbench-')), 'scale.json');
const script = new URL('../operator/test/bench/scale.ts', import.meta.url).pathname;
execFileSync(process.execPath, ['--import', 'tsx', script, '--accounts', values.accounts!, '--json', out], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, XIANYU_K8S_FRESH: '1' },
});
const r = JSON.parse(readFileSync(out, 'utf8')) as {
  accounts: number;
  reconciledSeconds: number;
  operatorPeakRssMiB: number;
  writesPerAccount: number;
  secondPassWrites: number;
};
report({
  title: 'Operator benchmark',
  file: 'operator',
  about:
    'Produced by `make bench` (bench/operator.ts → operator/test/bench/scale.ts): accounts created at once on a fresh local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok), the operator as a separate process.',
  runs: [
    {
      variant: `${r.accounts} accounts`,
      results: [
        {
          name: 'seconds until all reconciled',
          value: r.reconciledSeconds,
          unit: 's',
          target: '≤ 60',
          ok: r.reconciledSeconds <= 60,
        },
        {
          name: 'operator peak RSS',
          value: r.operatorPeakRssMiB,
          unit: 'MiB',
          target: '≤ 200',
          ok: r.operatorPeakRssMiB <= 200,
        },
        { name: 'API writes per account', value: r.writesPerAccount, unit: '', target: '-', ok: true },
        {
          name: 'second pass writes (nothing changed)',
          value: r.secondPassWrites,
          unit: '',
          target: '= 0',
          ok: r.secondPassWrites === 0,
        },
      ],
    },
  ],
  write: !values['no-write'],
});
