import type { Condition, Phase, XianyuAccountStatus } from '../api/schema.js';
import { type ConditionInput, findCondition, nextCondition, sameCondition } from './conditions.js';

// The part of an account's status the operator owns (Ready, ConfigValid, Paused, phase,
// observedGeneration, deploymentName), computed from what the reconcile saw. The workload owns
// Connected, LoginValid, StockAvailable and the times; they are never written here.

export const OPERATOR_CONDITIONS = ['Ready', 'ConfigValid', 'Paused'] as const;

export interface ConfigProblem {
  reason: 'InvalidSpec' | 'WorkloadConfigInvalid' | 'SecretNotFound' | 'SecretKeyNotFound';
  message: string;
}

export interface DeploymentView {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    updatedReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface StatusInput {
  generation: number;
  problem?: ConfigProblem;
  paused: boolean;
  pausedBy?: 'spec' | 'annotation';
  deploymentName: string;
  deployment?: DeploymentView;
}

export interface OperatorStatus {
  phase: Phase;
  observedGeneration: number;
  deploymentName: string;
  conditions: ConditionInput[];
}

function readiness(d: DeploymentView | undefined): { ready: boolean; reason: string; message: string } {
  if (!d)
    return {
      ready: false,
      reason: 'DeploymentMissing',
      message: 'the workload Deployment does not exist yet',
    };
  const s = d.status ?? {};
  const stuck = s.conditions?.find((c) => c.type === 'Progressing' && c.status === 'False');
  if (stuck)
    return { ready: false, reason: stuck.reason ?? 'ProgressDeadlineExceeded', message: stuck.message ?? '' };
  if ((s.observedGeneration ?? 0) < (d.metadata.generation ?? 0)) {
    return {
      ready: false,
      reason: 'RollingOut',
      message: 'the Deployment controller has not seen the latest change yet',
    };
  }
  const want = d.spec?.replicas ?? 1;
  const ready = s.readyReplicas ?? 0;
  const updated = s.updatedReplicas ?? 0;
  if (want > 0 && ready >= want && updated >= want && (s.replicas ?? 0) === want) {
    return {
      ready: true,
      reason: 'WorkloadReady',
      message: 'the workload pod is ready (connected to Xianyu IM)',
    };
  }
  // No counts in the message: every step of a rollout would otherwise be a status write.
  return {
    ready: false,
    reason: 'WorkloadNotReady',
    message: 'waiting for the workload pod to become ready',
  };
}

export function operatorStatus(input: StatusInput): OperatorStatus {
  const g = input.generation;
  const cond = (type: string, ok: boolean, reason: string, message: string): ConditionInput => ({
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    observedGeneration: g,
  });
  const conditions: ConditionInput[] = [];
  let phase: Phase;
  if (input.problem) {
    conditions.push(cond('ConfigValid', false, input.problem.reason, input.problem.message));
  } else {
    conditions.push(
      cond('ConfigValid', true, 'Valid', 'the spec is valid and every referenced Secret exists'),
    );
  }
  conditions.push(
    input.paused
      ? cond(
          'Paused',
          true,
          input.pausedBy === 'annotation' ? 'PausedByAnnotation' : 'PausedBySpec',
          input.pausedBy === 'annotation'
            ? 'the xianyu.io/paused annotation scales the workload to zero'
            : 'spec.paused scales the workload to zero',
        )
      : cond('Paused', false, 'Running', 'the workload runs'),
  );
  if (input.problem) {
    phase = 'Failed';
    conditions.unshift(cond('Ready', false, 'ConfigInvalid', input.problem.message));
  } else if (input.paused) {
    phase = 'Paused';
    conditions.unshift(cond('Ready', false, 'Paused', 'the account is paused'));
  } else {
    const r = readiness(input.deployment);
    phase = r.ready ? 'Running' : 'Pending';
    conditions.unshift(cond('Ready', r.ready, r.reason, r.message));
  }
  return { phase, observedGeneration: g, deploymentName: input.deploymentName, conditions };
}

/** True when the stored status already says everything in `want`. */
export function statusUpToDate(have: XianyuAccountStatus | undefined, want: OperatorStatus): boolean {
  if (!have) return false;
  if (have.phase !== want.phase || have.observedGeneration !== want.observedGeneration) return false;
  if (have.deploymentName !== want.deploymentName) return false;
  return want.conditions.every((c) => sameCondition(findCondition(have.conditions, c.type), c));
}

/** The operator's conditions with lastTransitionTime carried over from `have` when unchanged. */
export function conditionsToApply(
  have: XianyuAccountStatus | undefined,
  want: OperatorStatus,
  now: Date,
): Condition[] {
  return want.conditions.map((c) => nextCondition(findCondition(have?.conditions, c.type), c, now));
}

export interface Transition {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Events a human should see for the change from `have` to `want`. */
export function transitions(have: XianyuAccountStatus | undefined, want: OperatorStatus): Transition[] {
  const out: Transition[] = [];
  const before = (t: string) => findCondition(have?.conditions, t);
  const after = (t: string) => want.conditions.find((c) => c.type === t)!;
  const cv = after('ConfigValid');
  const cvBefore = before('ConfigValid');
  if (cv.status === 'False' && (cvBefore?.status !== 'False' || cvBefore.message !== cv.message)) {
    out.push({ type: 'Warning', reason: cv.reason, message: cv.message });
  } else if (cv.status === 'True' && cvBefore?.status === 'False') {
    out.push({ type: 'Normal', reason: 'ConfigValid', message: 'the configuration is valid again' });
  }
  const p = after('Paused');
  const pBefore = before('Paused');
  if (p.status === 'True' && pBefore?.status !== 'True')
    out.push({ type: 'Normal', reason: 'Paused', message: p.message });
  if (p.status === 'False' && pBefore?.status === 'True') {
    out.push({ type: 'Normal', reason: 'Resumed', message: 'the workload is scaled back to one replica' });
  }
  const r = after('Ready');
  const rBefore = before('Ready');
  if (r.status === 'True' && rBefore?.status !== 'True') {
    out.push({ type: 'Normal', reason: 'Ready', message: r.message });
  } else if (
    r.status === 'False' &&
    rBefore?.status === 'True' &&
    r.reason !== 'Paused' &&
    r.reason !== 'ConfigInvalid'
  ) {
    out.push({ type: 'Warning', reason: 'NotReady', message: r.message });
  }
  return out;
}
