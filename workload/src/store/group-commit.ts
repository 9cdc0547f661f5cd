// Group commit: many small writes of the same kind become one statement. A call made while a
// batch is being written waits and goes with the next batch, so nothing waits for a timer: at
// low load every call is a batch of its own, under load batches grow by themselves and the
// database sees one statement (one round trip, one commit) where it would see dozens.

const MAX_ATTEMPTS = 4;

/**
 * A PostgreSQL transaction the server rolled back because it conflicted with another one
 * (deadlock, serialization failure): running it again is the cure.
 */
export function isTransientConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private busy = false;

  /**
   * `write` gets the batch and returns one result per item, in order. A batch that fails with
   * an error `retryIf` accepts (a deadlock with another batch: the database rolled this one
   * back whole) is written again, a few times.
   */
  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly opts: { maxBatch?: number; retryIf?: (err: unknown) => boolean } = {},
  ) {}

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.busy) {
        this.busy = true;
        queueMicrotask(() => void this.drain()); // calls of the same tick go together
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.opts.maxBatch ?? 256);
      for (let attempt = 1; ; attempt++) {
        try {
          const out = await this.write(batch.map((w) => w.item));
          for (const [i, w] of batch.entries()) w.resolve(out[i] as O);
          break;
        } catch (err) {
          if (attempt < MAX_ATTEMPTS && this.opts.retryIf?.(err)) continue;
          for (const w of batch) w.reject(err);
          break;
        }
      }
    }
    this.busy = false;
  }
}
