// Runs ChatKit in an element of the current document: the framed page's, or the tenant's
// page for the direct placement. Mints and refreshes the visitor's session, passes the
// published options, forwards ChatKit's events and maps widget actions.
import type { ChatKitOptions, OpenAIChatKit } from '@openai/chatkit';
import { base64url, loadScript, postJson, sleep } from './net';
import type { Emit, PublicConfig, RunTool, Session, SessionRequest, Visitor } from './types';
import { notice, UNAVAILABLE } from './ui';

export type ChatSetup = {
  pk: string;
  /** Kithost's base URL. */
  api: string;
  /** The framed page's embedder (the origin of the page framing it), sent with every mint. */
  embedder?: string;
  config: PublicConfig;
  domainKey: string;
  cdn: string;
  timeoutMs: number;
  visitor: Visitor;
  emit: Emit;
  /** The session's end user and the thread to keep for them. */
  keep(user: string, thread: string | null): void;
  /** The page's handler of a client tool (`kithost('on', 'tool:NAME', fn)`). */
  tool: RunTool;
};

export type Chat = {
  send(text: string): void;
  focus(): void;
  /** The visitor changed; `restart` when their identity did (a new session, maybe a new user). */
  update(restart: boolean): void;
};

type Failure = { kind: string; message: string; hint: string };

const HINTS: Record<string, string> = {
  origin_not_allowed: "Add this page's origin to the widget's allowed origins.",
  embedder_not_allowed: "Add the origin of the page framing the chat to the widget's allowed origins.",
  identity_required: "Call kithost('identify', token) with a token your backend signed.",
  invalid_identity_token: "Sign identity tokens (HS256) with the widget's identity secret.",
  hosted_workflow_unavailable: 'OpenAI shut Agent Builder down: convert this widget to self-hosted in the dashboard.',
};

const CHATKIT_EVENTS = ['ready', 'error', 'log', 'effect', 'response.start', 'response.end', 'thread.change', 'thread.load.start', 'thread.load.end'];

const credential = (s: Session): string => (s.mode === 'hosted' ? s.client_secret : s.token);

/** `record[key]` when it is the record's own: a key such as `constructor` (an action's
 * type, a tool's name) must not find `Object.prototype`'s member. */
const own = <T>(record: Record<string, T> | undefined, key: string): T | undefined =>
  record && (Object.getOwnPropertyDescriptor(record, key)?.value as T | undefined);

/** How many times a chat request refused 503 `server_busy` is sent in all, at most, and the
 * longest wait between two (seconds) its `Retry-After` may ask for. */
const BUSY_TRIES = 3;
const BUSY_MAX_SECONDS = 10;

/** Whether `response` refuses the request 503 `server_busy`: the API process streams as
 * many answers as it may, and refused this one before writing anything (its body is read
 * from a copy, so that the response stays ChatKit's to read). */
const busy = async (response: Response): Promise<boolean> => {
  try {
    return response.status === 503 && (await response.clone().json()).code === 'server_busy';
  } catch {
    return false; // not JSON: not Kithost's answer
  }
};

/** How long a client tool the config does not name (a newer version's) may take. */
const TOOL_SECONDS = 10;

/** A client tool's result for ChatKit (and the model): the page handler's answer (an object;
 * anything else as `{result}`), or `{error}` when there is no handler, it fails or it does
 * not answer within the tool's timeout — never a chat left waiting. Failures are reported. */
