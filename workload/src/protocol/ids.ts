import { randomInt, randomUUID } from 'node:crypto';

// Wire identifiers (protocol §1.2). `now` is injectable for tests.

/** Request id: random 0–999 then epoch ms, then " 0" → "5701741704675979 0". */
export function mid(now = Date.now()): string {
  return `${randomInt(1000)}${now} 0`;
}

/** Client message uuid for sends: "-" + epoch ms + "1". */
export function uuid(now = Date.now()): string {
  return `-${now}1`;
}

/** Device id: an upper-case UUIDv4 + "-" + unb. Generate once per client instance. */
export function deviceId(unb: string): string {
  return `${randomUUID().toUpperCase()}-${unb}`;
}
