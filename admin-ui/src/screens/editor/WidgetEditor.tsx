// One widget: its draft edited tab by tab beside a live preview (the real loader and framed
// page on the draft), origins, versions and publishing, the snippet, its secrets.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { lazy, useEffect, useMemo, useState, type ReactNode } from 'react';
import { Link, NavLink, useBlocker, useParams } from 'react-router';
import { api, ApiError, ifMatch, unwrap, type Schemas } from '../../api/client';
import { useConfirm } from '../../confirm';
import { useTenant } from '../../tenant';
import { Page, ProblemAlert, Query, ReadOnlyNote } from '../../ui';
import { DraftContext, getPath, rebase, setPath, type Json, type JsonObject } from './draft';
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

/** Edits of the draft not saved yet, and the widget they started from. */
type Edits = { base: Widget; config: JsonObject };

const sameConfig = (a: Widget, b: Widget) => JSON.stringify(a.config) === JSON.stringify(b.config);

/** The widget, as the editor fetches it. */
const fetchWidget = (tenant: string, id: string) =>
  unwrap(api.GET('/api/v1/tenants/{tenant}/widgets/{id}', { params: { path: { tenant, id } } }));

/** The draft-bound tabs' state, kept while the editor is open whichever tab shows: local edits,
 * saved together (`PUT …/config`), after the model key typed in the agent tab (`PUT
 * …/model-key`, for the base URL the draft names: a new base URL saves only once its key is
 * set). A save refused as stale (412) offers the latest draft with the edits on top. */
function useDraftEdits(widget: Widget) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [edits, setEdits] = useState<Edits | null>(null);
  const [modelKey, setModelKey] = useState('');
  const [overlapped, setOverlapped] = useState<string[] | null>(null);
  // Controls holding text of their own (a list, JSON) start over when the draft is replaced
  // from outside them (discarded, saved, reloaded, restored): the content is keyed on this.
  const [generation, setGeneration] = useState(0);
  const [shown, setShown] = useState(widget.config);
  const config = edits?.config ?? (widget.config as unknown as JsonObject);
  if (shown !== widget.config) {
    setShown(widget.config);
    if (!edits && JSON.stringify(shown) !== JSON.stringify(widget.config)) setGeneration((n) => n + 1);
  }
  const dirty = modelKey !== '' || (edits !== null && JSON.stringify(edits.config) !== JSON.stringify(edits.base.config));
  // The edits' widget, unless only what is not the draft changed since (origins, secrets).
  const base = edits && !sameConfig(edits.base, widget) ? edits.base : widget;
  const path = { tenant: tenant.slug, id: widget.id };
  const save = useMutation({
    mutationFn: async () => {
      let revision = base.revision;
      if (modelKey) {
        const baseUrl = getPath(config, 'agent.base_url');
        const key = await unwrap(
          api.PUT('/api/v1/tenants/{tenant}/widgets/{id}/model-key', {
            params: { path },
            body: { api_key: modelKey, base_url: typeof baseUrl === 'string' && baseUrl ? baseUrl : null },
          }),
        );
        revision = key.revision;
        // The key's answer moves the revision: the config then saves with it, even after a refusal.
        if (base === widget) client.setQueryData<Widget>(widgetKey(tenant.slug, widget.id), (w) => w && { ...w, revision, has_model_key: true });
        else setEdits((e) => e && { ...e, base: { ...e.base, revision } });
        setModelKey('');
      }
      return unwrap(
        api.PUT('/api/v1/tenants/{tenant}/widgets/{id}/config', {
          params: { path, header: ifMatch(revision) },
          body: config as unknown as Schemas['WidgetConfig'],
        }),
      );
    },
    onSuccess: (saved) => {
      // The tool secret the first HTTP tool made is in this answer only (shown by AgentTools).
      if (saved.new_tool_secret) client.setQueryData(newToolSecretKey(tenant.slug, widget.id), saved.new_tool_secret);
      client.setQueryData(widgetKey(tenant.slug, widget.id), saved);
      setEdits(null);
      setOverlapped(null);
    },
  });
  const loadLatest = useMutation({
    mutationFn: () => client.fetchQuery({ queryKey: widgetKey(tenant.slug, widget.id), queryFn: () => fetchWidget(tenant.slug, widget.id), staleTime: 0 }),
    onSuccess: (latest) => {
      if (edits) {
        const merged = rebase(edits.base.config as unknown as JsonObject, edits.config, latest.config as unknown as JsonObject);
        setEdits({ base: latest, config: merged.config });
        setOverlapped(merged.overlapped);
      }
      setGeneration((n) => n + 1);
      save.reset();
    },
  });
  const error = save.error instanceof ApiError ? save.error : null;
  const disabled = !tenant.can('widgets:write');
  const discard = () => {
    setEdits(null);
    setModelKey('');
    setOverlapped(null);
    setGeneration((n) => n + 1);
  };
  const context = useMemo(
    () => ({
      config,
      set: (at: string, value: Json | undefined) =>
        setEdits((e) => {
          const from = e?.base ?? widget;
          const next = setPath(e?.config ?? (from.config as unknown as JsonObject), at, value);
          return JSON.stringify(next) === JSON.stringify(from.config) ? null : { base: from, config: next };
        }),
      error,
      disabled,
      modelKey,
      setModelKey,
      dirty,
      drop: discard,
    }),
    [config, widget, error, disabled, modelKey, dirty],
  );
  return { context, dirty, save, loadLatest, overlapped, generation, discard };
}

