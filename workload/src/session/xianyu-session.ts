import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CHROME_UA, LWP, ORIGIN } from '../protocol/constants.js';
import { readUnb } from '../protocol/cookies.js';
import {
  ackDiffFrame,
  ackFrame,
  type ConversationPage,
  type HistoryPage,
  heartbeatFrame,
  isResponse,
  type LwpFrame,
  listUserMessagesFrame,
  parseConversationList,
  parseHistoryResponse,
  parseSendResponse,
  registerFrame,
  sendImageFrame,
  sendTextFrame,
  syncEntries,
} from '../protocol/frames.js';
import { deviceId, mid, uuid } from '../protocol/ids.js';
import { decodePushEntry } from '../protocol/push.js';
import type { ChatMessage } from '../protocol/types.js';
import { backoffDelay, jittered } from './backoff.js';
import { BoundedSet } from './bounded-set.js';
import { LwpConnection } from './connection.js';
import {
  LoginExpiredError,
  MtopError,
  NotRegisteredError,
  RegisterError,
  RequestTimeoutError,
  RiskControlError,
  SendRejectedError,
} from './errors.js';
import { MtopClient } from './mtop.js';
import { reviveLogin } from './passport.js';
import type { ImSession, SessionEvents, SessionState, SessionStatus } from './types.js';

// The live IM session of one seller (protocol §1): token → WebSocket → /reg → ackDiff →
// messages; heartbeat with a dead-link detector, periodic token refresh with re-registration,
// reconnects with capped backoff, long backoffs for risk control and dead logins.

const STATES: SessionState[] = [
  'idle',
  'connecting',
  'registering',
  'registered',
  'backoff',
  'risk_control',
  'login_expired',
  'stopped',
];
/** The reference client waits up to 5 s for the /reg answer. */
const REGISTER_TIMEOUT_MS = 5_000;
const OWN_SENDS_CAPACITY = 2_000;

export interface XianyuSessionOptions {
  config: Config;
  cookies: string;
  log: Logger;
  metrics?: Metrics;
  mtop?: MtopClient;
  /** Timeout of sends / history requests on the socket (default 10 s). */
  requestTimeoutMs?: number;
  /** WebSocket handshake timeout (default 15 s). */
  connectTimeoutMs?: number;
}

/** How one connection attempt ended, and so what the loop does next. */
type Outcome =
  | { kind: 'retry'; cause: string; reason: string; immediate?: boolean }
  | { kind: 'risk_control'; reason: string; punishUrl?: string }
  | { kind: 'login_expired'; reason: string };

class StoppedError extends Error {}

type Listener<E extends keyof SessionEvents> = (...args: SessionEvents[E]) => void;

export class XianyuSession extends EventEmitter implements ImSession {
  readonly sellerId: string;
  readonly deviceId: string;
  readonly #config: Config;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #mtop: MtopClient;
  readonly #requestTimeoutMs: number;
  readonly #connectTimeoutMs: number;

  #state: SessionState = 'idle';
  #reason: string | undefined;
  #punishUrl: string | undefined;
  #connectedSince: Date | undefined;
  #lastMessageAt: Date | undefined;
  #nextRetryAt: Date | undefined;
  #reconnects = 0;
  #failures = 0;

  #token: string | undefined;
  #conn: LwpConnection | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #stopping: Promise<void> | undefined;
  readonly #abort = new AbortController();
  /** Set by timers that end a healthy link for a reason of their own (risk control on refresh). */
  #forcedOutcome: Outcome | undefined;
  #revived = false;

  #heartbeatTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #sleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  readonly #seen: BoundedSet<string>;
  /** messageIds and uuids of our own sends: recognises the echo push of a bot reply. */
  readonly #ownIds = new BoundedSet<string>(OWN_SENDS_CAPACITY);
  /** Sends still waiting for their answer, by chat + text (the echo can beat the answer). */
  readonly #inFlight = new Map<string, number>();

