// A stand-in for OpenAI's `<openai-chatkit>` (the CDN is unreachable in tests), written
// against @openai/chatkit's types. It records every `setOptions` and method call and, on
// command from a test, dispatches ChatKit's documented events or uses the options' `api`
// and `widgets.onAction` as ChatKit would.
import type { ChatKitEvents, ChatKitOptions, OpenAIChatKit } from '@openai/chatkit';

type Call = { method: string; args: unknown };
/** The parts of ChatKit's stream events the stand-in reads. */
type StreamEvent = {
  type: string;
  thread?: { id: string };
  update?: { type: string; delta?: string };
  item?: { type: string; status?: string; name?: string; arguments?: Record<string, unknown> };
};

const calls: Call[] = [];
let last: StandIn | undefined;

class StandIn extends HTMLElement implements OpenAIChatKit {
  options: ChatKitOptions | undefined;

  record(method: string, args: unknown): Promise<void> {
    calls.push({ method, args: JSON.parse(JSON.stringify(args ?? null)) });
    return Promise.resolve();
  }

  setOptions(options: ChatKitOptions): void {
    const first = !this.options;
    this.options = options;
    last = this;
    void this.record('setOptions', options);
    const start = options.startScreen;
    this.innerHTML = '';
    const main = document.createElement('div');
    main.style.cssText = 'height:100%;display:flex;flex-direction:column;justify-content:center;align-items:center;font:16px system-ui;gap:12px';
    const greeting = document.createElement('h2');
    greeting.textContent = start?.greeting ?? 'What can I help with today?';
    main.append(greeting);
    for (const prompt of start?.prompts ?? []) {
      const button = document.createElement('button');
      button.textContent = prompt.label;
      main.append(button);
    }
    this.append(main);
    if (first) queueMicrotask(() => this.emit('chatkit.ready', undefined));
  }

  emit<K extends keyof ChatKitEvents>(name: K, detail: ChatKitEvents[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  focusComposer = (): Promise<void> => this.record('focusComposer', null);
  setThreadId = (threadId: string | null): Promise<void> => this.record('setThreadId', threadId);
  sendCustomAction: OpenAIChatKit['sendCustomAction'] = (action, itemId) => this.record('sendCustomAction', { action, itemId });
  sendUserMessage: OpenAIChatKit['sendUserMessage'] = (params) => this.record('sendUserMessage', params);
  setComposerValue: OpenAIChatKit['setComposerValue'] = (params) => this.record('setComposerValue', params);
  showHistory = (): Promise<void> => this.record('showHistory', null);
  hideHistory = (): Promise<void> => this.record('hideHistory', null);
  fetchUpdates = (): Promise<void> => this.record('fetchUpdates', null);
}

customElements.define('openai-chatkit', StandIn);

const current = (): StandIn => {
  if (!last) throw new Error('setOptions has not been called');
  return last;
};

/** What tests drive: `window.chatkit.*` in the document that hosts the element. */
Object.assign(window, {
  chatkit: {
    calls,
    emit: (name: keyof ChatKitEvents, detail: unknown) => current().emit(name, detail as never),
    /** A ChatKit request through the custom api's `fetch`; resolves to the status. */
    request: async (body: unknown): Promise<number> => {
      const api = current().options!.api;
      if (!('url' in api)) throw new Error('not a custom api');
      const response = await (api.fetch ?? fetch)(api.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return response.status;
    },
    /** A new thread with `text` through the ChatKit endpoint, as ChatKit's composer sends
     * it; the streamed reply is shown in the element and returned. A client tool call the
     * reply ends with goes to `onClientTool` (recorded as a `clientTool` call with its
     * result), and its result back with `threads.add_client_tool_output`, as ChatKit does;
     * the reply is then the text of all of those responses. */
    converse: async (text: string): Promise<string> => {
      const options = current().options!;
      const api = options.api;
      if (!('url' in api)) throw new Error('not a custom api');
      const input = { content: [{ type: 'input_text', text }], attachments: [], inference_options: {} };
      let request: unknown = { type: 'threads.create', params: { input } };
      let thread: string | undefined;
      let reply = '';
      while (request) {
        const response = await (api.fetch ?? fetch)(api.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(request),
        });
        request = undefined;
        for (const line of (await response.text()).split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const event = JSON.parse(line.slice(6)) as StreamEvent;
          if (event.type === 'thread.created') thread = event.thread?.id;
          if (event.type === 'thread.item.updated' && event.update?.type === 'assistant_message.content_part.text_delta') {
            reply += event.update.delta ?? '';
          }
          const item = event.item;
          if (event.type === 'thread.item.done' && item?.type === 'client_tool_call' && item.status === 'pending') {
            const call = { name: item.name!, params: item.arguments ?? {} };
            const result = await options.onClientTool!(call);
            void current().record('clientTool', { ...call, result });
            request = { type: 'threads.add_client_tool_output', params: { thread_id: thread, result } };
          }
        }
      }
      const shown = document.createElement('p');
      shown.className = 'standin-reply';
      shown.textContent = reply;
      current().append(shown);
      return reply;
    },
    clientSecret: (currentSecret: string | null): Promise<string> => {
      const api = current().options!.api;
      if (!('getClientSecret' in api)) throw new Error('not a hosted api');
      return api.getClientSecret(currentSecret);
    },
    action: (type: string, payload: Record<string, unknown>, itemId: string): Promise<void> =>
      current().options!.widgets!.onAction!({ type, payload }, { id: itemId, widget: { type: 'Card', children: [] } }),
  },
});
