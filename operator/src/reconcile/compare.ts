import { contentHash } from '../manifests/hash.js';

// Desired vs. observed, so nothing is written when nothing changed. The API server adds
// defaults and other owners' fields, so "unchanged" means: every field the operator sets has
// the value it wants (a subset comparison), and the desired object is the one last applied
// (its hash in an annotation, so a field the operator stopped setting also counts as a change).

export const APPLIED_HASH_ANNOTATION = 'xianyu.io/applied-hash';

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** The numeric value of a Kubernetes quantity ("500m", "1Gi", "1e3"), or undefined. */
export function parseQuantity(q: string | number): number | undefined {
  if (typeof q === 'number') return q;
  const m =
    /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?(?:\d+(?:\.\d*)?|\.\d+))?$/.exec(
      q.trim(),
    );
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (suffix in BINARY) return n * BINARY[suffix]!;
  if (suffix in DECIMAL) return n * DECIMAL[suffix]!;
  return n * 10 ** Number(suffix.slice(1));
}

function isEmpty(v: unknown): boolean {
  return (
    v === undefined ||
    (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)
  );
}

function sameScalar(want: unknown, have: unknown, path: string[]): boolean {
  if (want === have) return true;
  // Quantities come back canonicalised ("0.5" → "500m"); compare them by value.
  const parent = path.at(-2);
  if ((parent === 'requests' || parent === 'limits' || path.at(-1) === 'sizeLimit') && have !== undefined) {
    const a = parseQuantity(want as string | number);
    const b = parseQuantity(have as string | number);
    return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

/**
 * The paths at which `observed` differs from `desired`, looking only at the fields present in
 * `desired` (lists compare element by element and must have the same length).
 */
export function differences(desired: unknown, observed: unknown, path: string[] = []): string[] {
  if (desired === null || typeof desired !== 'object') {
    return sameScalar(desired, observed, path) ? [] : [path.join('.') || '(root)'];
  }
  if (isEmpty(desired) && isEmpty(observed)) return [];
  if (Array.isArray(desired)) {
    if (!Array.isArray(observed) || observed.length !== desired.length) return [path.join('.')];
    return desired.flatMap((item, i) => differences(item, observed[i], [...path, String(i)]));
  }
  if (observed === null || typeof observed !== 'object' || Array.isArray(observed)) {
    return [path.join('.')];
  }
  const have = observed as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).flatMap(([k, v]) =>
    v === undefined ? [] : differences(v, have[k], [...path, k]),
  );
}

interface Meta {
  metadata?: object;
}

function annotations(obj: Meta | undefined): Record<string, string> | undefined {
  return (obj?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
}

/** The desired object with the hash of itself in the applied-hash annotation. */
export function withAppliedHash<T extends Meta>(desired: T): T {
  const hash = contentHash(desired);
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      annotations: { ...annotations(desired), [APPLIED_HASH_ANNOTATION]: hash },
    },
  };
}

/** Why `observed` must be (re)applied to match `desired` (already stamped by withAppliedHash), or [] when it need not. */
export function applyReasons(desired: Meta, observed: Meta | undefined): string[] {
  if (!observed) return ['missing'];
  if (annotations(desired)?.[APPLIED_HASH_ANNOTATION] !== annotations(observed)?.[APPLIED_HASH_ANNOTATION])
    return ['desired state changed'];
  // apiVersion and kind are part of the path, not of the object's state.
  const { apiVersion: _v, kind: _k, ...want } = desired as Record<string, unknown>;
  return differences(want, observed).map((p) => `drift at ${p}`);
}
