import type { Logger } from '../log.js';

// Events a human should hear about. The channels (webhook, DingTalk, Feishu, WeCom, Telegram,
// email) come later; today every event goes through this one interface and is logged.

export type NotificationEvent =
  | { kind: 'low_stock'; pool: string; free: number; threshold: number }
  | { kind: 'out_of_stock'; pool: string; orderId: string; needed: number; free: number }
  | { kind: 'no_rule'; orderId: string; itemId: string | null; why: string }
  | { kind: 'ambiguous_rules'; orderId: string; rules: string[] }
  | { kind: 'delivery_failed'; orderId: string; reason: string }
  | { kind: 'redelivered'; orderId: string; units: number };

export interface Notifier {
  notify(event: NotificationEvent): void;
}

export function logNotifier(log: Logger): Notifier {
  const l = log.child({ component: 'notify' });
  return {
    notify(event) {
      l.warn({ event }, `notification: ${event.kind}`);
    },
  };
}
