import type { ItemInfo, Store } from '../store/types.js';

/** Item details for the AI prompt: from the database when fresh, else from the item detail API. */
export function createItemLookup(
  store: Store,
  accountId: string,
  fetchDetail: (itemId: string) => Promise<{ title: string; price?: string; description?: string }>,
  maxAgeMs = 24 * 3600_000,
): (itemId: string) => Promise<ItemInfo | undefined> {
  const inflight = new Map<string, Promise<ItemInfo | undefined>>();
  const memory = new Map<string, ItemInfo>();
  return (itemId) => {
    const hot = memory.get(itemId);
    if (hot && Date.now() - hot.fetchedAt.getTime() < maxAgeMs) return Promise.resolve(hot);
    const running = inflight.get(itemId);
    if (running) return running;
    const p = (async () => {
      const cached = await store.getItem(accountId, itemId);
      if (cached && Date.now() - cached.fetchedAt.getTime() < maxAgeMs) return cached;
      try {
        const d = await fetchDetail(itemId);
        const item: ItemInfo = { itemId, ...d, fetchedAt: new Date() };
        await store.putItem(accountId, item);
        return item;
      } catch {
        return cached ?? undefined; // a stale description beats none
      }
    })()
      .then((item) => {
        if (item) {
          if (memory.size >= 10_000) memory.clear();
          memory.set(itemId, item);
        }
        return item;
      })
      .finally(() => inflight.delete(itemId));
    inflight.set(itemId, p);
    return p;
  };
}
