// Typed failures of the session layer. The session maps them to states and backoffs;
// callers of sendText() can tell a content block (SendRejectedError) from a dead link.

/** An mtop call answered with something other than SUCCESS (or no answer at all). */
export class MtopError extends Error {
  override name = 'MtopError';
  constructor(
    readonly api: string,
    readonly ret: readonly string[],
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? `${api}: ${ret.join(' | ') || 'no ret'}`, options);
  }
  get code(): string {
    return (this.ret[0] ?? '').split('::')[0] ?? '';
  }
}

/** FAIL_SYS_USER_VALIDATE / RGV587_ERROR: slider captcha; a human must solve `punishUrl`. */
export class RiskControlError extends MtopError {
  override name = 'RiskControlError';
  constructor(
    api: string,
    ret: readonly string[],
    readonly punishUrl?: string,
  ) {
    super(api, ret);
  }
}

/** FAIL_SYS_SESSION_EXPIRED / Session过期: the cookie is dead; a human must log in again. */
export class LoginExpiredError extends MtopError {
  override name = 'LoginExpiredError';
}

/** The server refused a send (`reason`, e.g. CSI_FORBID content-security block). */
export class SendRejectedError extends Error {
  override name = 'SendRejectedError';
  constructor(readonly reason: string) {
    super(`send rejected: ${reason}`);
  }
}

/** The session is not registered (connecting, backing off, stopped …). */
export class NotRegisteredError extends Error {
  override name = 'NotRegisteredError';
  constructor(readonly state: string) {
    super(`session not registered (state ${state})`);
  }
}

/** An lwp request got no answer in time, or its socket closed first. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError';
}

/** `/reg` answered with a non-200 code (or not at all). */
export class RegisterError extends Error {
  override name = 'RegisterError';
}
