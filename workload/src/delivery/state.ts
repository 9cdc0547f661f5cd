// The delivery state machine, as pure functions. Per order unit (one code each):
//
//   (none) ──claim──▶ claimed ──send──▶ sent ──confirm──▶ confirmed
//                       │  (code reserved in the same transaction as the unit row)
//                       └──release (order refunded/closed before the send)──▶ (none)
//
// Per order, `planOrder` names the one next step from the durable facts, so a process that
// starts (or takes over) simply asks it again: unfinished units resume where they stopped.
import { canTransition, type OrderStatus } from '../protocol/orders.js';

export type UnitState = 'claimed' | 'sent' | 'confirmed';
export type UnitEvent = 'send' | 'confirm' | 'release';

/** The unit's state after an event, or undefined when the event is not allowed there. */
export function nextUnitState(from: UnitState, event: UnitEvent): UnitState | 'released' | undefined {
  switch (event) {
    case 'send':
      return from === 'claimed' ? 'sent' : undefined;
    case 'confirm':
      return from === 'sent' ? 'confirmed' : undefined;
    case 'release':
      return from === 'claimed' ? 'released' : undefined;
  }
}

/** Where an order stands in delivery (the `orders.delivery_state` column). */
export type DeliveryState =
  | 'none' // not paid (tracked only)
  | 'pending' // paid: to be delivered
  | 'waiting' // paid but blocked; `waiting_reason` says why (out of stock, no rule ...)
  | 'delivering' // units claimed, sending
  | 'delivered' // every unit sent; no shipment confirmation wanted
  | 'confirmed' // every unit sent and the shipment confirmed (consign.dummy)
  | 'cancelled'; // refunded or closed before delivery

/** Order statuses in which goods are (still) owed. */
export function isPayable(status: OrderStatus): boolean {
  return status === 'pending_ship' || status === 'refund_cancelled';
}

export interface OrderFactsForPlan {
  status: OrderStatus;
  deliveryState: DeliveryState;
  bargain: boolean;
  freeShippingDone: boolean;
  /** Order details (quantity/spec) fetched, or not wanted. */
  detailsKnown: boolean;
  /** Units the order needs (its quantity); known once details are. */
  quantity: number;
  /** Whether the matched rule wants the shipment confirmed (undefined before matching). */
  confirmWanted: boolean | undefined;
}

export interface UnitFacts {
  unit: number;
  state: UnitState;
}

export type Step =
  | { kind: 'idle'; why: string }
  | { kind: 'release'; units: number[] }
  | { kind: 'free_shipping' }
  | { kind: 'details' }
  | { kind: 'claim'; units: number[] }
  | { kind: 'send'; unit: number }
  | { kind: 'confirm' }
  | { kind: 'finish'; state: 'delivered' | 'confirmed' | 'cancelled' };

export interface PlanOptions {
  freeShipping: boolean;
  wantDetails: boolean;
}

/** The next step of an order's delivery. */
export function planOrder(o: OrderFactsForPlan, units: readonly UnitFacts[], opt: PlanOptions): Step {
  const sorted = [...units].sort((a, b) => a.unit - b.unit);
  const claimed = sorted.filter((u) => u.state === 'claimed');
  if (o.deliveryState === 'confirmed' || o.deliveryState === 'delivered') {
    return { kind: 'idle', why: `already ${o.deliveryState}` };
  }
  if (o.status === 'refunding' || o.status === 'cancelled') {
    // Nothing sent can be taken back; what is only reserved goes back to the pool.
    if (claimed.length) return { kind: 'release', units: claimed.map((u) => u.unit) };
    // What was sent stays recorded (sent units are never taken back); the rest is not owed.
    if (o.deliveryState !== 'cancelled' && o.deliveryState !== 'none')
      return { kind: 'finish', state: 'cancelled' };
    return { kind: 'idle', why: `order is ${o.status}` };
  }
  if (!isPayable(o.status) && units.length === 0)
    return { kind: 'idle', why: `order is ${o.status}, not paid` };
  if (units.length === 0) {
    if (o.bargain && opt.freeShipping && !o.freeShippingDone) return { kind: 'free_shipping' };
    if (opt.wantDetails && !o.detailsKnown) return { kind: 'details' };
  }
  const quantity = Math.max(1, o.quantity);
  const have = new Set(sorted.map((u) => u.unit));
  const missing: number[] = [];
  for (let i = 0; i < quantity; i++) if (!have.has(i)) missing.push(i);
  if (missing.length && isPayable(o.status)) return { kind: 'claim', units: missing };
  const next = claimed[0];
  if (next) return { kind: 'send', unit: next.unit };
  if (sorted.length === 0) return { kind: 'idle', why: 'nothing claimed' };
  if (sorted.every((u) => u.state === 'confirmed')) return { kind: 'finish', state: 'confirmed' };
  if (o.confirmWanted === false) return { kind: 'finish', state: 'delivered' };
  if (o.status === 'shipped' || o.status === 'completed') {
    // Shipped already (our earlier confirm, or by hand): record it, no second consign call.
    return { kind: 'finish', state: 'confirmed' };
  }
  return { kind: 'confirm' };
}

/**
 * Order status moves (protocol §1.9 `canTransition`), stricter for delivery: a refund is left
 * only by its own outcome (refund_cancelled, cancelled) or the trade ending (shipped by hand,
 * completed), never by a paid card arriving late, which would re-open the delivery.
 */
export function orderMayMove(from: OrderStatus | undefined, to: OrderStatus): boolean {
  if (from === 'refunding' && (to === 'pending_ship' || to === 'processing')) return false;
  return canTransition(from, to);
}
