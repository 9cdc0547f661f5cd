import type { ChatMessage, PushEntry } from '../protocol/types.js';

/** Where the session is; `/ready` and the Connected/LoginValid conditions derive from it. */
export type SessionState =
  | 'idle'
  | 'connecting' // token call / socket open
  | 'registering' // /reg sent, waiting for code 200
  | 'registered' // /reg answered, ackDiff sent: messages flow
  | 'backoff' // waiting to reconnect after a failure
  | 'risk_control' // FAIL_SYS_USER_VALIDATE / RGV587: long backoff, human may need to solve a captcha
  | 'login_expired' // session / cookie dead: a human must log in again
  | 'stopped';

export interface SessionStatus {
  state: SessionState;
  reason?: string;
  /** Punish / captcha URL from risk control (not a secret; logged as such). */
  punishUrl?: string;
  connectedSince?: Date;
  lastMessageAt?: Date;
  nextRetryAt?: Date;
  reconnects: number;
}

export interface SessionEvents {
  message: [ChatMessage];
  state: [SessionStatus];
  /** The cookie string after a Set-Cookie changed it (persist it; never log it). */
  cookies: [string];
  /** Every decoded non-chat entry (system notices, red reminders, card updates, typing, unknown). */
  push: [PushEntry];
}

/** The IM session as the rest of the workload sees it. */
export interface ImSession {
  start(): void;
  stop(): Promise<void>;
  status(): SessionStatus;
  /** Sends a text into a chat; resolves with the server's messageId, rejects on CSI_FORBID etc. */
  sendText(chatId: string, toUserId: string, text: string): Promise<{ messageId: string }>;
  on<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  off<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
}
