import type { Logger } from '../log.js';
import type { LoggedMessage, Store } from './types.js';

// Write-behind message log: replies never wait for the conversation log. Messages are
// written in batches (one statement each), in order; `flush()` waits for everything so far.
// Duplicate pushes are already dropped in memory by the session, and every push is acked
// on receipt, so the service does not replay what this process has seen.

export class MessageLog {
  private buffer: LoggedMessage[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly opts: { flushMs?: number; maxBatch?: number } = {},
  ) {}

  append(m: LoggedMessage): void {
    this.buffer.push(m);
    if (this.buffer.length >= (this.opts.maxBatch ?? 500)) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushMs ?? 20);
  }

  /** Resolves once every message appended so far is written (or its failure was logged). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length > 0) {
      this.writing = this.writing.then(() =>
        this.store.recordMessages(batch).catch((err: Error) => {
          this.log.error({ err, messages: batch.length }, 'could not write the message log');
        }),
      );
    }
    return this.writing;
  }
}
