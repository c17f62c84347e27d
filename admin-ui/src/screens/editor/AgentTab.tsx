// The agent Kithost runs for a self-hosted widget: model, instructions, endpoint, limits,
// tools; the endpoint's own key (write-only); importing an Agent Builder export.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ifMatch, unwrap, type Schemas } from '../../api/client';
import { useConfirm } from '../../confirm';
import { useTenant } from '../../tenant';
import { Field, ProblemAlert } from '../../ui';
import { FunctionTools, Handoffs } from './AgentTools';
import { asObject, Check, EFFORTS, Group, Lines, NumberInput, Select, Text, useDraft, type Json } from './draft';
import { widgetKey } from './keys';

type Widget = Schemas['Widget'];

function Tools() {
  const tenant = useTenant();
  const draft = useDraft();
  const tools = ((draft.value('agent.tools') as Json[] | undefined) ?? []).map(asObject);
  const bases = useQuery({
    queryKey: ['knowledge-bases', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/knowledge-bases', { params: { path: { tenant: tenant.slug } } })),
    enabled: tenant.can('knowledge:read'),
  });
  const web = tools.find((t) => t.type === 'web_search');
  const files = tools.find((t) => t.type === 'file_search');
  const chosen = new Set(((files?.knowledge_bases as string[] | undefined) ?? []).map(String));
  // Every tool keeps its place in the list; a new one goes last.
  const update = (nextWeb: boolean, nextBases: string[]) => {
    const nextFiles = nextBases.length ? { ...(files ?? { type: 'file_search', id: 'knowledge' }), knowledge_bases: nextBases } : null;
    const kept = tools.flatMap((t) => (t === web ? (nextWeb ? [t] : []) : t === files ? (nextFiles ? [nextFiles] : []) : [t]));
    draft.set('agent.tools', [...kept, ...(nextWeb && !web ? [{ type: 'web_search', id: 'web' }] : []), ...(nextFiles && !files ? [nextFiles] : [])]);
  };
  return (
    <Group title="Tools">
      <div className="field check">
        <input id="tool-web" type="checkbox" disabled={draft.disabled} checked={Boolean(web)} onChange={(e) => update(e.target.checked, [...chosen])} />
        <label htmlFor="tool-web">Web search (OpenAI's hosted tool; Responses API only)</label>
      </div>
      <fieldset className="group">
        <legend>Search these knowledge bases</legend>
        {bases.data?.length ? (
          bases.data.map((base) => (
            <div className="field check" key={base.id}>
              <input
                id={`kb-${base.id}`}
                type="checkbox"
                disabled={draft.disabled}
                checked={chosen.has(base.id)}
                onChange={(e) =>
                  update(Boolean(web), e.target.checked ? [...chosen, base.id] : [...chosen].filter((id) => id !== base.id))
                }
              />
              <label htmlFor={`kb-${base.id}`}>
                {base.name} <span className="muted">({base.documents} documents)</span>
              </label>
            </div>
          ))
        ) : (
          <p className="muted">No knowledge bases yet: add one under Knowledge.</p>
        )}
      </fieldset>
      {draft.errorAt('agent.tools') && <p className="error">{draft.errorAt('agent.tools')}</p>}
    </Group>
  );
}

function ModelKey({ widget }: { widget: Widget }) {
  const draft = useDraft();
  return (
    <Field
      label="API key for this base URL"
      hint={
        (widget.has_model_key ? 'A key is set (it is never shown). Enter a new one to replace it. ' : 'Needed when the agent calls its own base URL. ') +
        'It goes only to the base URL above, saved with the draft: changing that URL needs the key again.'
      }
      error={draft.error?.fieldError('api_key')}
    >
      {(props) => (
        <input {...props} type="password" autoComplete="off" value={draft.modelKey} disabled={draft.disabled} onChange={(e) => draft.setModelKey(e.target.value)} />
      )}
    </Field>
  );
}

type ToolChange = Schemas['ToolChange'];
const TOOL_CHANGES: Record<ToolChange['change'], string> = {
  added: 'added',
  replaced: 'replaced by the export’s',
  unchanged: 'unchanged',
  removed: 'removed (the export no longer has it)',
  kept: 'kept (an export has no such tool)',
};
const SECRET_FATES: Record<NonNullable<ToolChange['secret']>, string> = {
  kept: 'is kept',
  removed: 'is removed with it',
  kept_for_published: 'is kept while the published version uses it',
};

function AgentImport({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const draft = useDraft();
  const confirm = useConfirm();
  const [code, setCode] = useState('');
  // Even a dry run needs edit rights: it answers what the import would write.
  const canWrite = tenant.can('widgets:write');
  const run = useMutation({
    mutationFn: (dryRun: boolean) =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets/{id}/agent-import', {
          params: { path: { tenant: tenant.slug, id: widget.id }, query: { dry_run: dryRun }, header: ifMatch(widget.revision) },
          body: { code },
        }),
      ),
    onSuccess: (result) => {
      if (result.dry_run) return;
      draft.drop();
      void client.invalidateQueries({ queryKey: widgetKey(tenant.slug, widget.id) });
    },
  });
  return (
    <Group title="Import from Agent Builder">
      <p className="hint">
        Paste the Python code Agent Builder exported (Agents SDK). Kithost reads it, never runs it, and builds this draft's agent from it.
      </p>
      <Field label="Exported code">
        {(props) => <textarea {...props} rows={8} className="mono" value={code} disabled={!canWrite} onChange={(e) => setCode(e.target.value)} />}
      </Field>
      <div className="row">
        <button type="button" className="secondary" disabled={!code || run.isPending || !canWrite} onClick={() => run.mutate(true)}>
          Check (dry run)
        </button>
        <button
          type="button"
          disabled={!code || run.isPending || !canWrite}
          onClick={async () => {
            const question = 'Import into the draft? It replaces the agent, and drops the changes you have not saved.';
            if (!draft.dirty || (await confirm({ action: 'Import into the draft', question }))) run.mutate(false);
          }}
        >
          Import into the draft
        </button>
      </div>
      <ProblemAlert error={run.error} />
      {run.data && (
        <div className="card" role="status">
          <p>{run.data.dry_run ? 'The import would set this agent.' : 'Imported into the draft: review it, then publish.'}</p>
          {run.data.tools.length > 0 && (
            <>
              <p>Tools:</p>
              <ul>
                {run.data.tools.map((t) => (
                  <li key={t.id}>
                    {t.id} ({t.type}): {TOOL_CHANGES[t.change]}
                    {t.secret && `; its secret ${SECRET_FATES[t.secret]}`}
                  </li>
                ))}
              </ul>
            </>
          )}
          {run.data.not_carried.length > 0 && (
            <>
              <p>Not carried over:</p>
              <ul>
                {run.data.not_carried.map((s) => (
                  <li key={`${s.line}-${s.what}`}>
                    Line {s.line}: {s.what} — {s.instead}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </Group>
  );
}

export default function AgentTab({ widget }: { widget: Widget }) {
  return (
    <>
      <Group title="Model">
        <Text path="agent.model" label="Model" placeholder="gpt-4.1-mini" />
        <Select
          path="agent.model_api"
          label="API flavour"
          options={[
            ['responses', 'Responses API'],
            ['chat_completions', 'Chat Completions (any compatible endpoint)'],
          ]}
        />
        <Text path="agent.instructions" label="Instructions" multiline />
        <Text path="agent.base_url" label="Base URL" hint="Leave empty for OpenAI. Another endpoint needs its own key below." placeholder="https://api.example.com/v1" />
        <NumberInput path="agent.temperature" label="Temperature" min={0} max={2} step={0.1} />
        <Select path="agent.reasoning_effort" label="Reasoning effort" hint="Reasoning models only (gpt-5, the o-series)." options={EFFORTS} />
      </Group>
      <ModelKey widget={widget} />
      <Group title="Limits">
        <NumberInput path="agent.max_output_tokens" label="Most tokens per answer" min={1} max={128000} />
        <NumberInput path="agent.messages_per_user_per_day" label="Messages per visitor per day" min={1} max={100000} />
        <NumberInput path="agent.limits.max_turns" label="Most model turns per answer" min={1} max={100} />
        <NumberInput path="agent.limits.max_tool_calls" label="Most tool calls per answer" min={0} max={100} />
        <NumberInput path="agent.limits.max_seconds" label="Most seconds per answer" min={1} max={600} />
      </Group>
      <Group title="Guardrails">
        <NumberInput path="agent.guardrails.max_input_length" label="Longest message a visitor may send (characters)" min={1} max={100000} />
        <Lines
          path="agent.guardrails.refused_topics"
          label="Refused topics"
          hint="One per line: a message mentioning one is answered with the refusal, never by the model."
        />
        <Check path="agent.guardrails.moderation" label="Check each message with OpenAI's moderation first" />
        <Text path="agent.guardrails.refusal_message" label="What the visitor reads when a guardrail trips" />
      </Group>
      <Tools />
      <FunctionTools widget={widget} />
      <Handoffs />
      <AgentImport widget={widget} />
    </>
  );
}
