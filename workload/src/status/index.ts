import { existsSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { ImSession } from '../session/types.js';
import { sessionConditions } from './conditions.js';
import { kubeTargetFromEnv, StatusReporter } from './reporter.js';

export type { RuntimeCondition } from './conditions.js';
export { StatusReporter } from './reporter.js';

/** Last-message time is refreshed at most this often (one write per account, not per message). */
const LAST_MESSAGE_EVERY_MS = 300_000;

/** Reports the session's conditions to the XianyuAccount when running in (or pointed at) a cluster. */
export function startStatusReporting(
  session: ImSession,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): StatusReporter | undefined {
  const target = kubeTargetFromEnv(env, existsSync);
  if (!target) {
    log.debug('no Kubernetes API, token or account name: status reporting off');
    return undefined;
  }
  const reporter = new StatusReporter(target, log);
  const push = () => {
    const st = session.status();
    reporter.update(sessionConditions(st), {
      ...(st.connectedSince ? { connectedSince: st.connectedSince } : {}),
      ...(st.lastMessageAt ? { lastMessageTime: st.lastMessageAt } : {}),
    });
  };
  session.on('state', push);
  push();
  setInterval(push, LAST_MESSAGE_EVERY_MS).unref();
  log.info(
    { account: target.name, namespace: target.namespace },
    'reporting runtime conditions to the XianyuAccount',
  );
  return reporter;
}

/**
 * The workload refuses its config (exit 2): in a cluster, say so in the account status first,
 * so that `kubectl describe` shows why the pod restarts (the logs say it too).
 */
export async function reportConfigInvalid(
  message: string,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const target = kubeTargetFromEnv(env, existsSync);
  if (!target) return;
  const reporter = new StatusReporter(target, log, { debounceMs: 0 });
  reporter.update([
    {
      type: 'Connected',
      status: 'False',
      reason: 'ConfigInvalid',
      message: `the workload refused its configuration: ${message}`.slice(0, 2000),
    },
  ]);
  await reporter.flush();
}
