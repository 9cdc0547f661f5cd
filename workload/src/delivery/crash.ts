// TEST HOOK, read only when XIANYU_CRASH_AT is set: kills this process with SIGKILL at a named
// step boundary of the delivery, with a probability, so tests can prove that a crash at any
// instant neither loses nor doubles a delivery. Never set it in production.
//
//   XIANYU_CRASH_AT=after-claim:0.05,after-send:0.05,after-record:0.05,mid-import:0.2
//
// Points: after-claim (units claimed, nothing sent), after-send (IM answered, sent not yet
// recorded), after-record (sent recorded, shipment not yet confirmed), mid-import (between two
// batches of a pool import).

export type CrashPoint = 'after-claim' | 'after-send' | 'after-record' | 'mid-import';
const POINTS: ReadonlySet<string> = new Set(['after-claim', 'after-send', 'after-record', 'mid-import']);

/** Parses the hook's value; throws on anything it does not understand (a typo must not pass silently). */
export function parseCrashSpec(spec: string): Map<CrashPoint, number> {
  const out = new Map<CrashPoint, number>();
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [name, p = '1'] = part.split(':');
    const prob = Number(p);
    if (!name || !POINTS.has(name) || !(prob >= 0 && prob <= 1)) {
      throw new Error(`XIANYU_CRASH_AT: bad entry "${part}" (expected <point>:<probability 0..1>)`);
    }
    out.set(name as CrashPoint, prob);
  }
  return out;
}

export type CrashHook = (point: CrashPoint) => void;

export const noCrash: CrashHook = () => {};

export function crashHookFromEnv(env: NodeJS.ProcessEnv = process.env, random = Math.random): CrashHook {
  const spec = env.XIANYU_CRASH_AT;
  if (!spec) return noCrash;
  const points = parseCrashSpec(spec);
  return (point) => {
    const p = points.get(point);
    if (p !== undefined && random() < p) {
      process.stderr.write(`XIANYU_CRASH_AT: SIGKILL at ${point}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  };
}
