// A set that forgets its oldest entries beyond `capacity`: de-duplication and own-send memory
// with bounded memory on a session that runs for months.

export class BoundedSet<T> {
  readonly #items = new Set<T>();
  constructor(readonly capacity: number) {}

  has(v: T): boolean {
    return this.#items.has(v);
  }

  /** Adds `v`; returns false when it was already present. */
  add(v: T): boolean {
    if (this.#items.has(v)) return false;
    this.#items.add(v);
    if (this.#items.size > this.capacity) {
      // Sets iterate in insertion order: the first key is the oldest.
      const oldest = this.#items.values().next();
      if (!oldest.done) this.#items.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.#items.size;
  }
}
