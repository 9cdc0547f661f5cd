import { randomInt, randomUUID } from 'node:crypto';

// Wire identifiers (protocol §1.2). `now` is injectable for tests.

// Answers are matched to requests by mid, and the service treats a repeated send uuid as the
// same message; at hundreds of sends per second both would collide within one millisecond,
// so this process never hands out the same one twice (the wire shape stays as specified).
let midMs = 0;
const midsThisMs = new Set<number>();
let lastUuidMs = 0;

/** Request id: random 0–999 then epoch ms, then " 0" → "5701741704675979 0"; unique per process. */
export function mid(now = Date.now()): string {
  if (now > midMs) {
    midMs = now;
    midsThisMs.clear();
  }
  if (midsThisMs.size >= 1000) {
    midMs += 1; // all 1000 random prefixes of this millisecond are taken
    midsThisMs.clear();
  }
  let r = randomInt(1000);
  while (midsThisMs.has(r)) r = (r + 1) % 1000;
  midsThisMs.add(r);
  return `${r}${Math.max(now, midMs)} 0`;
}

/** Client message uuid for sends: "-" + epoch ms + "1"; strictly increasing per process. */
export function uuid(now = Date.now()): string {
  lastUuidMs = Math.max(now, lastUuidMs + 1);
  return `-${lastUuidMs}1`;
}

/** Device id: an upper-case UUIDv4 + "-" + unb. Generate once per client instance. */
export function deviceId(unb: string): string {
  return `${randomUUID().toUpperCase()}-${unb}`;
}
