import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { type CrashHook, noCrash } from './crash.js';
import type { DeliveryStore } from './store.js';

// Pool files (codes, one per line) are imported whenever their content changes: a mounted
// Secret changes in place, so the file is re-read on a timer and compared by hash. Codes are
// never logged; only counts are.

/** Codes of a pool file: one per line, trimmed, blank lines skipped, first occurrence kept. */
export function parsePoolFile(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const code = line.trim();
    if (code) seen.add(code);
  }
  return [...seen];
}

export interface PoolWatcherDeps {
  pools: Record<string, { file: string; lowStock: number }>;
  store: DeliveryStore;
  log: Logger;
  intervalMs: number;
  crash?: CrashHook;
  /** After an import that added or restored codes. */
  onStock: (pool: string) => Promise<void> | void;
  /** After every check (gauges). */
  onChecked?: (pool: string) => Promise<void> | void;
}

export class PoolWatcher {
  private timer: NodeJS.Timeout | undefined;
  private readonly lastHash = new Map<string, string>();
  private readonly failing = new Set<string>();
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly d: PoolWatcherDeps) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.checkAll().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.d.intervalMs);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Checks every pool file once (also the first import at start). */
  async checkAll(): Promise<void> {
    for (const [pool, p] of Object.entries(this.d.pools)) {
      if (this.stopped) return;
      await this.check(pool, p.file);
    }
  }

  async check(pool: string, file: string): Promise<void> {
    const log = this.d.log.child({ component: 'pools', pool });
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (!this.failing.has(pool))
        log.error({ file, error: (err as NodeJS.ErrnoException).code }, 'pool file unreadable');
      this.failing.add(pool);
      return;
    }
    this.failing.delete(pool);
    const hash = createHash('sha256').update(text).digest('hex');
    try {
      if (this.lastHash.get(pool) !== hash) {
        const stored = await this.d.store.poolFileHash(pool);
        if (stored !== hash) {
          const codes = parsePoolFile(text);
          const crash = this.d.crash ?? noCrash;
          const r = await this.d.store.importPool(pool, codes, hash, {
            batchSize: 250,
            afterBatch: () => crash('mid-import'),
          });
          log.info({ lines: codes.length, ...r }, 'pool file imported');
          if (r.added > 0 || r.restored > 0) await this.d.onStock(pool);
        }
        this.lastHash.set(pool, hash);
      }
      await this.d.onChecked?.(pool);
    } catch (err) {
      log.error({ err }, 'pool import failed; retrying on the next check');
    }
  }
}
