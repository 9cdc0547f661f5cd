import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sessionConditions, stockCondition } from '../src/status/conditions.js';
import { kubeTargetFromEnv } from '../src/status/reporter.js';

describe('runtime conditions for the XianyuAccount status', () => {
  it('maps session states to Connected / LoginValid with reasons a human can act on', () => {
    const byType = (state: Parameters<typeof sessionConditions>[0]['state'], extra = {}) =>
      Object.fromEntries(
        sessionConditions({ state, reconnects: 0, ...extra }).map((c) => [c.type, [c.status, c.reason]]),
      );
    assert.deepEqual(byType('registered'), {
      Connected: ['True', 'Connected'],
      LoginValid: ['True', 'LoginValid'],
    });
    assert.deepEqual(byType('risk_control', { nextRetryAt: new Date(0) }), {
      Connected: ['False', 'RiskControl'],
      LoginValid: ['False', 'RiskControl'],
    });
    assert.deepEqual(byType('login_expired'), {
      Connected: ['False', 'LoginExpired'],
      LoginValid: ['False', 'LoginExpired'],
    });
    assert.deepEqual(byType('backoff'), { Connected: ['False', 'Reconnecting'] });
    assert.deepEqual(byType('connecting'), { Connected: ['False', 'Connecting'] });
    assert.deepEqual(byType('stopped'), { Connected: ['False', 'Stopped'] });
    const risk = sessionConditions({
      state: 'risk_control',
      reconnects: 0,
      punishUrl: 'https://x/punish?x5secdata=abc',
    });
    assert.ok(
      risk.every((c) => !c.message.includes('x5secdata')),
      'the punish URL stays in /status, not in the resource',
    );
  });

  it('StockAvailable: false while paid orders wait or a pool is empty; counts never in the message', () => {
    const pick = (c: ReturnType<typeof stockCondition>) => [c.status, c.reason];
    assert.deepEqual(pick(stockCondition([{ pool: 'a', free: 3 }], 0)), ['True', 'StockAvailable']);
    assert.deepEqual(
      pick(
        stockCondition(
          [
            { pool: 'a', free: 3 },
            { pool: 'b', free: 0 },
          ],
          0,
        ),
      ),
      ['False', 'PoolEmpty'],
    );
    assert.deepEqual(pick(stockCondition([{ pool: 'a', free: 0 }], 2)), ['False', 'OutOfStock']);
    const a = stockCondition([{ pool: 'a', free: 7 }], 0);
    const b = stockCondition([{ pool: 'a', free: 6 }], 0);
    assert.deepEqual(a, b, 'a delivery alone changes nothing a human would see (no status write)');
  });

  it('reports only inside a cluster (or when pointed at one) and for a named account', () => {
    const all = () => true;
    const none = () => false;
    const pod = {
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      XIANYU_ACCOUNT_NAME: 'shop',
      XIANYU_ACCOUNT_NAMESPACE: 'sellers',
    };
    assert.deepEqual(kubeTargetFromEnv(pod, all), {
      server: 'https://10.0.0.1:443',
      tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      namespace: 'sellers',
      name: 'shop',
    });
    assert.equal(kubeTargetFromEnv(pod, none), undefined, 'no service-account token mounted');
    assert.equal(kubeTargetFromEnv({ ...pod, XIANYU_ACCOUNT_NAME: undefined }, all), undefined);
    assert.equal(kubeTargetFromEnv({}, all), undefined, 'a laptop run stays off');
    assert.equal(
      kubeTargetFromEnv({ ...pod, KUBERNETES_SERVICE_HOST: 'fd00::1' }, all)?.server,
      'https://[fd00::1]:443',
    );
  });
});
