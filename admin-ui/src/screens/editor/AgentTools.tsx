// The agent's function tools (an endpoint of the tenant's, a function of the host page, an
// MCP server), with the secrets they use (write-only), and its handoffs to further agents.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { api, ApiError, unwrap, type Schemas } from '../../api/client';
import { useTenant } from '../../tenant';
import { Field, ProblemAlert, SecretOnce } from '../../ui';
import { asObject, Check, EFFORTS, Group, JsonText, Lines, NumberInput, Select, Text, useDraft, type Json, type JsonObject } from './draft';
import { newToolSecretKey, widgetKey } from './keys';

// widgets.redaction: what reads show of a credential in a tool's URL.
const HIDDEN_HINT = 'A part that looks like a credential (a token in the query or path) shows as *****: left so, the URL is kept as saved.';

type Widget = Schemas['Widget'];
type Kind = 'http' | 'client' | 'mcp';

const KINDS: [Kind, string][] = [
  ['http', 'Your endpoint (HTTP)'],
  ['client', 'A function of your page'],
  ['mcp', 'An MCP server'],
];
const STARTERS: Record<Kind, JsonObject> = {
  http: { type: 'http', name: 'lookup', description: 'What it does, for the model.', url: 'https://' },
  client: { type: 'client', name: 'page_action', description: 'What it does, for the model.' },
  mcp: { type: 'mcp', url: 'https://', allowed_tools: [] },
};
const isKind = (type: Json | undefined): type is Kind => KINDS.some(([kind]) => kind === type);

function useTools(): JsonObject[] {
  return ((useDraft().value('agent.tools') as Json[] | undefined) ?? []).map(asObject);
}

function freeId(taken: Json[], prefix: string): string {
  let n = 1;
  while (taken.includes(`${prefix}-${n}`)) n += 1;
  return `${prefix}-${n}`;
}

/** A list entry's React key: its place, never a field being edited (a key that changes
 * remounts the entry, and its focused field loses focus). The list's length is part of it, so
 * adding or removing an entry remounts them all rather than lending one's state to another. */
const listKey = (index: number, length: number) => `${index}-of-${length}`;

export function FunctionTools({ widget }: { widget: Widget }) {
  const draft = useDraft();
  const tools = useTools();
  const ids = tools.map((t) => t.id ?? null);
  const add = (kind: Kind) => draft.set('agent.tools', [...tools, { ...STARTERS[kind], id: freeId(ids, kind) }]);
  return (
    <Group title="Function tools">
      <p className="hint">
        The model calls these while it answers; the visitor sees the tool's label meanwhile. Page functions run in the visitor's browser:
        register them with <code>kithost('on', 'tool:NAME', fn)</code>.
      </p>
      {tools.map((tool, index) =>
        isKind(tool.type) ? (
          <ToolCard
            key={listKey(index, tools.length)}
            kind={tool.type}
            index={index}
            toolId={String(tool.id)}
            widget={widget}
            onRemove={() => draft.set('agent.tools', tools.filter((_, i) => i !== index))}
          />
        ) : null,
      )}
      <div className="row">
        {KINDS.map(([kind, label]) => (
          <button key={kind} type="button" className="secondary" disabled={draft.disabled} onClick={() => add(kind)}>
            Add: {label}
          </button>
        ))}
      </div>
      {tools.some((t) => t.type === 'http') && <ToolSecret widget={widget} />}
    </Group>
  );
}

function ToolCard({ kind, index, toolId, widget, onRemove }: { kind: Kind; index: number; toolId: string; widget: Widget; onRemove: () => void }) {
  const draft = useDraft();
  const at = (field: string) => `agent.tools.${index}.${field}`;
  const label = KINDS.find(([k]) => k === kind)?.[1] ?? kind;
  return (
    <fieldset className="group" aria-label={`${label}: ${toolId}`}>
      <legend>
        {label}: {toolId}
      </legend>
      <Text path={at('id')} label="Id" hint="Unique in the widget; handoff agents pick tools by it." />
      <Text path={at('label')} label="What the visitor sees while it runs" placeholder="Working on it…" />
      {kind !== 'mcp' && (
        <>
          <Text path={at('name')} label="Function name (as the model sees it)" />
          <Text path={at('description')} label="What it does (the model reads this)" multiline />
          <JsonText path={at('parameters')} label="Arguments (JSON Schema of an object)" />
        </>
      )}
      {kind === 'http' && (
        <>
          <Text path={at('url')} label="URL" hint={`HTTPS. Kithost signs each call with the widget's tool secret (below). ${HIDDEN_HINT}`} />
          <Select path={at('method')} label="Method" options={['POST', 'PUT', 'PATCH']} />
          <NumberInput path={at('max_response_bytes')} label="Largest answer (bytes)" min={1} max={1048576} />
        </>
      )}
      {kind === 'mcp' && (
        <>
          <Text path={at('url')} label="Server URL (Streamable HTTP)" hint={HIDDEN_HINT} />
          <Lines path={at('allowed_tools')} label="Tools the model may call" hint="One name per line: no other tool of the server is offered." />
          <Text path={at('secret_header')} label="Header that carries the secret" placeholder="Authorization" />
        </>
      )}
      <NumberInput path={at('timeout_seconds')} label="Timeout (seconds)" min={0.1} max={kind === 'client' ? 120 : 60} step={0.5} />
      {kind === 'mcp' && <McpServer widget={widget} toolId={toolId} />}
      <button type="button" className="danger" disabled={draft.disabled} onClick={onRemove}>
        Remove this tool
      </button>
    </fieldset>
  );
}

