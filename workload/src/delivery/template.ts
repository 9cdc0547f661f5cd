import { fillPlaceholders } from '../reply/placeholders.js';

// Placeholders of delivery messages and source URLs.

export interface DeliveryValues {
  order_id: string;
  item_id: string;
  item_title: string;
  quantity: number;
  buyer_name: string;
  buyer_id: string;
  spec: string;
  /** 1-based number of the unit within the order. */
  unit: number;
  code?: string;
}

export function renderMessage(template: string, v: DeliveryValues): string {
  return fillPlaceholders(template, { ...v });
}

/** For URLs: every value URL-encoded. */
export function renderUrl(template: string, v: DeliveryValues): string {
  const enc: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (val !== undefined) enc[k] = encodeURIComponent(String(val));
  return fillPlaceholders(template, enc);
}

/** For JSON bodies: every value JSON-string-escaped (without the quotes). */
export function renderJson(template: string, v: DeliveryValues): string {
  const enc: Record<string, string> = {};
  for (const [k, val] of Object.entries(v))
    if (val !== undefined) enc[k] = JSON.stringify(String(val)).slice(1, -1);
  return fillPlaceholders(template, enc);
}
