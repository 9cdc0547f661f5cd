import { GROUP, PLURAL, VERSION } from '../api/group.js';

// The API resources the operator reads and writes, and their REST paths.

export interface ResourceType {
  kind: string;
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const r = (
  kind: string,
  group: string,
  version: string,
  plural: string,
  namespaced = true,
): ResourceType => ({
  kind,
  group,
  version,
  plural,
  namespaced,
});

export const RESOURCES = {
  XianyuAccount: r('XianyuAccount', GROUP, VERSION, PLURAL),
  ConfigMap: r('ConfigMap', '', 'v1', 'configmaps'),
  Secret: r('Secret', '', 'v1', 'secrets'),
  Service: r('Service', '', 'v1', 'services'),
  ServiceAccount: r('ServiceAccount', '', 'v1', 'serviceaccounts'),
  Deployment: r('Deployment', 'apps', 'v1', 'deployments'),
  Role: r('Role', 'rbac.authorization.k8s.io', 'v1', 'roles'),
  RoleBinding: r('RoleBinding', 'rbac.authorization.k8s.io', 'v1', 'rolebindings'),
  ServiceMonitor: r('ServiceMonitor', 'monitoring.coreos.com', 'v1', 'servicemonitors'),
  Lease: r('Lease', 'coordination.k8s.io', 'v1', 'leases'),
  Event: r('Event', 'events.k8s.io', 'v1', 'events'),
} as const;

export type KindName = keyof typeof RESOURCES;

/** Kinds of the children an account owns (informers watch these with the managed-by selector). */
export const CHILD_KINDS = [
  'ServiceAccount',
  'Role',
  'RoleBinding',
  'ConfigMap',
  'Service',
  'Deployment',
] as const;

export function apiPrefix(t: ResourceType): string {
  return t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
}

/** Collection path (namespace undefined: all namespaces) or object path when `name` is given. */
export function pathFor(t: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let p = apiPrefix(t);
  if (t.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${t.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export function resourceByKind(kind: string): ResourceType {
  const t = (RESOURCES as Record<string, ResourceType>)[kind];
  if (!t) throw new Error(`unknown kind ${kind}`);
  return t;
}
