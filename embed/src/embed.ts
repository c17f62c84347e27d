// The loader: `<script async src="https://HOST/embed/pk_….js">`, or the older
// `<script async src="https://HOST/embed.js" data-widget="pk_…">`.
// Installs `window.kithost(command, …args)`, replays the inline stub's queue, and mounts
// each widget of the page: a launcher and a panel, or an inline container (`data-container`),
// holding Kithost's frame (`/w/{pk}`) or, for the direct placement, ChatKit itself (its code,
// `/w/direct.{hash}.js`, loads only then).
//
// One round trip sooner: `/embed/{pk}.js` is this script after a line that marks its own tag
// with the widget's key and a preset (`types.Preset`): the published launcher's look, what
// every visitor of an allowed page sees anyway, and nothing else. The button is drawn from
// it at once, while the config (`GET /v1/embed/{pk}/config`) is fetched as before. A script
// tag sends no dependable `Origin`, so the preset cannot be refused to a foreign page, and
// that is why it holds nothing more. The config stays fail-closed on `Origin`: everything the
// chat needs (ChatKit's options, actions, domain key) comes with it, the button acts only
// once it has arrived, and a refused config takes the button away again (drawn, then gone,
// on a page the widget does not allow). Sessions and the frame (`frame-ancestors`) check the
// origin on their own.
import type { Chat, startChat } from './chat';
import { batcher } from './events';
import { base64url, call, randomId } from './net';
import type { EmbedConfig, Emit, Launcher, Preset, RunTool, ToFrame, ToLoader, ToolContext, Visitor, Wire } from './types';
import { NOTICE_CSS, notice, UNAVAILABLE } from './ui';

type Listener = (data: Record<string, unknown>, widget: string) => void;
/** A page's client tool: `kithost('on', 'tool:NAME', fn)`, sync or async. */
type ToolHandler = (params: Record<string, unknown>, context: ToolContext) => unknown;
type Command = (name: string, args: unknown[]) => void;
type Kithost = ((...args: unknown[]) => void) & {
  q?: ArrayLike<unknown>[];
  scan?: () => void;
  /** Set by `direct.ts` once loaded. */
  chat?: typeof startChat;
};
type WidgetScript = HTMLScriptElement & { kithostPreset?: Preset };

/** The direct placement's script, named by the build. */
declare const __DIRECT__: string;

declare global {
  interface Window {
    kithost?: Kithost;
  }
}

const SCRIPT_TIMEOUT_MS = 15_000;
const HELLO_TIMEOUT_MS = 10_000;
const MAX_CONTEXT = 4096;
/** Event names → the names `kithost('on', …)` listens to. */
const PUBLIC_EVENTS: Record<string, string> = {
  'chatkit.ready': 'ready',
  'widget.opened': 'open',
  'widget.closed': 'close',
  'chatkit.response.start': 'response.start',
  'chatkit.response.end': 'response.end',
  'chatkit.thread.change': 'thread.change',
  'client.error': 'error',
};
/** Commands that run before the widget is mounted; the others wait for it. */
const EARLY = ['load', 'on', 'off', 'identify', 'setContext', 'shutdown'];
const CSS =
  '.kithost-launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;border:0;border-radius:999px;padding:12px 20px;font:600 15px/1.2 system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}' +
  '.kithost-launcher:focus-visible{outline:3px solid #2563eb;outline-offset:3px}' +
  '.kithost-panel{position:fixed;bottom:80px;right:20px;z-index:2147483000;width:min(400px,calc(100vw - 40px));height:min(640px,calc(100vh - 110px));border-radius:12px;overflow:hidden;background:#fff;box-shadow:0 8px 30px rgba(0,0,0,.3);display:flex}' +
  '.kithost-left{left:20px;right:auto}.kithost-panel[hidden]{display:none}.kithost-inline{display:flex}' +
  '.kithost-panel>iframe,.kithost-inline>iframe,.kithost-panel>openai-chatkit,.kithost-inline>openai-chatkit{border:0;width:100%;height:100%;display:block}' +
  '@media (prefers-reduced-motion:no-preference){.kithost-panel{animation:kithost-in .2s ease-out}}@keyframes kithost-in{from{opacity:0;transform:translateY(8px)}}' +
  NOTICE_CSS;

