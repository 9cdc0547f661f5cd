// Names of the XianyuAccount API. Stable once released: renaming any of them breaks clusters.

export const GROUP = 'xianyu.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'XianyuAccount';
export const LIST_KIND = 'XianyuAccountList';
export const PLURAL = 'xianyuaccounts';
export const SINGULAR = 'xianyuaccount';
export const SHORT_NAMES = ['xya'];
export const CATEGORIES = ['xianyu'];
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/** Annotation that pauses an account like `spec.paused: true` (any value but "false"). */
export const PAUSED_ANNOTATION = 'xianyu.io/paused';