/** The secret that signs every call of the widget's HTTP tools: shown once, rotatable. */
function ToolSecret({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const made = newToolSecretKey(tenant.slug, widget.id);
  // Put there by the save that made it, or by a rotation: nothing fetches it.
  const secret = useQuery({ queryKey: made, queryFn: () => client.getQueryData<string>(made) ?? null, enabled: false }).data ?? null;
  const button = useRef<HTMLButtonElement>(null);
  const done = () => {
    client.removeQueries({ queryKey: made });
    button.current?.focus();
  };
  const rotate = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/tenants/{tenant}/widgets/{id}/tool-secret', { params: { path: { tenant: tenant.slug, id: widget.id } } })),
    onSuccess: (answer) => {
      client.setQueryData(made, answer.tool_secret);
      void client.invalidateQueries({ queryKey: widgetKey(tenant.slug, widget.id) });
    },
  });
  return (
    <div className="card">
      <h2 className="h3">Tool secret</h2>
      <p className="hint">
        Your endpoints check the <code>Kithost-Signature</code> header with it. {widget.has_tool_secret ? 'A secret is set (it is never shown again).' : 'Saving the first HTTP tool makes one.'}
      </p>
      {secret && <SecretOnce title="The new tool secret." secret={secret} onDone={done} />}
      <button ref={button} type="button" className="secondary" disabled={!tenant.can('widgets:write') || rotate.isPending} onClick={() => rotate.mutate()}>
        {widget.has_tool_secret ? 'Rotate the tool secret' : 'Generate a tool secret'}
      </button>
      <ProblemAlert error={rotate.error} />
    </div>
  );
}

/** An MCP server's secret (write-only) and the tools it offers, as saved in the draft. */
function McpServer({ widget, toolId }: { widget: Widget; toolId: string }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [value, setValue] = useState('');
  const canWrite = tenant.can('widgets:write');
  const path = { tenant: tenant.slug, id: widget.id };
  const secretsKey = ['mcp-secrets', tenant.slug, widget.id];
  const secrets = useQuery({
    queryKey: secretsKey,
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/widgets/{id}/mcp-secrets', { params: { path } })),
  });
  const set = useMutation({
    mutationFn: () =>
      unwrap(api.PUT('/api/v1/tenants/{tenant}/widgets/{id}/mcp-secrets/{tool_id}', { params: { path: { ...path, tool_id: toolId } }, body: { value } })),
    onSuccess: () => {
      setValue('');
      void client.invalidateQueries({ queryKey: secretsKey });
    },
  });
  const discover = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tenants/{tenant}/widgets/{id}/tools/{tool_id}/discover', { params: { path: { ...path, tool_id: toolId } } })),
  });
  const current = secrets.data?.find((s) => s.tool_id === toolId);
  const error = set.error instanceof ApiError ? set.error : null;
  return (
    <div className="card">
      <Field label="Secret" hint={current ? `Set for ${current.origin} (never shown). Enter a new one to replace it.` : 'Sent in the header above, to this server only. Save the draft first.'} error={error?.fieldError('value')}>
        {(props) => <input {...props} type="password" autoComplete="off" value={value} disabled={!canWrite} onChange={(e) => setValue(e.target.value)} />}
      </Field>
      <div className="row">
        <button type="button" className="secondary" disabled={!canWrite || !value || set.isPending} onClick={() => set.mutate()}>
          Save the secret
        </button>
        <button type="button" className="secondary" disabled={!canWrite || discover.isPending} onClick={() => discover.mutate()}>
          {discover.isPending ? 'Asking the server…' : "List the server's tools"}
        </button>
      </div>
      {set.error && !error?.fieldError('value') && <ProblemAlert error={set.error} />}
      <ProblemAlert error={discover.error} />
      {discover.data && (
        <div role="status">
          <ul>
            {discover.data.tools.map((tool) => (
              <li key={tool.name}>
                <code>{tool.name}</code> {tool.allowed ? '(allowed)' : <span className="muted">(not offered)</span>} — {tool.description}
              </li>
            ))}
          </ul>
          {discover.data.missing_tools.length > 0 && (
            <p className="error">The server has no tool named {discover.data.missing_tools.join(', ')}.</p>
          )}
        </div>
      )}
    </div>
  );
}

