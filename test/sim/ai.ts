// An OpenAI-compatible chat-completions endpoint (`/v1/chat/completions`), scriptable by tests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { delay, hex, isRecord, readBody, sendJson, tryJson } from './util.js';

export interface AiRequest {
  model: string;
  messages: { role: string; content: string }[];
}
export interface AiRecord extends AiRequest {
  authorization?: string;
  at: number;
}
export type AiHandler = (req: AiRequest) => string | Promise<string>;

const errorBody = (message: string, type: string, code: string | null) => ({
  error: { message, type, param: null, code },
});

/** Flattens the content-part array form ([{type:'text',text}]) to a string. */
function contentText(c: unknown): string | undefined {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    return c.map((p) => (isRecord(p) && typeof p.text === 'string' ? p.text : '')).join('');
  }
  return undefined;
}

/** A deterministic, plausible seller answer derived from the last user message. */
export function defaultAnswer(req: AiRequest): string {
  const last = [...req.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  if (/价|便宜|少|刀|优惠/.test(last)) return '亲，这个价格已经很实惠了，诚心要的话可以小刀一下哦～';
  if (/在吗|还在|有货/.test(last)) return '在的亲，宝贝还在，可以直接拍下哦～';
  if (/发货|快递|包邮/.test(last)) return '拍下后24小时内发货，默认包邮哦～';
  return '您好，宝贝在的，有什么问题都可以问我哦～';
}

export interface SimAi {
  /** The next requests answer these in order (then the handler, then a default answer). */
  script(answers: string[]): void;
  setHandler(fn: AiHandler | null): void;
  requests(): AiRecord[];
  /** Answer latency, for timeout tests. */
  delayMs: number;
  failNext(status: number, count?: number): void;
}

export class Ai {
  delayMs = 0;
  private readonly script: string[] = [];
  private handler: AiHandler | null = null;
  private readonly records: AiRecord[] = [];
  private failures: { status: number; left: number } | null = null;

  /** Public test API (the `sim.ai` object). */
  readonly api: SimAi;

  constructor(private readonly slowMs: () => number) {
    const records = this.records;
    const script = this.script;
    const setHandler = (fn: AiHandler | null): void => {
      this.handler = fn;
    };
    const failNext = (status: number, count = 1): void => {
      this.failures = { status, left: count };
    };
    const getDelay = (): number => this.delayMs;
    const setDelay = (v: number): void => {
      this.delayMs = v;
    };
    this.api = {
      script: (answers) => {
        script.push(...answers);
      },
      setHandler,
      requests: () => records.map((r) => ({ ...r, messages: r.messages.map((m) => ({ ...m })) })),
      failNext,
      get delayMs() {
        return getDelay();
      },
      set delayMs(v: number) {
        setDelay(v);
      },
    };
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === '/v1/models' && req.method === 'GET') {
      sendJson(res, 200, { object: 'list', data: [{ id: 'sim-model', object: 'model', owned_by: 'sim' }] });
      return true;
    }
    if (url.pathname !== '/v1/chat/completions') return false;
    const raw = (await readBody(req)).toString('utf8');
    const auth = req.headers.authorization;
    await delay(this.slowMs());
    if (req.method !== 'POST') {
      sendJson(res, 405, errorBody('method not allowed', 'invalid_request_error', null));
      return true;
    }
    if (!auth || !/^Bearer \S+/.test(auth)) {
      sendJson(
        res,
        401,
        errorBody('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'),
      );
      return true;
    }
    const parsed = tryJson(raw);
    const body = parsed.ok && isRecord(parsed.value) ? parsed.value : undefined;
    const messages = Array.isArray(body?.messages)
      ? (body.messages as unknown[]).map((m) => ({
          role: isRecord(m) && typeof m.role === 'string' ? m.role : '',
          content: isRecord(m) ? contentText(m.content) : undefined,
        }))
      : undefined;
    if (
      !body ||
      typeof body.model !== 'string' ||
      !messages?.length ||
      messages.some((m) => !m.role || m.content === undefined)
    ) {
      sendJson(
        res,
        400,
        errorBody('model and messages[{role,content}] are required', 'invalid_request_error', null),
      );
      return true;
    }
    const request: AiRequest = { model: body.model, messages: messages as AiRequest['messages'] };
    this.records.push({ ...request, authorization: auth, at: Date.now() });
    if (this.delayMs > 0) await delay(this.delayMs);
    if (this.failures && this.failures.left > 0) {
      const { status } = this.failures;
      if (--this.failures.left === 0) this.failures = null;
      const type =
        status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
      sendJson(res, status, errorBody(`simulated failure ${status}`, type, null));
      return true;
    }
    let answer: string;
    try {
      answer = this.script.length
        ? (this.script.shift() as string)
        : this.handler
          ? await this.handler(request)
          : defaultAnswer(request);
    } catch (err) {
      sendJson(
        res,
        500,
        errorBody(err instanceof Error ? err.message : 'handler failed', 'server_error', null),
      );
      return true;
    }
    if (res.destroyed) return true; // the client gave up (timeout)
    const id = `chatcmpl-${hex(12)}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = request.messages.reduce((n, m) => n + Math.ceil(m.content.length / 2), 0);
    const completionTokens = Math.ceil(answer.length / 2);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (
        delta: Record<string, unknown>,
        finish: string | null,
        extra: Record<string, unknown> = {},
      ) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: request.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }, null));
      for (const piece of answer.match(/[\s\S]{1,8}/g) ?? []) res.write(chunk({ content: piece }, null));
      res.write(chunk({}, 'stop', { usage }));
      res.end('data: [DONE]\n\n');
      return true;
    }
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
      usage,
    });
    return true;
  }
}
