// `make cluster-up` / `make cluster-down`: node --import tsx test/cluster/cli.ts up|down|status
import { relative, resolve } from 'node:path';
import { DEFAULT_DIR, REPO_ROOT, startControlPlane, stopControlPlane } from './controlplane.js';

// XIANYU_CLUSTER_DIR moves the state folder (default .cluster/), e.g. to run a second one.
const dir = process.env.XIANYU_CLUSTER_DIR ? resolve(process.env.XIANYU_CLUSTER_DIR) : DEFAULT_DIR;
const log = (line: string) => process.stderr.write(`${line.startsWith('>>') ? line : `>> ${line}`}\n`);

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'up': {
      const started = Date.now();
      const nodes = Number(process.env.KWOK_NODES ?? '1');
      const cp = await startControlPlane({ dir, reuse: true, detached: true, nodes, log });
      const rel = relative(process.cwd(), cp.kubeconfigPath) || cp.kubeconfigPath;
      process.stdout.write(
        [
          `Local control plane ${cp.reused ? 'already running' : `Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`}: ${cp.server}`,
          `  nodes:      ${cp.nodeNames.join(', ')} (kwok: pods are scheduled and report Running, no containers run)`,
          `  kubeconfig: ${cp.kubeconfigPath}`,
          `  logs:       ${cp.dir}/logs/`,
          '',
          'Use it:',
          `  export KUBECONFIG=${rel.startsWith('..') ? cp.kubeconfigPath : `$PWD/${rel}`}`,
          `  export PATH=${cp.binDir}:$PATH   # kubectl, helm, kubeconform`,
          '  kubectl get nodes',
          '',
          `Stop it with: ${dir === DEFAULT_DIR ? '' : `XIANYU_CLUSTER_DIR=${dir} `}make cluster-down`,
          '',
        ].join('\n'),
      );
      return 0;
    }
    case 'down': {
      const stopped = await stopControlPlane(dir);
      process.stdout.write(
        stopped
          ? `Stopped the local control plane and removed ${relative(REPO_ROOT, dir)}/\n`
          : 'No local control plane was running.\n',
      );
      return 0;
    }
    default:
      process.stderr.write('usage: cli.ts up|down\n');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
