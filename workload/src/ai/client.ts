import { z } from 'zod';

// Any OpenAI-compatible chat-completions endpoint (OpenAI, DeepSeek, Qwen/DashScope, Ollama ...).

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export type AiErrorReason = 'timeout' | 'http' | 'invalid' | 'network';

export class AiError extends Error {
  constructor(
    readonly reason: AiErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'AiError';
  }
}

const completion = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1),
});

export interface AiClientOptions {
  baseURL: string;
  model: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

export interface AiClient {
  complete(messages: ChatTurn[]): Promise<string>;
}

export function createAiClient(opts: AiClientOptions): AiClient {
  const url = `${opts.baseURL.replace(/\/+$/, '')}/chat/completions`;
  return {
    async complete(messages) {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
          },
          body: JSON.stringify({ model: opts.model, messages, temperature: 0.4 }),
          signal: AbortSignal.timeout(opts.timeoutMs),
        });
      } catch (err) {
        const e = err as Error;
        if (e.name === 'TimeoutError' || e.name === 'AbortError') {
          throw new AiError('timeout', `AI request timed out after ${opts.timeoutMs} ms`);
        }
        throw new AiError('network', `AI request failed: ${e.message}`);
      }
      if (!res.ok) {
        // The body may echo the request; keep only the status in the error.
        await res.body?.cancel().catch(() => {});
        throw new AiError('http', `AI endpoint answered HTTP ${res.status}`);
      }
      let parsed: z.infer<typeof completion>;
      try {
        parsed = completion.parse(await res.json());
      } catch {
        throw new AiError('invalid', 'AI endpoint answered without choices[0].message.content');
      }
      const text = parsed.choices[0]?.message.content?.trim() ?? '';
      if (!text) throw new AiError('invalid', 'AI endpoint answered an empty message');
      return text;
    },
  };
}
