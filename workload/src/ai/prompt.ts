import type { ItemInfo, Turn } from '../store/types.js';
import type { ChatTurn } from './client.js';

// Builds the chat-completions messages: system prompt, item context, bargaining limits, the
// last turns of the conversation, then the buyer's message.

export function buildPrompt(o: {
  systemPrompt: string;
  item?: ItemInfo;
  bargainingInstructions?: string;
  history: Turn[];
  message: string;
}): ChatTurn[] {
  const system = [o.systemPrompt];
  if (o.item) {
    system.push(
      `商品信息：标题「${o.item.title}」${o.item.price ? `，价格 ${o.item.price} 元` : ''}` +
        (o.item.description ? `，描述：${o.item.description.slice(0, 1000)}` : ''),
    );
  }
  if (o.bargainingInstructions) system.push(o.bargainingInstructions);
  const turns: ChatTurn[] = o.history.map((t) => ({
    role: t.direction === 'in' ? 'user' : 'assistant',
    content: t.text,
  }));
  // The current message may already be the last logged turn.
  const last = turns.at(-1);
  if (!(last && last.role === 'user' && last.content === o.message))
    turns.push({ role: 'user', content: o.message });
  return [{ role: 'system', content: system.join('\n') }, ...turns];
}
