// The framed page `/w/{pk}`: Kithost's own document, framed only by the widget's allowed
// origins (`frame-ancestors`). It runs ChatKit and talks to the loader in the embedding
// page by postMessage: sent to that page's origin only, received from it only.
import { type Chat, startChat } from './chat';
import { batcher } from './events';
import { randomId } from './net';
import type { Emit, PublicConfig, ToFrame, ToLoader, Visitor, Wire } from './types';
import { NOTICE_CSS, notice } from './ui';

type FrameSetup = { pk: string; config: PublicConfig; domainKey: string; cdn: string; timeoutMs: number };

const setup = JSON.parse(document.getElementById('kithost-setup')!.textContent!) as FrameSetup;
const box = document.getElementById('kithost-chat')!;
const embedder = new URLSearchParams(location.hash.slice(1)).get('o');
const ancestors = location.ancestorOrigins as DOMStringList | undefined;
const style = document.createElement('style');
style.textContent =
  'html,body{margin:0;height:100%}body{display:flex}#kithost-chat{flex:1;display:flex;min-width:0}openai-chatkit{display:block;width:100%;height:100%}' +
  NOTICE_CSS;
document.head.append(style);

if (!embedder || parent === window || (ancestors && ancestors[0] !== embedder)) {
  notice(box, 'This chat opens from the website that embeds it.');
} else {
  let user: string | null = null;
  let chat: Chat | undefined;
  let visitor: Visitor;
  const events = batcher(`/v1/embed/${setup.pk}/events`, () => user);
  const post = (message: ToLoader): void => parent.postMessage({ kithost: setup.pk, ...message } satisfies Wire<ToLoader>, embedder);
  const emit: Emit = (name, data = {}) => {
    events.add(name, data);
    post({ type: 'event', name, data });
  };
  /** Client tool calls handed to the loader, by call id, until it answers. */
  const tools = new Map<string, [(result: unknown) => void, (error: Error) => void]>();
  addEventListener('message', (event: MessageEvent<Wire<ToFrame> | null>) => {
    const m = event.data;
    if (event.origin !== embedder || event.source !== parent || m?.kithost !== setup.pk) return;
    if (m.type === 'init') {
      visitor = m.visitor;
      chat = startChat(box, {
        ...setup,
        api: location.origin,
        // Equal to ancestorOrigins[0] where the browser has it (checked above), and the
        // origin of the parent whose init this is: the mint refuses a widget's removed origin.
        embedder,
        visitor,
        emit,
        keep: (endUser, thread) => {
          user = endUser;
          post({ type: 'keep', user: endUser, thread });
        },
        tool: (name, params) =>
          new Promise((resolve, reject) => {
            const id = randomId(16);
            tools.set(id, [resolve, reject]);
            post({ type: 'tool', id, name, params });
          }),
      });
    } else if (m.type === 'visitor') {
      Object.assign(visitor, m.visitor);
      chat?.update(m.restart);
    } else if (m.type === 'tool') {
      const [resolve, reject] = tools.get(m.id) ?? [];
      tools.delete(m.id);
      if ('error' in m) reject?.(new Error(String(m.error)));
      else resolve?.(m.result);
    } else if (m.type === 'send') chat?.send(m.text);
    else if (m.type === 'focus') chat?.focus();
  });
  addEventListener('keydown', (event) => event.key === 'Escape' && post({ type: 'close' }));
  post({ type: 'hello' });
}
