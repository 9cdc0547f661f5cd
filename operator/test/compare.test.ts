import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XianyuAccountSpec } from '../src/api/schema.js';
import { DEFAULT_MANIFEST_OPTIONS, deployment } from '../src/manifests/children.js';
import { applyReasons, differences, parseQuantity, withAppliedHash } from '../src/reconcile/compare.js';

// biome-ignore lint/suspicious/noExplicitAny: tests poke into manifests
type Any = any;

test('quantities parse like the API server reads them', () => {
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('0.5'), 0.5);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('128M'), 128e6);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity(2), 2);
  assert.equal(parseQuantity('lots'), undefined);
});

test('differences look only at desired fields, tolerate defaults and canonical quantities', () => {
  const desired = {
    spec: { replicas: 1, resources: { requests: { cpu: '0.5' } }, list: [{ a: 1 }], empty: [] },
  };
  const observed = {
    spec: {
      replicas: 1,
      extra: true,
      resources: { requests: { cpu: '500m' } },
      list: [{ a: 1, defaulted: 'x' }],
    },
    status: {},
  };
  assert.deepEqual(differences(desired, observed), []);
  assert.deepEqual(differences(desired, { ...observed, spec: { ...observed.spec, replicas: 0 } }), [
    'spec.replicas',
  ]);
  assert.deepEqual(differences(desired, { spec: { ...observed.spec, list: [] } }), ['spec.list']);
  assert.deepEqual(differences({ a: { b: 'x' } }, { a: 'y' }), ['a']);
});

test('apply reasons: missing, desired changed, hand edits; none for an unchanged child', () => {
  const spec = XianyuAccountSpec.parse({ credentials: { cookiesSecretRef: { name: 'c' } } });
  const mk = (paused: boolean) =>
    withAppliedHash(
      deployment(
        { account: { name: 'a', namespace: 'n', uid: 'u' }, spec, paused, secretVersions: { c: '1' } },
        DEFAULT_MANIFEST_OPTIONS,
      ),
    );
  const desired = mk(false);
  // What the API server returns: the applied object plus defaults and status.
  const observed = structuredClone(desired) as Any;
  observed.metadata.uid = 'x';
  observed.metadata.resourceVersion = '5';
  observed.spec.progressDeadlineSeconds = 600;
  observed.spec.template.spec.containers[0].terminationMessagePath = '/dev/termination-log';
  observed.status = { replicas: 1 };
  assert.deepEqual(applyReasons(desired, undefined), ['missing']);
  assert.deepEqual(applyReasons(desired, observed), []);
  assert.deepEqual(applyReasons(mk(true), observed), ['desired state changed']);
  const edited = structuredClone(observed);
  edited.spec.template.spec.containers[0].image = 'evil:latest';
  assert.deepEqual(applyReasons(desired, edited), ['drift at spec.template.spec.containers.0.image']);
});