/** Which of the widget's tools an agent may use, by id; `all` offers "every tool" (unset). */
function ToolPicker({ path, label, all }: { path: string; label: string; all?: boolean }) {
  const draft = useDraft();
  const ids = useTools().map((t) => String(t.id));
  const value = draft.value(path);
  const picked = Array.isArray(value) ? value.map(String) : null;
  const name = path.replaceAll('.', '-');
  return (
    <fieldset className="group">
      <legend>{label}</legend>
      {all && (
        <div className="field check">
          <input id={`${name}-all`} type="checkbox" disabled={draft.disabled} checked={picked === null} onChange={(e) => draft.set(path, e.target.checked ? undefined : [])} />
          <label htmlFor={`${name}-all`}>Every tool of the widget</label>
        </div>
      )}
      {ids.map((id) => (
        <div className="field check" key={id}>
          <input
            id={`${name}-${id}`}
            type="checkbox"
            disabled={draft.disabled || (all === true && picked === null)}
            checked={picked === null ? all === true : picked.includes(id)}
            onChange={(e) => draft.set(path, e.target.checked ? [...(picked ?? []), id] : (picked ?? []).filter((p) => p !== id))}
          />
          <label htmlFor={`${name}-${id}`}>{id}</label>
        </div>
      ))}
      {ids.length === 0 && <p className="muted">The widget has no tools yet.</p>}
      {draft.errorAt(path) && <p className="error">{draft.errorAt(path)}</p>}
    </fieldset>
  );
}

export function Handoffs() {
  const draft = useDraft();
  const members = ((draft.value('agent.handoffs') as Json[] | undefined) ?? []).map(asObject);
  const add = () => {
    const id = freeId(members.map((m) => m.id ?? null), 'agent');
    draft.set('agent.handoffs', [...members, { id, name: `Agent ${members.length + 1}`, instructions: 'You answer questions about…', hand_back: true }]);
  };
  return (
    <Group title="Handoffs">
      <p className="hint">
        Further agents the main agent may hand the conversation to. The visitor sees "Transferred to NAME"; later messages go to the agent that
        answered last.
      </p>
      <Text path="agent.name" label="The main agent's name" placeholder="Assistant" />
      {members.length > 0 && <ToolPicker path="agent.main_tools" label="Tools of the main agent" all />}
      {members.map((member, index) => {
        const at = (field: string) => `agent.handoffs.${index}.${field}`;
        return (
          <fieldset className="group" key={listKey(index, members.length)} aria-label={`Agent ${String(member.name)}`}>
            <legend>{String(member.name)}</legend>
            <Text path={at('id')} label="Id" hint="The model hands over by calling transfer_to_ID." />
            <Text path={at('name')} label="Name (the visitor sees it)" />
            <Text path={at('description')} label="When to hand over (the main agent reads this)" />
            <Text path={at('instructions')} label="Instructions" multiline />
            <Text path={at('model')} label="Model" hint="The main agent's when empty." />
            <NumberInput path={at('temperature')} label="Temperature" min={0} max={2} step={0.1} />
            <NumberInput path={at('max_output_tokens')} label="Most tokens per answer" min={1} max={128000} />
            <Select path={at('reasoning_effort')} label="Reasoning effort" hint="Reasoning models only." options={EFFORTS} />
            <ToolPicker path={at('tools')} label="Its tools" />
            <Check path={at('hand_back')} label="May hand the conversation back to the main agent" />
            <button
              type="button"
              className="danger"
              disabled={draft.disabled}
              onClick={() => draft.set('agent.handoffs', members.filter((_, i) => i !== index))}
            >
              Remove this agent
            </button>
          </fieldset>
        );
      })}
      <button type="button" className="secondary" disabled={draft.disabled} onClick={add}>
        Add an agent
      </button>
    </Group>
  );
}