type DraftEdits = ReturnType<typeof useDraftEdits>;

/** The draft-bound tabs' form and its save bar. */
function DraftForm({ edits, children }: { edits: DraftEdits; children: ReactNode }) {
  const { context, dirty, save, loadLatest, overlapped, discard } = edits;
  const stale = save.error instanceof ApiError && save.error.status === 412;
  return (
    <DraftContext.Provider value={context}>
      <form
        className="draft-form"
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <div key={edits.generation}>{children}</div>
        <div className="savebar">
          <button type="submit" disabled={context.disabled || !dirty || save.isPending}>
            {save.isPending ? 'Saving…' : 'Save the draft'}
          </button>
          <button type="button" className="secondary" disabled={!dirty} onClick={discard}>
            Discard changes
          </button>
          <span role="status" className="muted">
            {dirty ? 'Unsaved changes' : save.isSuccess ? 'Saved' : ''}
          </span>
        </div>
        {stale ? (
          <div className="alert" role="alert">
            <p>Someone changed this widget after you started editing, so your changes are not saved yet.</p>
            <button type="button" disabled={loadLatest.isPending} onClick={() => loadLatest.mutate()}>
              Load the latest draft and keep my changes
            </button>
          </div>
        ) : (
          save.error && <ProblemAlert error={save.error} />
        )}
        <ProblemAlert error={loadLatest.error} />
        {overlapped && (
          <div className="note" role="status">
            <p>The latest draft is loaded with your changes on top: check them, then save.</p>
            {overlapped.length > 0 && (
              <p>
                Changed by someone else too (your value replaces theirs):{' '}
                {overlapped.map((at, i) => (
                  <span key={at}>
                    {i > 0 && ', '}
                    <code>{at}</code>
                  </span>
                ))}
                .
              </p>
            )}
          </div>
        )}
      </form>
    </DraftContext.Provider>
  );
}

const LEAVE = { action: 'Leave the editor', question: 'Leave the editor? The draft has changes you have not saved, and they will be lost.' };

/** While there are edits not saved: a question before leaving the widget (in the app, and
 * before the page unloads, in the browser's own dialog). Its tabs are the same editor. */
function useWarnBeforeLeaving(dirty: boolean, editor: string) {
  const confirm = useConfirm();
  const blocker = useBlocker(
    ({ nextLocation }) => dirty && nextLocation.pathname !== editor && !nextLocation.pathname.startsWith(`${editor}/`),
  );
  useEffect(() => {
    if (blocker.state !== 'blocked') return;
    void confirm(LEAVE).then((leave) => (leave ? blocker.proceed() : blocker.reset()));
  }, [blocker, confirm]);
  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);
}

function Editor({ widget: w, tab }: { widget: Widget; tab: Tab }) {
  const tenant = useTenant();
  const [reloads, setReloads] = useState(0);
  const edits = useDraftEdits(w);
  const editor = `/t/${tenant.slug}/widgets/${w.id}`;
  useWarnBeforeLeaving(edits.dirty, editor);
  return (
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
          <NavLink key={key} to={`${editor}/${key}`} className={key === tab ? 'active' : undefined} aria-current={key === tab ? 'page' : undefined}>
            {label}
          </NavLink>
        ))}
      </nav>
      <div className="editor">
        <div className="editor-main">
          {DRAFT_TABS.includes(tab) ? (
            <DraftForm edits={edits}>
              {tab === 'design' && <Design />}
              {tab === 'agent' && <AgentTab widget={w} />}
              {tab === 'launcher' && <LauncherTab />}
              {tab === 'advanced' && <Advanced />}
            </DraftForm>
          ) : (
            <>
              {edits.dirty && (
                <p className="note" role="note">
                  The draft has changes you have not saved (<Link to={`${editor}/design`}>save them</Link>): only the saved draft is previewed and
                  published.
                </p>
              )}
              {tab === 'origins' && <Origins widget={w} />}
              {tab === 'versions' && <Versions widget={w} onRestored={edits.discard} />}
              {tab === 'embed' && <Embed widget={w} onCheck={() => setReloads((n) => n + 1)} />}
              {tab === 'secrets' && <Secrets widget={w} />}
            </>
          )}
        </div>
        <Preview widget={w} reloads={reloads} />
      </div>
    </Page>
  );
}

export default function WidgetEditor() {
  const tenant = useTenant();
  const { id = '', tab: rawTab } = useParams();
  const tab: Tab = TABS.some(([t]) => t === rawTab) ? (rawTab as Tab) : 'design';
  const widget = useQuery({ queryKey: widgetKey(tenant.slug, id), queryFn: () => fetchWidget(tenant.slug, id) });
  // One editor per widget, whichever tab shows: the draft's edits stay across tabs.
  return (
    <Query query={widget} what="the widget">
      {(w) => <Editor key={w.id} widget={w} tab={tab} />}
    </Query>
  );
}
