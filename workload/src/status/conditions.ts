import type { SessionStatus } from '../session/types.js';

// What the workload tells its XianyuAccount (status.conditions, metav1.Condition shape).
// Pure: session status in, conditions out; the reporter keeps lastTransitionTime.

export interface RuntimeCondition {
  type: 'Connected' | 'LoginValid' | 'StockAvailable';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export function sessionConditions(s: SessionStatus): RuntimeCondition[] {
  switch (s.state) {
    case 'registered':
      return [
        { type: 'Connected', status: 'True', reason: 'Connected', message: 'registered on the Xianyu IM' },
        { type: 'LoginValid', status: 'True', reason: 'LoginValid', message: 'access token issued' },
      ];
    case 'risk_control':
      return [
        { type: 'Connected', status: 'False', reason: 'RiskControl', message: retry('risk control', s) },
        {
          type: 'LoginValid',
          status: 'False',
          reason: 'RiskControl',
          message:
            'Xianyu asks for a slider captcha (risk control): solve it in a browser for this account, see /status',
        },
      ];
    case 'login_expired':
      return [
        { type: 'Connected', status: 'False', reason: 'LoginExpired', message: retry('login expired', s) },
        {
          type: 'LoginValid',
          status: 'False',
          reason: 'LoginExpired',
          message: 'the login cookie expired: log in again and update the cookies Secret',
        },
      ];
    case 'stopped':
      return [
        { type: 'Connected', status: 'False', reason: 'Stopped', message: 'the workload is shutting down' },
      ];
    default:
      return [
        {
          type: 'Connected',
          status: 'False',
          reason: s.state === 'backoff' ? 'Reconnecting' : 'Connecting',
          message: s.reason ? `not connected: ${s.reason}` : 'connecting to the Xianyu IM',
        },
      ];
  }
}

function retry(what: string, s: SessionStatus): string {
  return s.nextRetryAt ? `${what}: next attempt at ${s.nextRetryAt.toISOString()}` : what;
}

/**
 * StockAvailable from the code pools this account delivers from: False while paid orders wait
 * for codes or a pool is empty. Counts stay out of the message so a delivery is not a write.
 */
export function stockCondition(
  pools: { pool: string; free: number }[],
  ordersWaitingForStock: number,
): RuntimeCondition {
  const empty = pools.filter((p) => p.free === 0).map((p) => p.pool);
  if (ordersWaitingForStock > 0) {
    return {
      type: 'StockAvailable',
      status: 'False',
      reason: 'OutOfStock',
      message: `paid orders wait for codes${empty.length ? `; empty pools: ${empty.join(', ')}` : ''}`,
    };
  }
  if (empty.length > 0) {
    return {
      type: 'StockAvailable',
      status: 'False',
      reason: 'PoolEmpty',
      message: `empty pools: ${empty.join(', ')}`,
    };
  }
  return {
    type: 'StockAvailable',
    status: 'True',
    reason: 'StockAvailable',
    message: 'every code pool has codes',
  };
}
