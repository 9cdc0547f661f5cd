// Writes the JSON schemas kubeconform validates the chart with, offline, into charts/schemas/:
//   {group or "v1"}/{kind}_{version}.json   (-schema-location 'charts/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json')
// for only the kinds the chart renders. Sources:
//   - Kubernetes kinds: the OpenAPI v3 documents in the Go module cache,
//     $(go env GOMODCACHE)/k8s.io/kubernetes@<KUBERNETES_VERSION>/api/openapi-spec/v3/
//     (test/cluster/versions.env pins the version; `go mod download k8s.io/kubernetes@<v>` fetches it);
//   - ServiceMonitor and PrometheusRule: the CRDs in the prometheus-operator Go module
//     (example/prometheus-operator-crd/), fetched with `go mod download` (pass --prometheus-operator DIR);
//   - XianyuAccount: written by charts/sync.ts from crds/ (kept in step by its drift test).
// Each file is self-contained: the kind's schema plus the definitions it reaches, $refs rewritten
// to #/definitions/…, descriptions dropped (size), objects strict (additionalProperties: false),
// the way kubeconform's own "-strict" schemas are built.
//
//   node --import tsx charts/gen-k8s-schemas.ts [--prometheus-operator DIR]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(REPO, 'charts/schemas');

// biome-ignore lint/suspicious/noExplicitAny: JSON schema trees
type Json = any;

/** [openapi document, definition name, apiVersion, kind] for every kind the chart renders. */
const KINDS: [string, string, string, string][] = [
  ['api__v1', 'io.k8s.api.core.v1.ServiceAccount', 'v1', 'ServiceAccount'],
  ['api__v1', 'io.k8s.api.core.v1.Service', 'v1', 'Service'],
  ['api__v1', 'io.k8s.api.core.v1.Secret', 'v1', 'Secret'],
  ['api__v1', 'io.k8s.api.core.v1.ConfigMap', 'v1', 'ConfigMap'],
  ['apis__apps__v1', 'io.k8s.api.apps.v1.Deployment', 'apps/v1', 'Deployment'],
  ['apis__apps__v1', 'io.k8s.api.apps.v1.StatefulSet', 'apps/v1', 'StatefulSet'],
  [
    'apis__rbac.authorization.k8s.io__v1',
    'io.k8s.api.rbac.v1.ClusterRole',
    'rbac.authorization.k8s.io/v1',
    'ClusterRole',
  ],
  [
    'apis__rbac.authorization.k8s.io__v1',
    'io.k8s.api.rbac.v1.ClusterRoleBinding',
    'rbac.authorization.k8s.io/v1',
    'ClusterRoleBinding',
  ],
  ['apis__rbac.authorization.k8s.io__v1', 'io.k8s.api.rbac.v1.Role', 'rbac.authorization.k8s.io/v1', 'Role'],
  [
    'apis__rbac.authorization.k8s.io__v1',
    'io.k8s.api.rbac.v1.RoleBinding',
    'rbac.authorization.k8s.io/v1',
    'RoleBinding',
  ],
  [
    'apis__networking.k8s.io__v1',
    'io.k8s.api.networking.v1.NetworkPolicy',
    'networking.k8s.io/v1',
    'NetworkPolicy',
  ],
  ['apis__policy__v1', 'io.k8s.api.policy.v1.PodDisruptionBudget', 'policy/v1', 'PodDisruptionBudget'],
  [
    'apis__apiextensions.k8s.io__v1',
    'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition',
    'apiextensions.k8s.io/v1',
    'CustomResourceDefinition',
  ],
];

const PROMETHEUS_CRDS = [
  'monitoring.coreos.com_servicemonitors.yaml',
  'monitoring.coreos.com_prometheusrules.yaml',
];

export function schemaPath(apiVersion: string, kind: string): string {
  const [groupOrVersion, version] = apiVersion.includes('/')
    ? apiVersion.split('/')
    : [apiVersion, apiVersion];
  return `${groupOrVersion}/${kind.toLowerCase()}_${version}.json`;
}

function defName(ref: string): string {
  return ref.replace('#/components/schemas/', '');
}

