// One widget: its draft edited tab by tab beside a live preview (the real loader and framed
// page on the draft), origins, versions and publishing, the snippet, its secrets.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, useEffect, useMemo, useState, type ReactNode } from 'react';
import { Link, NavLink, useParams } from 'react-router';
import { api, ApiError, ifMatch, unwrap, type Schemas } from '../../api/client';
import { useTenant } from '../../tenant';
import { Page, ProblemAlert, Query, ReadOnlyNote } from '../../ui';
import { DraftContext, getPath, setPath, type Json, type JsonObject } from './draft';
import { newToolSecretKey, widgetKey } from './keys';

const Design = lazy(() => import('./Design'));
const AgentTab = lazy(() => import('./AgentTab'));
const LauncherTab = lazy(() => import('./LauncherTab'));
const Advanced = lazy(() => import('./Advanced'));
const Origins = lazy(() => import('./Origins'));
const Versions = lazy(() => import('./Versions'));
const Embed = lazy(() => import('./Embed'));
const Secrets = lazy(() => import('./Secrets'));

type Widget = Schemas['Widget'];

const TABS = [
  ['design', 'Design'],
  ['agent', 'Agent'],
  ['launcher', 'Launcher & behaviour'],
  ['advanced', 'Advanced JSON'],
  ['origins', 'Origins'],
  ['versions', 'Publish & versions'],
  ['embed', 'Embed'],
  ['secrets', 'Secrets'],
] as const;
type Tab = (typeof TABS)[number][0];
const DRAFT_TABS: Tab[] = ['design', 'agent', 'launcher', 'advanced'];