const widgets = new Map<string, Command>();
let directCode: Promise<typeof startChat> | undefined;

/** The direct placement's code, loaded once per page (again after a failure). */
const loadDirect = (api: string): Promise<typeof startChat> =>
  (directCode ||= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = `${api}/w/${__DIRECT__}`;
    script.onload = () => resolve(window.kithost!.chat!);
    script.onerror = () => {
      directCode = undefined;
      script.remove();
      reject();
    };
    document.head.append(script);
  }));

const element = <K extends keyof HTMLElementTagNameMap>(tag: K, className: string): HTMLElementTagNameMap[K] => {
  const el = document.createElement(tag);
  el.className = className;
  return el;
};

function widget(script: WidgetScript, pk: string): Command {
  const api = new URL(script.src).origin;
  const preset = script.kithostPreset;
  const storageKey = `kithost:${pk}`;
  const listeners: Record<string, Set<Listener>> = {};
  const deferred: [string, unknown[]][] = [];
  let stored: { d?: string; t?: Visitor['thread'] } = {};
  try {
    stored = JSON.parse(localStorage.getItem(storageKey) ?? '{}');
  } catch {}
  const visitor: Visitor = {
    device: stored.d ?? `anon_${randomId(22)}`,
    identity: null,
    context: {},
    thread: stored.t ?? null,
  };
  const save = (): void => {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ d: visitor.device, t: visitor.thread }));
    } catch {}
  };
  save();

  let user: string | null = null;
  let loading: Promise<void> | undefined;
  let config: EmbedConfig | undefined;
  let box: HTMLElement | undefined;
  let launcher: HTMLButtonElement | undefined;
  let chat: Chat | undefined;
  let isOpen = false;

  const events = batcher(`${api}/v1/embed/${pk}/events`, () => user);
  const relay = (name: string, data: Record<string, unknown>): void => {
    for (const listener of listeners[PUBLIC_EVENTS[name] ?? ''] ?? [])
      try {
        listener(data, pk);
      } catch (error) {
        console.error(error);
      }
  };
  const emit: Emit = (name, data = {}) => {
    events.add(name, data);
    relay(name, data);
  };
  const fail = (kind: string, message: string, hint: string): void => {
    console.error(`Kithost widget ${pk}: ${message}. ${hint}`);
    emit('client.error', { kind, message, hint });
  };

  /** The page's handler of a client tool, with the end user's context (the first registered). */
  const tool: RunTool = async (name, params) => {
    const [handler] = listeners[`tool:${name}`] ?? [];
    if (!handler) throw Error(`no handler (kithost('on', 'tool:${name}', fn))`);
    return (handler as unknown as ToolHandler)(params, { widget: pk, user, thread: visitor.thread?.id ?? null, context: visitor.context });
  };

  const keep = (endUser: string, thread: string | null): void => {
    user = endUser;
    visitor.thread = thread ? { user: endUser, id: thread } : null;
    save();
  };

  /** Kithost's frame in `into`, driven by messages; posts wait for the frame's hello. */
  const framed = (into: HTMLElement, cfg: EmbedConfig): Chat => {
    const frame = element('iframe', '');
    let ready = false;
    let outbox: ToFrame[] = [];
    const post = (message: ToFrame): void => {
      if (ready) frame.contentWindow?.postMessage({ kithost: pk, ...message } satisfies Wire<ToFrame>, api);
      else outbox.push(message);
    };
    const start = (): void => {
      frame.src = `${api}/w/${pk}#o=${encodeURIComponent(location.origin)}`;
      frame.title = cfg.config.chatkit.frameTitle ?? cfg.config.launcher.label;
      frame.allow = 'clipboard-write; microphone';
      into.replaceChildren(frame);
      setTimeout(() => {
        if (ready) return;
        fail(
          'frame_blocked',
          `${api}/w/${pk} did not answer`,
          "Check the page's Content-Security-Policy (frame-src) and Cross-Origin-Embedder-Policy, and the widget's allowed origins.",
        );
        notice(into, UNAVAILABLE, start);
      }, HELLO_TIMEOUT_MS);
    };
    addEventListener('message', (event: MessageEvent<Wire<ToLoader> | null>) => {
      const m = event.data;
      if (event.origin !== api || event.source !== frame.contentWindow || m?.kithost !== pk) return;
      if (m.type === 'hello') {
        ready = true;
        post({ type: 'init', visitor });
        outbox.forEach(post);
        outbox = [];
      } else if (m.type === 'event') relay(m.name, m.data);
      else if (m.type === 'keep') keep(m.user, m.thread);
      else if (m.type === 'tool')
        tool(m.name, m.params)
          .then((result) => post({ type: 'tool', id: m.id, result }))
          .catch((error) => post({ type: 'tool', id: m.id, error: String(error?.message ?? error) }));
      else if (m.type === 'close') close(true);
    });
    start();
    return {
      send: (text) => post({ type: 'send', text }),
      focus: () => {
        frame.focus();
        post({ type: 'focus' });
      },
      update: (restart) => post({ type: 'visitor', visitor, restart }),
    };
  };

  /** ChatKit in `into`, once the direct placement's code has loaded. */
  const direct = (into: HTMLElement, cfg: EmbedConfig): Chat => {
    if (cfg.config.mode === 'self_hosted' && !cfg.domain_key)
      fail('domain_key_missing', `no domain key for ${location.origin}`, "Add OpenAI's domain key for this origin to the widget's allowed origin.");
    notice(into, 'Loading chat…');
    const started = loadDirect(api).then(
      (start) =>
        start(into, {
          pk,
          api,
          config: cfg.config,
          domainKey: cfg.domain_key ?? '',
          cdn: cfg.chatkit_script_url,
          timeoutMs: SCRIPT_TIMEOUT_MS,
          visitor,
          emit,
          keep,
          tool,
        }),
      () => {
        fail('script_blocked', `${api}/w/${__DIRECT__} did not load`, "Allow Kithost in the page's Content-Security-Policy (script-src).");
        notice(into, UNAVAILABLE, () => (chat = direct(into, cfg)));
      },
    );
    return {
      send: (text) => void started.then((c) => c?.send(text)),
      focus: () => void started.then((c) => c?.focus()),
      update: (restart) => void started.then((c) => c?.update(restart)),
    };
  };

  const ensureChat = (): Chat => (chat ||= (config!.config.placement === 'framed' ? framed : direct)(box!, config!));

  /** Opens the panel; `focus` moves the visitor into the chat (not when opening on load). */
  const open = (focus = true): void => {
    const chat = ensureChat();
    if (launcher && !isOpen) {
      isOpen = true;
      box!.hidden = false;
      launcher.setAttribute('aria-expanded', 'true');
      emit('widget.opened');
    }
    if (focus) chat.focus();
  };
  const close = (returnFocus: boolean): void => {
    if (!launcher || !isOpen) return;
    isOpen = false;
    box!.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    if (returnFocus) launcher.focus();
    emit('widget.closed');
  };

  /** The launcher and its panel, or the inline container; the chat comes with the config. */
  const draw = (look: Launcher): void => {
    if (box) return;
    if (!document.getElementById('kithost-css')) {
      const style = element('style', '');
      style.id = 'kithost-css';
      style.textContent = CSS;
      document.head.append(style);
    }
    const container = script.dataset.container ? document.querySelector<HTMLElement>(script.dataset.container) : null;
    if (container) {
      box = container;
      box.classList.add('kithost-inline');
    } else {
      const side = look.position === 'bottom-left' ? ' kithost-left' : '';
      box = element('div', `kithost-panel${side}`);
      box.id = `kithost-panel-${pk}`;
      box.hidden = true;
      box.setAttribute('role', 'dialog');
      box.setAttribute('aria-label', look.label);
      box.addEventListener('keydown', (event) => event.key === 'Escape' && close(true));
      launcher = element('button', `kithost-launcher${side}`);
      launcher.type = 'button';
      launcher.textContent = look.label;
      launcher.style.background = look.background;
      launcher.style.color = look.foreground;
      launcher.setAttribute('aria-expanded', 'false');
      launcher.setAttribute('aria-controls', box.id);
      launcher.addEventListener('click', () => run('toggle', []));
      launcher.addEventListener('keydown', (event) => event.key === 'Escape' && close(true));
      document.body.append(box, launcher);
    }
  };

  /** The config has arrived: the chat may start, deferred commands run. */
  const mount = (cfg: EmbedConfig): void => {
    const { launcher: look } = cfg.config;
    config = cfg;
    emit('loader.loaded', { version: cfg.version, placement: cfg.config.placement });
    draw(look);
    if (!launcher) ensureChat();
    else {
      emit('launcher.shown');
      if (look.prefetch) (window.requestIdleCallback ?? setTimeout)(ensureChat);
      if (look.open_on_load || script.dataset.open === 'true') open(false);
    }
    for (const [name, args] of deferred.splice(0)) run(name, args);
  };

  /** No chat for this page: the preset's button goes again, and the failure is reported. */
  const refuse = (kind: string, message: string, hint: string): void => {
    if (launcher) {
      box!.remove();
      launcher.remove();
      box = launcher = undefined;
    }
    fail(kind, message, hint);
  };

  const load = (): Promise<void> =>
    (loading ||= (async () => {
      if (preset) {
        draw(preset.launcher);
        if (preset.placement === 'direct') loadDirect(api).catch(() => undefined);
      }
      const url = `${api}/v1/embed/${pk}/config`;
      let response: Response;
      try {
        response = await call(url);
      } catch {
        // CORS hides a refusal: a no-cors request tells a refusal from an unreachable host.
        const reachable = await fetch(url, { mode: 'no-cors' }).then(
          () => true,
          () => false,
        );
        events.beaconOnly();
        return reachable
          ? refuse(
              'config_refused',
              `Kithost refused this widget for ${location.origin}`,
              "Publish the widget and add this page's origin to its allowed origins.",
            )
          : refuse('network', `${api} could not be reached`, 'Check that Kithost is reachable from this page.');
      }
      if (!response.ok) return refuse('config_refused', `the configuration answered ${response.status}`, 'Try again later.');
      mount((await response.json()) as EmbedConfig);
    })());

  /** `kithost(name, first, second)`: what each command does. */
  const commands = new Map<string, (first: unknown, second: unknown) => void>([
    ['load', () => void load()],
    ['open', () => open()],
    ['close', () => close(false)],
    ['toggle', () => (isOpen ? close(false) : open())],
    [
      'sendMessage',
      (text) => {
        open();
        chat?.send(String(text));
      },
    ],
    [
      'identify',
      (token) => {
        visitor.identity = String(token);
        chat?.update(true);
      },
    ],
    [
      'setContext',
      (context) => {
        if (base64url(context).length > MAX_CONTEXT) return console.error(`Kithost: context over ${MAX_CONTEXT} bytes`);
        visitor.context = context as Visitor['context'];
        chat?.update(false);
      },
    ],
    [
      'on',
      (event, fn) => {
        listeners[String(event)] ??= new Set();
        listeners[String(event)]!.add(fn as Listener);
      },
    ],
    ['off', (event, fn) => void listeners[String(event)]?.delete(fn as Listener)],
    [
      'shutdown',
      () => {
        Object.assign(visitor, { device: `anon_${randomId(22)}`, identity: null, thread: null });
        user = null;
        save();
        close(false);
        chat?.update(true);
      },
    ],
  ]);
  const run: Command = (name, args) => {
    if (!config && !EARLY.includes(name)) return void deferred.push([name, args]);
    const command = commands.get(name);
    if (command) command(args[0], args[1]);
    else console.error(`Kithost: unknown command ${name}`);
  };

  if (script.dataset.autoload !== 'false') void load();
  return run;
}

/** Mounts every widget script of the page not seen yet (a second inclusion only adds). */
function scan(): void {
  for (const script of document.querySelectorAll<WidgetScript>('script[data-widget][src]')) {
    const pk = script.dataset.widget!;
    if (!widgets.has(pk)) widgets.set(pk, widget(script, pk));
  }
}

/** `kithost('open')` acts on every widget; `kithost('pk_…:open')` on that one. */
function dispatch(args: ArrayLike<unknown>): void {
  const [command, ...rest] = Array.from(args);
  const [target, name] = String(command).includes(':') ? String(command).split(':') : [null, String(command)];
  for (const [pk, run] of widgets) if (!target || target === pk) run(name!, rest);
}

const existing = window.kithost;
if (existing?.scan) existing.scan();
else {
  const kithost: Kithost = (...args) => dispatch(args);
  kithost.scan = scan;
  window.kithost = kithost;
  scan();
  for (const args of existing?.q ?? []) dispatch(args);
}
