import { API_VERSION, KIND } from '../api/group.js';

// Names, labels and owner references shared by every child of an account.

export const FIELD_MANAGER = 'xianyu-operator';
export const MANAGED_BY = 'xianyu-operator';
export const ACCOUNT_LABEL = 'xianyu.io/account';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Label selector the operator's child informers use. */
export const CHILD_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

export interface AccountRef {
  name: string;
  namespace: string;
  uid: string;
}

/** Every child is named `xianyu-<account>` (the CRD limits account names so this is a DNS-1035 label). */
export function childName(accountName: string): string {
  return `xianyu-${accountName}`;
}

export function selectorLabels(accountName: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'xianyu-workload', 'app.kubernetes.io/instance': accountName };
}

export function childLabels(accountName: string): Record<string, string> {
  return {
    ...selectorLabels(accountName),
    'app.kubernetes.io/component': 'workload',
    'app.kubernetes.io/part-of': 'xianyu',
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [ACCOUNT_LABEL]: accountName,
  };
}

export function ownerReference(account: AccountRef) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: account.name,
    uid: account.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function childMetadata(account: AccountRef, extra: { annotations?: Record<string, string> } = {}) {
  return {
    name: childName(account.name),
    namespace: account.namespace,
    labels: childLabels(account.name),
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
    ownerReferences: [ownerReference(account)],
  };
}
