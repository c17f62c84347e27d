/// <reference path="../node_modules/@openai/chatkit/types/dom-augment.d.ts" />
// The shapes Kithost's API hands the browser (from `api.d.ts`, generated from the OpenAPI
// document: `make embed-client`), and ChatKit's option types they must satisfy.
import type { ChatKitOptions } from '@openai/chatkit';
import type { components } from './api';

type Schemas = components['schemas'];

/** ChatKit options that are data (`WidgetConfig.chatkit`), validated by the API against the
 * JSON Schema generated from these same types. */
export type ChatKitData = Omit<ChatKitOptions, 'api' | 'initialThread' | 'onClientTool' | 'widgets' | 'entities' | 'commands'>;

export type Launcher = {
  position: 'bottom-right' | 'bottom-left';
  label: string;
  icon: string;
  background: string;
  foreground: string;
  open_on_load: boolean;
  prefetch: boolean;
};

export type Action = { kind: 'open_url'; url: string } | { kind: 'send_message'; text: string } | { kind: 'forward' } | { kind: 'ignore' };

/** `WidgetConfig.public()`. */
export type PublicConfig = {
  mode: 'self_hosted' | 'hosted';
  placement: 'framed' | 'direct';
  chatkit: ChatKitData;
  launcher: Launcher;
  actions: Record<string, Action>;
  require_identity: boolean;
  /** The agent's `client` tools (what the page implements): name → timeout in seconds. */
  client_tools: Record<string, number>;
};

/** What `/embed/{pk}.js` hands the loader with itself (`WidgetScript.kithostPreset`): only
 * what the launcher shows every visitor, so that the button draws before the config arrives. */
export type Preset = Pick<PublicConfig, 'launcher' | 'placement'>;

/** `GET /v1/embed/{pk}/config`, whose `config` (`WidgetConfig.public()`, any object to the
 * OpenAPI document) is typed here. */
export type EmbedConfig = Omit<Schemas['EmbedConfig'], 'config'> & { config: PublicConfig };

/** `POST /v1/embed/{pk}/session`: what the loader sends, and what it gets. */
export type SessionRequest = Schemas['VisitorSessionRequest'];
export type Session = Schemas['SelfHostedSession'] | Schemas['HostedSessionOut'];

export type Context = Record<string, unknown>;

/** What the page (the loader) knows about its visitor and hands to the chat. */
export type Visitor = {
  device: string;
  identity: string | null;
  context: Context;
  /** The last thread, and whose it is (an end-user id). */
  thread: { user: string; id: string } | null;
};

/** Emits one event: to the events endpoint and to `kithost('on', …)` listeners. */
export type Emit = (name: string, data?: Record<string, unknown>) => void;

/** What a page's `kithost('on', 'tool:NAME', fn)` handler gets besides the arguments. */
export type ToolContext = {
  widget: string;
  /** The session's end user (`u:…`/`a:…`), and the thread the call comes from. */
  user: string | null;
  thread: string | null;
  /** The page context (`kithost('setContext', …)`). */
  context: Context;
};

/** What the loader posts to Kithost's frame (each message also carries `kithost: pk`). */
export type ToFrame =
  | { type: 'init'; visitor: Visitor }
  | { type: 'visitor'; visitor: Visitor; restart: boolean }
  | { type: 'tool'; id: string; result: unknown }
  | { type: 'tool'; id: string; error: string }
  | { type: 'send'; text: string }
  | { type: 'focus' };

/** What Kithost's frame posts to the loader (each message also carries `kithost: pk`). */
export type ToLoader =
  | { type: 'hello' }
  | { type: 'event'; name: string; data: Record<string, unknown> }
  | { type: 'keep'; user: string; thread: string | null }
  | { type: 'tool'; id: string; name: string; params: Record<string, unknown> }
  | { type: 'close' };

/** A message between loader and frame as it travels: addressed to one widget. */
export type Wire<M> = M & { kithost: string };

/** Runs the page's handler of a client tool: its answer, rejected when there is none or it
 * fails (a chat's document asks the loader's; `chat.ts` adds the timeout). */
export type RunTool = (name: string, params: Record<string, unknown>) => Promise<unknown>;
