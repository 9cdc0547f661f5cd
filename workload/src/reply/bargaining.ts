import type { AiConfig } from '../config/schema.js';

// Price-intent detection and the bargaining limits given to (and enforced on) the AI.

const PRICE_INTENT =
  /(便宜|优惠|砍价|砍一?刀|少点|少一?点|能少|再少|最低|底价|打折|折扣|让点|让一?点|包邮吗?|多少钱能|\d+(\.\d+)?\s*(元|块|米)?\s*(行吗|行不行|可以吗|卖吗|出吗|能出|出不出)|能不能.{0,4}(便宜|少))/u;

export function detectPriceIntent(text: string): boolean {
  return PRICE_INTENT.test(text);
}

/** The lowest price the seller accepts, in yuan, or undefined when the list price is unknown. */
export function priceFloor(
  listPrice: number | undefined,
  limits: AiConfig['bargaining'],
): number | undefined {
  if (listPrice === undefined || !Number.isFinite(listPrice) || listPrice <= 0) return undefined;
  const byPercent = listPrice * (1 - limits.maxDiscountPercent / 100);
  const byAmount = limits.maxDiscountAmount === undefined ? 0 : listPrice - limits.maxDiscountAmount;
  return round2(Math.max(byPercent, byAmount, 0));
}

export function bargainingInstructions(
  listPrice: number | undefined,
  floor: number | undefined,
  round: number,
  maxRounds: number,
): string {
  if (listPrice === undefined || floor === undefined) {
    return `买家在议价（第 ${round}/${maxRounds} 轮）。你不知道商品价格，不要承诺任何降价，请礼貌说明以标价为准。`;
  }
  return [
    `买家在议价（第 ${round}/${maxRounds} 轮）。标价 ${listPrice} 元，最低可接受 ${floor} 元。`,
    `绝不能答应低于 ${floor} 元的价格；可以逐步让价，但每次只让一点。`,
  ].join('');
}

/** Prices a reply offers, e.g. "120元", "¥99", "99块". */
export function pricesIn(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/(?:¥|￥)\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(?:元|块)/gu)) {
    const n = Number(m[1] ?? m[2]);
    if (Number.isFinite(n)) out.push(n);
  }
  return out;
}

/** True when an AI answer offers a price under the floor (the model ignored its limits). */
export function breaksFloor(answer: string, floor: number | undefined): boolean {
  if (floor === undefined) return false;
  return pricesIn(answer).some((p) => p < floor);
}

export function parsePrice(price: string | number | undefined): number | undefined {
  if (price === undefined) return undefined;
  const n = typeof price === 'number' ? price : Number(String(price).replace(/[^\d.]/g, ''));
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
