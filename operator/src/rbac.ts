import { GROUP, PLURAL } from './api/group.js';

// The permissions the operator needs, cluster-wide (a ClusterRole) or per watched namespace.
// The e2e suite runs the operator with exactly these rules; the Helm chart should use them.

const rw = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

export const OPERATOR_RULES = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ['get', 'list', 'watch'] },
  // The status subresource; and get/patch there lets the operator grant the workload's Role.
  { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ['get', 'update', 'patch'] },
  // blockOwnerDeletion on children needs this where OwnerReferencesPermissionEnforcement is on.
  { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ['update'] },
  // Secrets: watched for existence and key names only (values are dropped on arrival).
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['configmaps', 'services', 'serviceaccounts'], verbs: rw },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: rw },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: rw },
  { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: rw },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];
