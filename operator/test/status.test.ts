import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { XianyuAccountStatus } from '../src/api/schema.js';
import { findCondition, k8sTime, setCondition } from '../src/reconcile/conditions.js';
import {
  conditionsToApply,
  type DeploymentView,
  operatorStatus,
  statusUpToDate,
  transitions,
} from '../src/reconcile/status.js';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T00:05:00Z');

test('lastTransitionTime changes only when the status changes', () => {
  let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
  assert.equal(list[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
  list = setCondition(list, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, t1);
  assert.equal(list[0]?.lastTransitionTime, k8sTime(t0), 'reason change only');
  assert.equal(list[0]?.reason, 'B');
  list = setCondition(list, { type: 'Ready', status: 'True', reason: 'C', message: 'c' }, t1);
  assert.equal(list[0]?.lastTransitionTime, k8sTime(t1));
  list = setCondition(list, { type: 'Connected', status: 'True', reason: 'X', message: '' }, t1);
  assert.equal(list.length, 2);
  assert.equal(findCondition(list, 'Connected')?.reason, 'X');
});

const ready: DeploymentView = {
  metadata: { name: 'xianyu-a', generation: 2 },
  spec: { replicas: 1 },
  status: { observedGeneration: 2, replicas: 1, readyReplicas: 1, updatedReplicas: 1, availableReplicas: 1 },
};

test('phase and Ready follow config problems, pause and the Deployment', () => {
  const base = { generation: 3, paused: false, deploymentName: 'xianyu-a' };
  assert.equal(operatorStatus({ ...base }).phase, 'Pending');
  const running = operatorStatus({ ...base, deployment: ready });
  assert.equal(running.phase, 'Running');
  assert.deepEqual(
    running.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`),
    ['Ready=True/WorkloadReady', 'ConfigValid=True/Valid', 'Paused=False/Running'],
  );
  assert.ok(running.conditions.every((c) => c.observedGeneration === 3));
  const rolling = operatorStatus({
    ...base,
    deployment: { ...ready, metadata: { name: 'x', generation: 3 } },
  });
  assert.equal(rolling.conditions[0]?.reason, 'RollingOut');
  const paused = operatorStatus({ ...base, paused: true, pausedBy: 'annotation', deployment: ready });
  assert.equal(paused.phase, 'Paused');
  assert.equal(findCondition(paused.conditions as never, 'Paused')?.reason, 'PausedByAnnotation');
  const failed = operatorStatus({
    ...base,
    deployment: ready,
    problem: {
      reason: 'SecretNotFound',
      message: 'Secret "c" (spec.credentials.cookiesSecretRef) not found',
    },
  });
  assert.equal(failed.phase, 'Failed');
  assert.deepEqual(
    failed.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`),
    ['Ready=False/ConfigInvalid', 'ConfigValid=False/SecretNotFound', 'Paused=False/Running'],
  );
});

test('status comparison ignores what the workload owns; transitions give events', () => {
  const want = operatorStatus({
    generation: 1,
    paused: false,
    deploymentName: 'xianyu-a',
    deployment: ready,
  });
  const stored: XianyuAccountStatus = {
    phase: 'Running',
    observedGeneration: 1,
    deploymentName: 'xianyu-a',
    conditions: [
      ...conditionsToApply(undefined, want, t0),
      {
        type: 'Connected',
        status: 'True',
        reason: 'Connected',
        message: '',
        lastTransitionTime: k8sTime(t0),
      },
    ],
  };
  assert.equal(statusUpToDate(stored, want), true);
  assert.equal(statusUpToDate({ ...stored, observedGeneration: 0 }, want), false);
  assert.equal(statusUpToDate(undefined, want), false);
  // Carried-over transition times.
  assert.deepEqual(conditionsToApply(stored, want, t1), stored.conditions!.slice(0, 3));

  assert.deepEqual(
    transitions(undefined, want).map((e) => `${e.type}/${e.reason}`),
    ['Normal/Ready'],
  );
  const bad = operatorStatus({
    generation: 2,
    paused: false,
    deploymentName: 'xianyu-a',
    problem: { reason: 'SecretNotFound', message: 'm' },
  });
  assert.deepEqual(
    transitions(stored, bad).map((e) => `${e.type}/${e.reason}`),
    ['Warning/SecretNotFound'],
  );
  const badStored = { ...stored, conditions: conditionsToApply(stored, bad, t1) };
  assert.deepEqual(transitions(badStored, bad), [], 'no repeat while nothing changes');
  assert.deepEqual(
    transitions(badStored, want).map((e) => `${e.type}/${e.reason}`),
    ['Normal/ConfigValid', 'Normal/Ready'],
  );
  const paused = operatorStatus({
    generation: 3,
    paused: true,
    deploymentName: 'xianyu-a',
    deployment: ready,
  });
  assert.deepEqual(
    transitions(stored, paused).map((e) => `${e.type}/${e.reason}`),
    ['Normal/Paused'],
  );
  const pausedStored = { ...stored, conditions: conditionsToApply(stored, paused, t1) };
  assert.deepEqual(
    transitions(pausedStored, want).map((e) => `${e.type}/${e.reason}`),
    ['Normal/Resumed', 'Normal/Ready'],
  );
});
