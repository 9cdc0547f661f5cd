import type { Condition } from '../api/schema.js';

// metav1.Condition helpers: lastTransitionTime changes only when status changes.

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** Kubernetes' time format with seconds precision (what metav1.Time serialises to). */
export function k8sTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** The condition to store: the previous lastTransitionTime is kept unless the status changed. */
export function nextCondition(previous: Condition | undefined, want: ConditionInput, now: Date): Condition {
  const lastTransitionTime =
    previous && previous.status === want.status ? previous.lastTransitionTime : k8sTime(now);
  return { ...want, lastTransitionTime };
}

/** Sets `want` in a list of conditions (replacing the one of the same type), returning a new list. */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  want: ConditionInput,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === want.type);
  const next = nextCondition(i >= 0 ? list[i] : undefined, want, now);
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** True when a condition says the same as `want` (ignoring lastTransitionTime). */
export function sameCondition(have: Condition | undefined, want: ConditionInput): boolean {
  return (
    have !== undefined &&
    have.status === want.status &&
    have.reason === want.reason &&
    have.message === want.message &&
    (have.observedGeneration ?? undefined) === (want.observedGeneration ?? undefined)
  );
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}