  constructor(opts: XianyuSessionOptions) {
    super();
    const unb = readUnb(opts.mtop?.cookies ?? opts.cookies);
    if (!unb) throw new Error('cookie string has no numeric `unb` (the seller id): cannot start a session');
    this.sellerId = unb;
    this.deviceId = deviceId(unb);
    this.#config = opts.config;
    this.#log = opts.log.child({ component: 'session' });
    this.#metrics = opts.metrics;
    this.#mtop = opts.mtop ?? new MtopClient({ config: opts.config, cookies: opts.cookies, log: opts.log });
    this.#mtop.on('cookies', (c) => this.emit('cookies', c));
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.#seen = new BoundedSet(opts.config.session.dedupCapacity);
  }

  // Typed event methods (SessionEvents) over the untyped EventEmitter.
  override on<E extends keyof SessionEvents>(event: E, listener: Listener<E>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }
  override once<E extends keyof SessionEvents>(event: E, listener: Listener<E>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }
  override off<E extends keyof SessionEvents>(event: E, listener: Listener<E>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
  override emit<E extends keyof SessionEvents>(event: E, ...args: SessionEvents[E]): boolean {
    return super.emit(event, ...args);
  }

  /** The current cookie string (refreshed by Set-Cookie). */
  cookies(): string {
    return this.#mtop.cookies;
  }

  get mtop(): MtopClient {
    return this.#mtop;
  }

  start(): void {
    if (this.#loop || this.#stopped) return;
    this.#loop = this.#run().catch((err) => this.#log.error({ err }, 'session loop crashed'));
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      this.#abort.abort();
      clearInterval(this.#heartbeatTimer);
      clearTimeout(this.#refreshTimer);
      this.#wake();
      const conn = this.#conn;
      if (conn) await conn.close('stop', 1000);
      this.#conn = undefined;
      this.#nextRetryAt = undefined;
      this.#setState('stopped', 'stopped');
    })();
    return this.#stopping;
  }

  status(): SessionStatus {
    const s: SessionStatus = { state: this.#state, reconnects: this.#reconnects };
    if (this.#reason !== undefined) s.reason = this.#reason;
    if (this.#punishUrl !== undefined) s.punishUrl = this.#punishUrl;
    if (this.#connectedSince) s.connectedSince = this.#connectedSince;
    if (this.#lastMessageAt) s.lastMessageAt = this.#lastMessageAt;
    if (this.#nextRetryAt) s.nextRetryAt = this.#nextRetryAt;
    return s;
  }

  async sendText(chatId: string, toUserId: string, text: string): Promise<{ messageId: string }> {
    const conn = this.#registeredConn();
    const id = uuid();
    const key = `${chatId}\u0000${text}`;
    this.#ownIds.add(id);
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    try {
      const frame = sendTextFrame({ mid: mid(), uuid: id, chatId, toUserId, myUserId: this.sellerId, text });
      const answer = await conn.request(frame, this.#requestTimeoutMs);
      const r = parseSendResponse(answer);
      if (!r.ok) {
        this.#log.warn({ chatId, reason: r.reason }, 'send rejected');
        throw new SendRejectedError(r.reason);
      }
      this.#ownIds.add(r.messageId);
      return { messageId: r.messageId };
    } finally {
      const n = (this.#inFlight.get(key) ?? 1) - 1;
      if (n > 0) this.#inFlight.set(key, n);
      else this.#inFlight.delete(key);
    }
  }

  /** Sends an image (a Xianyu CDN URL, protocol §1.10); resolves with the server's messageId. */
  async sendImage(
    chatId: string,
    toUserId: string,
    image: { url: string; width?: number; height?: number },
  ): Promise<{ messageId: string }> {
    const conn = this.#registeredConn();
    const id = uuid();
    this.#ownIds.add(id);
    const frame = sendImageFrame({
      mid: mid(),
      uuid: id,
      chatId,
      toUserId,
      myUserId: this.sellerId,
      ...image,
    });
    const r = parseSendResponse(await conn.request(frame, this.#requestTimeoutMs));
    if (!r.ok) {
      this.#log.warn({ chatId, reason: r.reason }, 'image send rejected');
      throw new SendRejectedError(r.reason);
    }
    this.#ownIds.add(r.messageId);
    return { messageId: r.messageId };
  }

  /**
   * One page of the conversation list, newest first (`/r/Conversation/listNewestPagination`,
   * protocol §1.10): conversations modified at or before `startTs`.
   */
  async listConversations(startTs: number, limit = 20): Promise<ConversationPage> {
    const conn = this.#registeredConn();
    const answer = await conn.request(
      { lwp: LWP.listConversations, headers: { mid: mid() }, body: [startTs, limit] },
      this.#requestTimeoutMs,
    );
    if (answer.code !== 200) throw new Error(`listNewestPagination answered code ${answer.code ?? 'none'}`);
    return parseConversationList(answer);
  }

  /** One page of a chat's history (protocol §1.10); pass `nextCursor` for older pages. */
  async listUserMessages(chatId: string, cursor?: number, limit?: number): Promise<HistoryPage> {
    const conn = this.#registeredConn();
    const frame = listUserMessagesFrame({
      mid: mid(),
      chatId,
      ...(cursor !== undefined ? { cursor } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    const answer = await conn.request(frame, this.#requestTimeoutMs);
    if (answer.code !== 200) throw new Error(`listUserMessages answered code ${answer.code ?? 'none'}`);
    return parseHistoryResponse(answer);
  }

  #registeredConn(): LwpConnection {
    const conn = this.#conn;
    if (this.#state !== 'registered' || !conn?.isOpen) throw new NotRegisteredError(this.#state);
    return conn;
  }

  // ---- the loop ----

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let outcome: Outcome;
      try {
        outcome = await this.#connectOnce();
      } catch (err) {
        if (this.#stopped || err instanceof StoppedError) break;
        outcome = this.#classify(err);
      }
      this.#stopHeartbeat();
      this.#conn = undefined;
      this.#metrics?.connected.set(0);
      if (this.#stopped) break;
      await this.#pause(outcome);
    }
  }

  /** One connection: resolves with how it ended once the socket is gone. */
  async #connectOnce(): Promise<Outcome> {
    this.#forcedOutcome = undefined;
    this.#setState('connecting');
    const token = await this.#ensureToken();
    this.#checkStopped();

    const conn = await LwpConnection.open(this.#config.endpoints.im, this.#wsHeaders(), {
      timeoutMs: this.#connectTimeoutMs,
      signal: this.#abort.signal,
    }).catch((err: Error) => {
      throw Object.assign(new Error(`websocket connect failed: ${err.message}`), { cause: 'connect_failed' });
    });
    if (this.#stopped) {
      await conn.close('stop');
      throw new StoppedError();
    }
    this.#conn = conn;
    try {
      await this.#register(conn, token);
    } catch (err) {
      conn.terminate('register_failed'); // never leave a half-registered socket behind
      throw err;
    }
    if (!conn.isOpen) return this.#closedOutcome(conn);

    this.#failures = 0;
    this.#revived = false;
    this.#connectedSince = new Date();
    this.#nextRetryAt = undefined;
    this.#punishUrl = undefined;
    this.#setState('registered', undefined);
    this.#metrics?.connected.set(1);
    this.#log.info({ sellerId: this.sellerId }, 'registered on the IM');
    this.#startHeartbeat(conn);
    if (!this.#refreshTimer) this.#scheduleRefresh(this.#refreshDelay());

    await conn.closed;
    return this.#closedOutcome(conn);
  }

  /** /reg (§1.4), then /s/vulcan or the settle pause, then ackDiff. Throws when /reg fails. */
  async #register(conn: LwpConnection, token: string): Promise<void> {
    let vulcan!: () => void;
    const vulcanSeen = new Promise<void>((r) => {
      vulcan = r;
    });
    conn.on('frame', (frame, reply) => {
      if (frame.lwp === LWP.vulcan) vulcan();
      this.#onFrame(conn, frame, reply);
    });
    conn.on('malformed', (text) => {
      this.#count('malformed');
      this.#log.debug({ length: text.length }, 'non-JSON frame ignored');
    });

    this.#setState('registering');
    const reg = await conn
      .request(registerFrame({ token, deviceId: this.deviceId, mid: mid() }), REGISTER_TIMEOUT_MS)
      .catch((err: Error) => {
        throw new RegisterError(`/reg: ${err.message}`);
      });
    if (reg.code !== 200) {
      this.#token = undefined; // a rejected token is never reused
      const text = JSON.stringify(reg.body ?? '');
      if (/RGV587|FAIL_SYS_USER_VALIDATE/.test(text)) {
        const url = (reg.body as { url?: unknown } | undefined)?.url;
        throw new RiskControlError('/reg', [text], typeof url === 'string' ? url : undefined);
      }
      throw new RegisterError(`/reg answered code ${reg.code ?? 'none'}`);
    }
    // The server pushes /s/vulcan when it is ready; the reference clients simply wait ~1 s.
    await Promise.race([vulcanSeen, this.#delay(this.#config.session.registerSettleMs), conn.closed]);
    this.#checkStopped();
    if (conn.isOpen)
      conn.request(ackDiffFrame({ mid: mid(), now: Date.now() }), this.#requestTimeoutMs).catch(() => {});
  }

  #closedOutcome(conn: LwpConnection): Outcome {
    if (this.#forcedOutcome) return this.#forcedOutcome;
    const cause = conn.cause ?? 'server_close';
    return {
      kind: 'retry',
      cause,
      reason: cause === 'server_close' ? 'server closed the connection' : cause,
      immediate: cause === 'token_refresh',
    };
  }

  #classify(err: unknown): Outcome {
    if (err instanceof RiskControlError) {
      return {
        kind: 'risk_control',
        reason: err.message,
        ...(err.punishUrl ? { punishUrl: err.punishUrl } : {}),
      };
    }
    if (err instanceof LoginExpiredError) return { kind: 'login_expired', reason: err.message };
    if (err instanceof MtopError) return { kind: 'retry', cause: 'token_failed', reason: err.message };
    if (err instanceof RegisterError) return { kind: 'retry', cause: 'register_failed', reason: err.message };
    const e = err as Error & { cause?: unknown };
    if (e?.cause === 'connect_failed') return { kind: 'retry', cause: 'connect_failed', reason: e.message };
    return { kind: 'retry', cause: 'error', reason: e?.message ?? String(err) };
  }

  /** Waits before the next attempt, in the state the outcome calls for. */
  async #pause(o: Outcome): Promise<void> {
    const s = this.#config.session;
    let wait: number;
    let cause: string;
    if (o.kind === 'risk_control') {
      cause = 'risk_control';
      // Never shorter than the configured floor (the schema enforces ≥ 60 s); jitter only adds.
      wait = s.riskControlBackoffMs + Math.round(Math.random() * s.riskControlBackoffMs * 0.1);
      this.#punishUrl = o.punishUrl;
      this.#nextRetryAt = new Date(Date.now() + wait);
      this.#setState('risk_control', o.reason);
      this.#log.warn(
        { punishUrl: o.punishUrl, nextRetryAt: this.#nextRetryAt.toISOString() },
        'risk control (slider captcha): a human must solve the punish URL; backing off',
      );
    } else if (o.kind === 'login_expired') {
      cause = 'login_expired';
      wait = s.riskControlBackoffMs;
      this.#nextRetryAt = new Date(Date.now() + wait);
      this.#setState('login_expired', o.reason);
      this.#log.error({ nextRetryAt: this.#nextRetryAt.toISOString() }, 'login expired: new cookies needed');
    } else {
      cause = o.cause;
      if (o.immediate) {
        wait = 0;
      } else {
        this.#failures += 1;
        wait = backoffDelay(this.#failures, s.backoffInitialMs, s.backoffMaxMs);
      }
      this.#nextRetryAt = new Date(Date.now() + wait);
      this.#setState('backoff', o.reason);
      this.#log.info({ cause, waitMs: wait }, 'reconnecting');
    }
    this.#reconnects += 1;
    this.#metrics?.reconnects.inc({ cause });
    await this.#delay(wait);
  }

  // ---- tokens ----

  /** The cached token, or a fresh one. */
  async #ensureToken(): Promise<string> {
    this.#token ??= await this.#acquireToken();
    return this.#token;
  }

  /** A fresh token; on a dead login, one session revive (hasLogin) per episode, then one retry. */
  async #acquireToken(): Promise<string> {
    try {
      return await this.#fetchToken();
    } catch (err) {
      if (!(err instanceof LoginExpiredError) || this.#revived || this.#stopped) throw err;
      this.#revived = true;
      const ok = await reviveLogin({
        passport: this.#config.endpoints.passport,
        mtop: this.#mtop,
        log: this.#log,
      });
      this.#log.info({ revived: ok }, 'login expired: tried a session revive (hasLogin)');
      if (!ok) throw err;
      return await this.#fetchToken();
    }
  }

  async #fetchToken(): Promise<string> {
    try {
      const token = await this.#mtop.getAccessToken(this.deviceId);
      this.#metrics?.tokenRefreshes.inc({ result: 'success' });
      return token;
    } catch (err) {
      const result =
        err instanceof RiskControlError
          ? 'risk_control'
          : err instanceof LoginExpiredError
            ? 'login_expired'
            : 'failure';
      this.#metrics?.tokenRefreshes.inc({ result });
      throw err;
    }
  }

  #refreshDelay(): number {
    const s = this.#config.session;
    return jittered(s.tokenRefreshIntervalMs, s.tokenRefreshJitterMs);
  }

  #scheduleRefresh(ms: number): void {
    clearTimeout(this.#refreshTimer);
    if (this.#stopped) return;
    this.#refreshTimer = setTimeout(() => void this.#refreshToken(), ms);
  }

  /** Periodic refresh: new token, then drop the link so the loop re-registers with it (fix #290). */
  async #refreshToken(): Promise<void> {
    if (this.#stopped) return;
    const conn = this.#conn;
    if (this.#state !== 'registered' || !conn) {
      // Not connected: the next connect fetches a fresh token anyway.
      this.#token = undefined;
      this.#scheduleRefresh(this.#refreshDelay());
      return;
    }
    try {
      const token = await this.#acquireToken();
      if (this.#stopped) return;
      this.#token = token;
      this.#scheduleRefresh(this.#refreshDelay());
      this.#log.info('access token refreshed: re-registering');
      await conn.drain(2_000); // let in-flight sends get their answers first
      await conn.close('token_refresh', 1000);
    } catch (err) {
      if (this.#stopped) return;
      if (err instanceof RiskControlError || err instanceof LoginExpiredError) {
        this.#forcedOutcome = this.#classify(err);
        this.#scheduleRefresh(this.#refreshDelay());
        await conn.close(this.#forcedOutcome.kind, 1000);
        return;
      }
      this.#log.warn({ err }, 'token refresh failed; keeping the current link');
      this.#scheduleRefresh(this.#config.session.tokenRetryIntervalMs);
    }
  }

  // ---- link liveness ----

  #startHeartbeat(conn: LwpConnection): void {
    this.#stopHeartbeat();
    const { heartbeatIntervalMs, heartbeatTimeoutMs } = this.#config.session;
    this.#heartbeatTimer = setInterval(() => {
      if (!conn.isOpen) return;
      const sentAt = Date.now();
      if (sentAt - conn.lastFrameAt > heartbeatIntervalMs + heartbeatTimeoutMs) {
        this.#deadLink(conn);
        return;
      }
      // Alive = any frame after the heartbeat, its own answer or anything else.
      conn.request(heartbeatFrame(mid()), heartbeatTimeoutMs).catch((err) => {
        if (err instanceof RequestTimeoutError && conn.isOpen && conn.lastFrameAt < sentAt)
          this.#deadLink(conn);
      });
    }, heartbeatIntervalMs);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
  }

  #deadLink(conn: LwpConnection): void {
    this.#log.warn('no frame within heartbeat interval + timeout: dropping the dead link');
    conn.terminate('dead_link');
  }

  // ---- inbound frames ----

  #wsHeaders(): Record<string, string> {
    return {
      Origin: ORIGIN,
      Pragma: 'no-cache',
      'Cache-Control': 'no-cache',
      'Accept-Encoding': 'gzip, deflate, br, zstd',
      'Accept-Language': 'zh-CN,zh;q=0.9',
      'User-Agent': CHROME_UA,
      Cookie: this.#mtop.cookies,
    };
  }

  #onFrame(conn: LwpConnection, frame: LwpFrame, reply: boolean): void {
    // §1.6: ack everything the server sent on its own; answers to our requests are not acked.
    if (!reply && !isResponse(frame)) conn.send(ackFrame(frame, mid()));
    const entries = syncEntries(frame);
    if (!entries) return;
    for (const entry of entries) this.#onEntry(entry);
  }

  #onEntry(raw: unknown): void {
    const now = Date.now();
    const d = decodePushEntry(raw, { now });
    switch (d.kind) {
      case 'malformed':
        this.#count('malformed');
        this.#log.debug({ reason: d.reason }, 'undecodable sync entry');
        return;
      case 'chat':
        this.#onChat(d.message, now);
        return;
      case 'typing':
        this.#count('typing');
        break;
      case 'unknown':
        this.#count('unknown');
        break;
      default:
        this.#count('notice');
    }
    this.emit('push', d);
  }

  #onChat(m: ChatMessage, now: number): void {
    if (!this.#seen.add(m.messageId)) {
      this.#count('duplicate');
      return;
    }
    if (now - m.createdAt > this.#config.session.messageMaxAgeMs) {
      this.#log.debug({ chatId: m.chatId, ageMs: now - m.createdAt }, 'expired message dropped');
      this.#count('expired');
      return;
    }
    let kind: string;
    if (m.senderId === this.sellerId) {
      kind = 'own';
      const ours =
        this.#ownIds.has(m.messageId) ||
        (m.serverMessageId !== undefined && this.#ownIds.has(m.serverMessageId)) ||
        this.#inFlight.has(`${m.chatId}\u0000${m.text}`);
      if (ours) m.isOwnEcho = true;
    } else {
      kind = m.isGroup ? 'group' : m.isSystem ? 'system' : 'chat';
    }
    this.#count(kind);
    this.#lastMessageAt = new Date(now);
    this.emit('message', m);
  }

  // ---- helpers ----

  #count(kind: string): void {
    this.#metrics?.messagesReceived.inc({ kind });
  }

  #setState(state: SessionState, reason?: string): void {
    this.#state = state;
    this.#reason = reason;
    // The punish URL stays visible while retrying out of risk control; success or another failure clears it.
    if (state === 'registered' || state === 'backoff' || state === 'login_expired')
      this.#punishUrl = undefined;
    if (state !== 'registered') this.#connectedSince = undefined;
    if (this.#metrics) {
      this.#metrics.connected.set(state === 'registered' ? 1 : 0);
      for (const name of STATES) this.#metrics.sessionState.set({ state: name }, name === state ? 1 : 0);
    }
    this.emit('state', this.status());
  }

  #checkStopped(): void {
    if (this.#stopped) throw new StoppedError();
  }

  /** A sleep that stop() cuts short. */
  #delay(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.#sleep?.timer === timer) this.#sleep = undefined;
        resolve();
      }, ms);
      this.#sleep = { timer, resolve };
    });
  }

  #wake(): void {
    const s = this.#sleep;
    this.#sleep = undefined;
    if (s) {
      clearTimeout(s.timer);
      s.resolve();
    }
  }
}