/** Hosted widgets ran on Agent Builder, which OpenAI shut down on 2026-11-30. */
function HostedNotice({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const convert = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets/{id}/convert', {
          params: { path: { tenant: tenant.slug, id: widget.id }, header: ifMatch(widget.revision) },
        }),
      ),
    onSuccess: (converted) => client.setQueryData(widgetKey(tenant.slug, widget.id), converted.widget),
  });
  if (!widget.attention.includes('agent_builder_retired') && !convert.data) return null;
  return (
    <div className="banner warn" role="region" aria-label="Agent Builder shutdown">
      <h2>OpenAI shut Agent Builder down on 30 November 2026</h2>
      {convert.data ? (
        <>
          <p>The draft is now self-hosted: Kithost runs the agent. Review the Agent tab (or import your exported workflow there), then publish.</p>
          {convert.data.carried.length > 0 && <p>Kept: {convert.data.carried.join(', ')}.</p>}
          {convert.data.not_carried.length > 0 && (
            <ul>
              {convert.data.not_carried.map((n) => (
                <li key={n.setting}>
                  <code>{n.setting}</code>: {n.instead}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : (
        <>
          <p>
            This widget's hosted workflow no longer runs, so its chat cannot answer. Convert it to a self-hosted widget: your ChatKit options,
            launcher, origins and actions stay; Kithost runs the agent (import the code Agent Builder exported, or start from a default). Visitors
            see nothing change until you publish.
          </p>
          <button type="button" disabled={!tenant.can('widgets:write') || convert.isPending} onClick={() => convert.mutate()}>
            Convert to self-hosted
          </button>
          <ProblemAlert error={convert.error} />
        </>
      )}
    </div>
  );
}

function Preview({ widget, reloads }: { widget: Widget; reloads: number }) {
  const tenant = useTenant();
  const preview = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/tenants/{tenant}/widgets/{id}/preview', { params: { path: { tenant: tenant.slug, id: widget.id } } })),
  });
  const { mutate } = preview;
  const allowed = tenant.can('widgets:write');
  useEffect(() => {
    if (allowed) mutate();
  }, [allowed, mutate, widget.revision, reloads]);
  return (
    <aside className="preview" aria-label="Live preview">
      <h2>Preview of the draft</h2>
      {!allowed ? (
        <p className="muted">Previews of the draft need edit rights.</p>
      ) : preview.data ? (
        <iframe key={preview.data.public_key} title="Live preview of the draft" src={preview.data.url} />
      ) : preview.error ? (
        <ProblemAlert error={preview.error} />
      ) : (
        <p className="muted">Starting the preview…</p>
      )}
      <p className="hint">Saved changes show here; visitors see them once you publish.</p>
    </aside>
  );
}

/** The draft-bound tabs: local edits, saved together (`PUT …/config`), after the model key
 * typed in the agent tab (`PUT …/model-key`, for the base URL the draft names: a new base
 * URL saves only once its key is set). */
function DraftEditor({ widget, children }: { widget: Widget; children: ReactNode }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [config, setConfig] = useState<JsonObject>(() => widget.config as unknown as JsonObject);
  const [modelKey, setModelKey] = useState('');
  // The key's answer moves the revision: the config then saves with it, even after a refusal.
  const [revision, setRevision] = useState(widget.revision);
  const dirty = useMemo(() => modelKey !== '' || JSON.stringify(config) !== JSON.stringify(widget.config), [config, modelKey, widget.config]);
  const path = { tenant: tenant.slug, id: widget.id };
  const save = useMutation({
    mutationFn: async () => {
      let current = revision;
      if (modelKey) {
        const baseUrl = getPath(config, 'agent.base_url');
        const key = await unwrap(
          api.PUT('/api/v1/tenants/{tenant}/widgets/{id}/model-key', {
            params: { path },
            body: { api_key: modelKey, base_url: typeof baseUrl === 'string' && baseUrl ? baseUrl : null },
          }),
        );
        current = key.revision;
        setRevision(current);
        setModelKey('');
      }
      return unwrap(
        api.PUT('/api/v1/tenants/{tenant}/widgets/{id}/config', {
          params: { path, header: ifMatch(current) },
          body: config as unknown as Schemas['WidgetConfig'],
        }),
      );
    },
    onSuccess: (saved) => {
      // The tool secret the first HTTP tool made is in this answer only (shown by AgentTools).
      if (saved.new_tool_secret) client.setQueryData(newToolSecretKey(tenant.slug, widget.id), saved.new_tool_secret);
      client.setQueryData(widgetKey(tenant.slug, widget.id), saved);
    },
  });
  const error = save.error instanceof ApiError ? save.error : null;
  const disabled = !tenant.can('widgets:write');
  const context = useMemo(
    () => ({ config, set: (at: string, value: Json | undefined) => setConfig((c) => setPath(c, at, value)), error, disabled, modelKey, setModelKey }),
    [config, error, disabled, modelKey],
  );
  return (
    <DraftContext.Provider value={context}>
      <form
        className="draft-form"
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        {children}
        <div className="savebar">
          <button type="submit" disabled={disabled || !dirty || save.isPending}>
            {save.isPending ? 'Saving…' : 'Save the draft'}
          </button>
          <button type="button" className="secondary" disabled={!dirty} onClick={() => setConfig(widget.config as unknown as JsonObject)}>
            Discard changes
          </button>
          <span role="status" className="muted">
            {dirty ? 'Unsaved changes' : save.isSuccess ? 'Saved' : ''}
          </span>
        </div>
        {save.error && <ProblemAlert error={save.error} />}
      </form>
    </DraftContext.Provider>
  );
}

export default function WidgetEditor() {
  const tenant = useTenant();
  const { id = '', tab: rawTab } = useParams();
  const tab: Tab = TABS.some(([t]) => t === rawTab) ? (rawTab as Tab) : 'design';
  const [reloads, setReloads] = useState(0);
  const widget = useQuery({
    queryKey: widgetKey(tenant.slug, id),
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/widgets/{id}', { params: { path: { tenant: tenant.slug, id } } })),
  });
  return (
    <Query query={widget} what="the widget">
      {(w) => (
        <Page
          title={w.name}
          actions={
            <Link to={`/t/${tenant.slug}/widgets`} className="button secondary">
              All widgets
            </Link>
          }
        >
          <p className="muted">
            <code>{w.public_key}</code> · {w.published_version ? `version ${w.published_version} is live` : 'not published yet'}
          </p>
          <ReadOnlyNote canWrite={tenant.can('widgets:write')} />
          <HostedNotice widget={w} />
          <nav className="tabs" aria-label="Widget settings">
            {TABS.map(([key, label]) => (
              <NavLink key={key} to={`/t/${tenant.slug}/widgets/${w.id}/${key}`} className={key === tab ? 'active' : undefined} aria-current={key === tab ? 'page' : undefined}>
                {label}
              </NavLink>
            ))}
          </nav>
          <div className="editor">
            <div className="editor-main">
              {DRAFT_TABS.includes(tab) ? (
                <DraftEditor key={`${w.revision}-${tab}`} widget={w}>
                  {tab === 'design' && <Design />}
                  {tab === 'agent' && <AgentTab widget={w} />}
                  {tab === 'launcher' && <LauncherTab />}
                  {tab === 'advanced' && <Advanced />}
                </DraftEditor>
              ) : (
                <>
                  {tab === 'origins' && <Origins widget={w} />}
                  {tab === 'versions' && <Versions widget={w} />}
                  {tab === 'embed' && <Embed widget={w} onCheck={() => setReloads((n) => n + 1)} />}
                  {tab === 'secrets' && <Secrets widget={w} />}
                </>
              )}
            </div>
            <Preview widget={w} reloads={reloads} />
          </div>
        </Page>
      )}
    </Query>
  );
}