/** Copies a schema node: $ref → #/definitions/…, no descriptions, strict objects, nullable → null allowed. */
function convert(node: Json, reached: Set<string>): Json {
  if (Array.isArray(node)) return node.map((n) => convert(n, reached));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'description' || k === 'x-kubernetes-group-version-kind' || k === 'x-kubernetes-list-map-keys')
      continue;
    if (k === '$ref') {
      const name = defName(v as string);
      reached.add(name);
      out.$ref = `#/definitions/${name}`;
    } else if (k === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(v as Json).map(([p, s]) => [p, convert(s, reached)]),
      );
    } else if (k === 'default' || k === 'example' || k === 'enum') {
      out[k] = v;
    } else {
      out[k] = convert(v, reached);
    }
  }
  // An `allOf: [{$ref}]` wrapper (how v3 attaches a description to a reference) becomes the reference.
  if (
    Array.isArray(out.allOf) &&
    out.allOf.length === 1 &&
    out.allOf[0].$ref &&
    Object.keys(out).length <= 2
  ) {
    const ref = out.allOf[0].$ref;
    delete out.allOf;
    if (out.default === undefined) return { $ref: ref };
    out.$ref = ref;
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out['x-kubernetes-preserve-unknown-fields']
  )
    out.additionalProperties = false;
  if (out.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  delete out.nullable;
  return out;
}

function k8sSchema(specDir: string, doc: string, name: string): Json {
  const schemas = JSON.parse(readFileSync(join(specDir, `${doc}_openapi.json`), 'utf8')).components
    .schemas as Record<string, Json>;
  const reached = new Set<string>([name]);
  const definitions: Record<string, Json> = {};
  const pending = [name];
  while (pending.length) {
    const n = pending.pop()!;
    if (definitions[n]) continue;
    const local = new Set<string>();
    const def = schemas[n];
    if (!def) throw new Error(`${doc}: no definition ${n}`);
    definitions[n] = convert(def, local);
    for (const r of local) {
      if (reached.has(r)) continue;
      reached.add(r);
      pending.push(r);
    }
  }
  const root = definitions[name];
  delete definitions[name];
  // The root refers to itself only in recursive kinds (JSONSchemaProps is a definition, not a root).
  const sorted = Object.fromEntries(Object.entries(definitions).sort(([a], [b]) => a.localeCompare(b)));
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...root, definitions: sorted };
}

function strictCrdSchema(s: Json): Json {
  if (Array.isArray(s)) return s.map(strictCrdSchema);
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'description') continue;
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(v as Json).map(([p, x]) => [p, strictCrdSchema(x)]))
        : strictCrdSchema(v);
  }
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out['x-kubernetes-preserve-unknown-fields']
  )
    out.additionalProperties = false;
  if (out['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = out.anyOf ?? [{ type: 'integer' }, { type: 'string' }];
  }
  return out;
}

function write(path: string, schema: Json): void {
  const file = join(OUT, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(schema)}\n`);
  console.log(`wrote charts/schemas/${path} (${Math.round(JSON.stringify(schema).length / 1024)} KiB)`);
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const versions = readFileSync(join(REPO, 'test/cluster/versions.env'), 'utf8');
  const k8s = /KUBERNETES_VERSION=(\S+)/.exec(versions)?.[1];
  if (!k8s) throw new Error('KUBERNETES_VERSION not found in test/cluster/versions.env');
  const modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  const specDir = join(modCache, `k8s.io/kubernetes@${k8s}/api/openapi-spec/v3`);
  for (const [doc, name, apiVersion, kind] of KINDS)
    write(schemaPath(apiVersion, kind), k8sSchema(specDir, doc, name));
  const i = process.argv.indexOf('--prometheus-operator');
  if (i > 0) {
    const dir = process.argv[i + 1]!;
    for (const f of PROMETHEUS_CRDS) {
      const crd = parse(readFileSync(join(dir, 'example/prometheus-operator-crd', f), 'utf8'));
      for (const v of crd.spec.versions) {
        const schema = strictCrdSchema(v.schema.openAPIV3Schema);
        if (schema.properties?.metadata) schema.properties.metadata = { type: 'object' };
        write(schemaPath(`${crd.spec.group}/${v.name}`, crd.spec.names.kind), schema);
      }
    }
  }
}
