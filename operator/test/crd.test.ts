import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { buildCrd, openApiSchema, PRINTER_COLUMNS } from '../src/api/crd.js';
import { CRD_FILE, renderCrdYaml } from '../src/api/generate-crd.js';
import { XianyuAccountSpec } from '../src/api/schema.js';

type Json = Record<string, unknown>;

test('the committed CRD YAML matches the zod schema (regenerate with operator/src/api/generate-crd.ts)', () => {
  assert.equal(readFileSync(CRD_FILE, 'utf8'), renderCrdYaml());
  assert.deepEqual(parse(renderCrdYaml()), buildCrd());
});

function walk(node: Json, path: string, visit: (node: Json, path: string) => void): void {
  visit(node, path);
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) {
    walk(child, `${path}.${name}`, visit);
  }
  if (node.items) walk(node.items as Json, `${path}[]`, visit);
  if (typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as Json, `${path}{}`, visit);
}

test('every spec and status field is documented (kubectl explain) and the schema is structural', () => {
  const root = openApiSchema();
  const problems: string[] = [];
  for (const part of ['spec', 'status']) {
    walk((root.properties as Record<string, Json>)[part]!, part, (node, path) => {
      if (typeof node.description !== 'string' || node.description.length < 3)
        problems.push(`${path}: no description`);
      if (!node.type && !node['x-kubernetes-int-or-string']) problems.push(`${path}: no type`);
      if ('default' in node) problems.push(`${path}: carries a default`);
      if (node.additionalProperties === false) problems.push(`${path}: additionalProperties: false`);
      if (node.anyOf && !node['x-kubernetes-int-or-string']) problems.push(`${path}: anyOf`);
    });
  }
  assert.deepEqual(problems, []);
});

test('CRD names, subresources, printer columns and condition list semantics', () => {
  const crd = buildCrd() as { spec: Json };
  const spec = crd.spec as { group: string; scope: string; names: Json; versions: Json[] };
  assert.equal(spec.group, 'xianyu.io');
  assert.equal(spec.scope, 'Namespaced');
  assert.deepEqual(spec.names.shortNames, ['xya']);
  const v = spec.versions[0]!;
  assert.equal(v.name, 'v1alpha1');
  assert.deepEqual(v.subresources, { status: {} });
  assert.deepEqual(
    PRINTER_COLUMNS.map((c) => c.name),
    ['Phase', 'Ready', 'Connected', 'Login', 'Age'],
  );
  const status = ((openApiSchema().properties as Json).status as Json).properties as Record<string, Json>;
  assert.equal(status.conditions!['x-kubernetes-list-type'], 'map');
  assert.deepEqual(status.conditions!['x-kubernetes-list-map-keys'], ['type']);
  const cond = status.conditions!.items as Json;
  assert.deepEqual([...(cond.required as string[])].sort(), [
    'lastTransitionTime',
    'message',
    'reason',
    'status',
    'type',
  ]);
});

test('every CEL rule has a matching zod refinement (runtime validation agrees with the API server)', () => {
  const rules: string[] = [];
  walk(openApiSchema(), '', (node, path) => {
    for (const r of (node['x-kubernetes-validations'] ?? []) as { rule: string }[])
      rules.push(`${path}: ${r.rule}`);
  });
  assert.equal(rules.length, 5, rules.join('\n'));
  const base = { credentials: { cookiesSecretRef: { name: 'c' } } };
  const bad = [
    { reply: { ai: { enabled: true } } },
    { reply: { delay: { minMs: 10, maxMs: 5 } } },
    { session: { backoffInitialMs: 5000, backoffMaxMs: 10 } },
    { delivery: { rules: [{ name: 'r', itemIds: ['1'], source: { type: 'pool' } }] } },
    { delivery: { rules: [{ name: 'r', source: { type: 'text', text: 'a' } }] } },
    {
      delivery: {
        rules: [{ name: 'r', itemIds: ['1'], keywords: ['k'], source: { type: 'text', text: 'a' } }],
      },
    },
    { delivery: { rules: [{ name: 'r', itemIds: ['1'], source: { type: 'pool', pool: 'nope' } }] } },
    {
      delivery: {
        pools: [
          { name: 'p', secretRef: { name: 'a' } },
          { name: 'p', secretRef: { name: 'b' } },
        ],
      },
    },
  ];
  for (const extra of bad) {
    assert.equal(XianyuAccountSpec.safeParse({ ...base, ...extra }).success, false, JSON.stringify(extra));
  }
  const ok = XianyuAccountSpec.safeParse({
    ...base,
    reply: { ai: { enabled: true, apiKeySecretRef: { name: 'ai' } }, delay: { minMs: 1, maxMs: 5 } },
    delivery: {
      pools: [{ name: 'vip', secretRef: { name: 'pool' } }],
      rules: [{ name: 'r', itemIds: ['1'], source: { type: 'pool', pool: 'vip' } }],
    },
  });
  assert.equal(ok.success, true, JSON.stringify(ok.error?.issues));
  assert.equal(ok.data?.delivery?.pools?.[0]?.secretRef.key, 'codes');
  assert.equal(ok.data?.credentials.cookiesSecretRef.key, 'cookies');
  assert.equal(ok.data?.reply?.ai?.apiKeySecretRef?.key, 'apiKey');
});

test('runtime validation catches what CEL cannot: an invalid regular expression', () => {
  const r = XianyuAccountSpec.safeParse({
    credentials: { cookiesSecretRef: { name: 'c' } },
    reply: { keywords: [{ match: ['(unclosed'], mode: 'regex', reply: 'x' }] },
  });
  assert.equal(r.success, false);
  assert.deepEqual(r.error?.issues[0]?.path, ['reply', 'keywords', 0, 'match', 0]);
});
