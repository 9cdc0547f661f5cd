import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { frameMid, type LwpFrame, parseFrame } from '../protocol/frames.js';
import { RequestTimeoutError } from './errors.js';

// One lwp WebSocket: JSON frames in and out, requests matched to their answers by
// `headers.mid`. Policy (acks, heartbeats, reconnects) lives in the session, not here.

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ConnectionEvents {
  /** Every parsed frame; `reply` = it answered one of our pending requests. */
  frame: [LwpFrame, boolean];
  /** A text frame that is not a JSON object. */
  malformed: [string];
  close: [CloseInfo];
}

interface Pending {
  resolve: (f: LwpFrame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class LwpConnection extends EventEmitter<ConnectionEvents> {
  /** Epoch ms of the last frame received (any frame): the dead-link detector reads it. */
  lastFrameAt = Date.now();
  /** Why we are closing it ourselves (dead_link, token_refresh …); unset for server closes. */
  cause: string | undefined;
  readonly closed: Promise<CloseInfo>;
  readonly #ws: WebSocket;
  readonly #pending = new Map<string, Pending>();

  private constructor(ws: WebSocket) {
    super();
    this.#ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        const info = { code, reason: reason.toString('utf8') };
        for (const [mid, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(new RequestTimeoutError(`socket closed before the answer to ${mid}`));
        }
        this.#pending.clear();
        this.emit('close', info);
        resolve(info);
      });
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    // Errors after open always end in 'close'; that is where they are handled.
    ws.on('error', () => {});
  }

  static open(
    url: string,
    headers: Record<string, string>,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<LwpConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, handshakeTimeout: opts.timeoutMs, perMessageDeflate: false });
      const onAbort = () => ws.terminate();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const fail = (err: Error) => {
        opts.signal?.removeEventListener('abort', onAbort);
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(err);
      };
      ws.once('error', fail);
      ws.once('close', (code) => fail(new Error(`socket closed during handshake (${code})`)));
      ws.once('open', () => {
        opts.signal?.removeEventListener('abort', onAbort);
        ws.removeAllListeners();
        resolve(new LwpConnection(ws));
      });
    });
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sends a frame; false when the socket is not open (the caller decides what that means). */
  send(frame: LwpFrame): boolean {
    if (!this.isOpen) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Sends a request and resolves with the frame echoing its `headers.mid`. */
  request(frame: LwpFrame, timeoutMs: number): Promise<LwpFrame> {
    const mid = frameMid(frame);
    if (!mid) return Promise.reject(new Error('request frame needs headers.mid'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(mid);
        reject(new RequestTimeoutError(`no answer to ${frame.lwp ?? 'request'} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(mid, { resolve, reject, timer });
      if (!this.send(frame)) {
        clearTimeout(timer);
        this.#pending.delete(mid);
        reject(new RequestTimeoutError('socket not open'));
      }
    });
  }

  /** Resolves once no request is in flight, or after `maxMs`. */
  async drain(maxMs: number): Promise<void> {
    const deadline = Date.now() + maxMs;
    while (this.#pending.size > 0 && Date.now() < deadline && this.isOpen) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Clean close (code 1000 by default); resolves when the socket is closed. */
  close(cause?: string, code = 1000): Promise<CloseInfo> {
    this.cause ??= cause;
    if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close(code);
      // A peer that never answers the close frame must not hold us forever.
      const t = setTimeout(() => this.#ws.terminate(), 2000);
      t.unref();
    }
    return this.closed;
  }

  /** Drops the link without a close handshake (dead link). */
  terminate(cause: string): void {
    this.cause ??= cause;
    this.#ws.terminate();
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    this.lastFrameAt = Date.now();
    const text = isBinary ? '' : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data.toString();
    const frame = parseFrame(text);
    if (!frame) {
      this.emit('malformed', text.slice(0, 200));
      return;
    }
    const mid = frameMid(frame);
    // Only an answer (no lwp path of its own) settles a request: a server push whose random mid
    // happens to equal a pending request's must not be taken for its answer.
    const p = mid === undefined || typeof frame.lwp === 'string' ? undefined : this.#pending.get(mid);
    if (p && mid !== undefined) {
      this.#pending.delete(mid);
      clearTimeout(p.timer);
    }
    // Emit before resolving: a reply can carry data (a sync package) that must be handled too.
    this.emit('frame', frame, p !== undefined);
    p?.resolve(frame);
  }
}
