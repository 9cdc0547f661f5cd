import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MANIFEST_OPTIONS } from '../src/manifests/children.js';
import { parseOptions } from '../src/options.js';

test('workload resources, plain and with a browser, come from flags or the environment as JSON', () => {
  const d = parseOptions([], {}).options;
  assert.deepEqual(d.workloadResources, DEFAULT_MANIFEST_OPTIONS.resources);
  assert.deepEqual(d.workloadBrowserResources, DEFAULT_MANIFEST_OPTIONS.browserResources);
  const o = parseOptions(['--workload-browser-resources', '{"limits":{"memory":"2Gi"}}'], {
    WORKLOAD_RESOURCES: '{"requests":{"cpu":"20m"}}',
  }).options;
  assert.deepEqual(o.workloadBrowserResources, { limits: { memory: '2Gi' } });
  assert.deepEqual(o.workloadResources, { requests: { cpu: '20m' } });
  assert.throws(
    () => parseOptions(['--workload-browser-resources', '{memory: 1Gi}'], {}),
    /--workload-browser-resources: not valid JSON/,
  );
});