async function clientTool(s: ChatSetup, name: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const seconds = own(s.config.client_tools, name) ?? TOOL_SECONDS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const result = await Promise.race([
      s.tool(name, params),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${seconds} s`)), seconds * 1000);
      }),
    ]);
    return result !== null && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>) : { result: result ?? null };
  } catch (error) {
    const message = `The page's ${name} tool failed: ${error instanceof Error ? error.message : String(error)}`;
    s.emit('client.error', {
      kind: 'client_tool_failed',
      message: message.slice(0, 1000),
      hint: `Register the page's handler with kithost('on', 'tool:${name}', fn); it must answer within ${seconds} s.`,
    });
    return { error: message };
  } finally {
    clearTimeout(timer);
  }
}

export function startChat(box: HTMLElement, s: ChatSetup): Chat {
  let current: Session | undefined;
  let pending: Promise<Session> | undefined;
  let refreshAt = 0;
  let element: Promise<OpenAIChatKit>;

  const fail = (kind: string, message: string, hint: string): Failure => ({ kind, message, hint });

  const mint = async (refresh?: string): Promise<Session> => {
    const v = s.visitor;
    const who = refresh ? { current: refresh } : v.identity ? { identity_token: v.identity } : { device_id: v.device };
    let response: Response;
    try {
      const sent: SessionRequest = { ...who, context: v.context };
      if (s.embedder) sent.embedder = s.embedder;
      response = await postJson(`${s.api}/v1/embed/${s.pk}/session`, sent);
    } catch {
      throw fail('network', `${s.api} could not be reached`, 'Check that Kithost is reachable from this page.');
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      s.emit('session.refused', { status: response.status, code: body.code });
      throw response.status === 429
        ? fail('rate_limited', 'Too many sessions', "Visitors mint sessions faster than the widget's limits allow.")
        : fail('session_refused', `${response.status} ${body.code}: ${body.detail}`, HINTS[body.code] ?? 'See the problem detail.');
    }
    const exp = body.expires_at * 1000;
    refreshAt = exp - Math.min(60_000, (exp - Date.now()) / 2);
    s.emit('session.minted', { mode: body.mode, refresh: !!refresh });
    return body as Session;
  };

  /** The current session, refreshed (with `current`) once due; a refused refresh mints anew. */
  const session = (): Promise<Session> => {
    if (current && Date.now() < refreshAt) return Promise.resolve(current);
    const refresh = current && credential(current);
    pending ||= mint(refresh)
      .catch((error) => (refresh ? mint() : Promise.reject(error)))
      .then((minted) => (current = minted))
      .finally(() => (pending = undefined));
    return pending;
  };

  /** ChatKit's requests, with the session's token and the page context. One refused 503
   * `server_busy` is sent again after its `Retry-After` (at most `BUSY_MAX_SECONDS`, and up
   * to a second more, so that the refused do not all come back at once), `BUSY_TRIES` times
   * in all; any other answer, a stream's among them, is ChatKit's as it comes. */
  const authorizedFetch: typeof fetch = async (input, init) => {
    for (let attempt = 1; ; attempt++) {
      const headers = new Headers(init?.headers);
      headers.set('Authorization', `Bearer ${credential(await session())}`);
      if (Object.keys(s.visitor.context).length) headers.set('X-Kithost-Context', base64url(s.visitor.context));
      const response = await fetch(input, { ...init, headers });
      if (attempt >= BUSY_TRIES || !(await busy(response))) return response;
      await sleep((Math.min(Number(response.headers.get('Retry-After')) || 1, BUSY_MAX_SECONDS) + Math.random()) * 1000);
    }
  };

  const configure = (el: OpenAIChatKit, first: Session): void => {
    const { actions, chatkit, launcher } = s.config;
    const thread = s.visitor.thread;
    const options: ChatKitOptions = {
      frameTitle: launcher.label,
      ...chatkit,
      initialThread: thread?.user === first.end_user ? thread.id : null,
      api:
        first.mode === 'hosted'
          ? {
              getClientSecret: async (secret) => {
                if (secret) refreshAt = 0;
                return credential(await session());
              },
            }
          : { url: first.chatkit_url, domainKey: s.domainKey, fetch: authorizedFetch },
      onClientTool: ({ name, params }) => clientTool(s, name, params),
      widgets: {
        onAction: async (action, item) => {
          const mapped = own(actions, action.type) ?? { kind: 'forward' };
          const fill = (template: string, encode: (value: string) => string): string =>
            template.replace(/\{(\w+)\}/g, (_, key: string) => encode(String(action.payload?.[key] ?? '')));
          if (mapped.kind === 'open_url') open(fill(mapped.url, encodeURIComponent), '_blank', 'noopener');
          else if (mapped.kind === 'send_message') await el.sendUserMessage({ text: fill(mapped.text, String) });
          else if (mapped.kind === 'forward') await el.sendCustomAction(action, item.id);
        },
      },
    };
    el.setOptions(options);
  };

  const start = (): void => {
    current = undefined;
    notice(box, 'Loading chat…');
    element = Promise.all([
      session(),
      loadScript(s.cdn, s.timeoutMs).catch(() => {
        throw fail(
          'script_timeout',
          `ChatKit's script did not load from ${s.cdn} within ${s.timeoutMs / 1000} s`,
          "Allow cdn.platform.openai.com in the page's Content-Security-Policy (script-src, frame-src).",
        );
      }),
    ]).then(([first]) => {
      const el = document.createElement('openai-chatkit');
      for (const name of CHATKIT_EVENTS)
        el.addEventListener(`chatkit.${name}`, (event) => {
          const detail = (event as CustomEvent).detail;
          if (name === 'error')
            return s.emit('client.error', {
              kind: 'chatkit_error',
              message: String(detail?.error?.message ?? detail?.error),
              hint: "See the browser console of the chat's page.",
            });
          if (name === 'thread.change') s.keep(first.end_user, detail.threadId);
          s.emit(`chatkit.${name}`, detail?.threadId !== undefined ? { threadId: detail.threadId } : detail?.name ? { name: detail.name } : {});
        });
      s.keep(first.end_user, s.visitor.thread?.user === first.end_user ? s.visitor.thread.id : null);
      box.replaceChildren(el);
      configure(el, first);
      return el;
    });
    element.catch((failure: Failure) => {
      s.emit('client.error', failure);
      notice(box, UNAVAILABLE, start);
    });
  };

  start();
  return {
    send: (text) => void element.then((el) => el.sendUserMessage({ text })),
    focus: () => void element.then((el) => el.focusComposer()),
    update: (restart) => restart && start(),
  };
}
