// Conversations: filters and search, the list, one transcript with feedback and tool calls,
// staff notes and the reviewed flag, deleting it, the export.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { Empty, Field, formatDate, Loading, MoreButton, Page, ProblemAlert, Query, ReadOnlyNote, Table, useSettled, useUrlState } from '../ui';
import { WidgetFilter } from './Analytics';

type Feedback = Schemas['FeedbackFilter'];

/** The names of the files a visitor attached to a message: ChatKit's `attachments` in the
 * item as stored (free-form in the API), shown as text. */
function AttachedFiles({ item }: { item: Schemas['TranscriptItem']['item'] }) {
  const attachments: unknown[] = Array.isArray(item.attachments) ? item.attachments : [];
  const names = attachments.flatMap((attachment) => {
    const name = typeof attachment === 'object' && attachment !== null ? (attachment as { name?: unknown }).name : undefined;
    return typeof name === 'string' ? [name] : [];
  });
  return names.length > 0 ? <p className="muted">Files attached: {names.join(', ')}</p> : null;
}

function Transcript({ id, onClose }: { id: string; onClose: () => void }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug, thread_id: id };
  // A conversation may be long: its items come a page at a time (the API's cursor), shown as one.
  const thread = useInfiniteQuery({
    queryKey: ['conversation', tenant.slug, id],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/tenants/{tenant}/conversations/{thread_id}', { params: { path, query: pageParam ? { after: pageParam } : {} } })),
    getNextPageParam: (page) => page.next ?? null,
  });
  const pages = thread.data?.pages;
  const shown = pages?.[0] && { ...pages[0], items: pages.flatMap((page) => page.items) };
  const [note, setNote] = useState<string | null>(null);
  const canWrite = tenant.can('conversations:write');
  const review = useMutation({
    mutationFn: (body: Schemas['ReviewUpdate']) => unwrap(api.PATCH('/api/v1/tenants/{tenant}/conversations/{thread_id}/review', { params: { path }, body })),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ['conversation', tenant.slug, id] });
      void client.invalidateQueries({ queryKey: ['conversations', tenant.slug] });
    },
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/v1/tenants/{tenant}/conversations/{thread_id}', { params: { path } })),
    onSuccess: () => {
      client.removeQueries({ queryKey: ['conversation', tenant.slug, id] });
      void client.invalidateQueries({ queryKey: ['conversations', tenant.slug] });
      onClose();
    },
  });
  return (
    <section className="card transcript" aria-label="Transcript">
      <div className="row spread">
        <h2>Conversation</h2>
        <span className="row">
          <ConfirmButton
            disabled={!canWrite || remove.isPending}
            action="Delete conversation"
            question="Delete this conversation? Its messages and the files the visitor attached go too, for you and for the visitor."
            onConfirm={() => remove.mutate()}
          >
            Delete conversation
          </ConfirmButton>
          <button type="button" className="secondary" onClick={onClose}>
            Close
          </button>
        </span>
      </div>
      <ProblemAlert error={remove.error} />
      <Query query={{ data: shown, error: shown ? null : thread.error, isPending: thread.isPending }} what="the conversation">
        {(t) => (
          <>
            <p className="muted">
              {t.title ?? 'Untitled'} · {t.end_user} · {t.messages} messages · 👍 {t.positive_feedback} 👎 {t.negative_feedback}
            </p>
            <ol className="items">
              {t.items.map((item) => (
                <li key={item.id} className={`item item-${item.type}`}>
                  <span className="item-meta">
                    {item.type.replace('_', ' ')} · {formatDate(item.created_at)}
                    {item.feedback && ` · feedback: ${item.feedback}`}
                    {item.answer &&
                      ` · first word ${item.answer.first_token_ms === null ? '—' : `${Math.round(item.answer.first_token_ms)} ms`}, total ${Math.round(item.answer.total_ms)} ms` +
                        (item.answer.input_tokens === null ? '' : `, ${item.answer.input_tokens} / ${item.answer.output_tokens ?? 0} tokens`)}
                  </span>
                  <p>{item.text || <span className="muted">(no text)</span>}</p>
                  <AttachedFiles item={item.item} />
                </li>
              ))}
            </ol>
            {/* A later page that fails leaves the items shown; Later messages asks again. */}
            <ProblemAlert error={thread.error} />
            <MoreButton query={thread} label="Later messages" />
            {canWrite ? (
              <form
                className="inline-form"
                onSubmit={(event) => {
                  event.preventDefault();
                  review.mutate({ note: note ?? t.review?.note ?? '' });
                }}
              >
                <Field label="Staff note (never shown to the visitor)">
                  {(props) => <textarea {...props} rows={3} value={note ?? t.review?.note ?? ''} onChange={(e) => setNote(e.target.value)} />}
                </Field>
                <button type="submit" className="secondary">
                  Save note
                </button>
                <button type="button" onClick={() => review.mutate({ reviewed: !t.reviewed })}>
                  {t.reviewed ? 'Mark as not reviewed' : 'Mark as reviewed'}
                </button>
              </form>
            ) : (
              <>
                {t.review?.note && <p className="muted">Staff note: {t.review.note}</p>}
                <ReadOnlyNote canWrite={canWrite} />
              </>
            )}
            <ProblemAlert error={review.error} />
          </>
        )}
      </Query>
    </section>
  );
}

type ExportFilters = Schemas['ConversationFilters'];

/** A streamed export's download: a link, or (where it cannot work: for a role that may not
 * read conversations, or filters the list was refused for) a disabled button, since a link
 * cannot be disabled (the browser would save the API's problem document as the export). */
function ExportLink({ href, enabled, children }: { href: string; enabled: boolean; children: ReactNode }) {
  return enabled ? (
    <a className="button secondary" href={href} download>
      {children}
    </a>
  ) : (
    <button type="button" className="secondary" disabled>
      {children}
    </button>
  );
}

/** How long before a download link expires the screen asks for a new one. */
const LINK_MARGIN_MS = 60_000;

/** A large export written by a worker: its status, then a short-lived download link. */
function BackgroundExport({ filters, canRead }: { filters: ExportFilters; canRead: boolean }) {
  const tenant = useTenant();
  const [format, setFormat] = useState<Schemas['ExportFormat']>('jsonl');
  const start = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tenants/{tenant}/conversations/exports', { params: { path: { tenant: tenant.slug } }, body: { format, filters } })),
  });
  const id = start.data?.id;
  const job = useQuery({
    queryKey: ['conversation-export', tenant.slug, id],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/conversations/exports/{export_id}', { params: { path: { tenant: tenant.slug, export_id: id ?? '' } } })),
    enabled: id !== undefined,
    // Asked again while it is written, and once ready, shortly before its link expires (a
    // link is valid for minutes; the screen may stay open for hours).
    refetchInterval: (query) => {
      const shown = query.state.data;
      if (shown?.status === 'pending') return 2000;
      if (shown?.status !== 'ready' || !shown.download_expires_at) return false;
      return Math.max(new Date(shown.download_expires_at).getTime() - Date.now() - LINK_MARGIN_MS, 1000);
    },
    refetchIntervalInBackground: true,
  });
  return (
    <div className="row">
      <select aria-label="Format of the background export" value={format} disabled={!canRead} onChange={(e) => setFormat(e.target.value as Schemas['ExportFormat'])}>
        <option value="jsonl">JSON lines</option>
        <option value="csv">Messages (CSV)</option>
      </select>
      <button type="button" className="secondary" disabled={!canRead || start.isPending} onClick={() => start.mutate()}>
        Export in the background
      </button>
      <span role="status">
        {job.data?.status === 'ready' && job.data.download_url ? (
          <a href={job.data.download_url} download>
            Download the export
          </a>
        ) : job.data?.status === 'failed' ? (
          'The export failed: try again.'
        ) : job.data?.status === 'invalidated' ? (
          'A conversation in the export was deleted: export again.'
        ) : start.data ? (
          'Writing the export…'
        ) : null}
      </span>
      <ProblemAlert error={start.error ?? job.error} />
    </div>
  );
}

const FEEDBACK: Feedback[] = ['any', 'positive', 'negative'];
/** The shortest search the list runs (a single character finds too much to mean anything). */
const SEARCH_MIN = 2;

export default function Conversations() {
  const tenant = useTenant();
  // The filters, the search and the open transcript live in the URL, so that a reload or Back
  // keeps them.
  const [params, set] = useUrlState();
  const widget = params.get('widget') ?? '';
  const search = params.get('q') ?? '';
  const feedback = FEEDBACK.find((f) => f === params.get('feedback')) ?? '';
  const endUser = params.get('end_user') ?? '';
  const hasError = params.get('has_error') === '1';
  const hasAttachments = params.get('has_attachments') === '1';
  const open = params.get('thread');
  const setOpen = (thread: string | null) => set({ thread });
  const [q, setQ] = useState(search);
  // The end user box reaches the URL (and the list) once typing pauses, not per keystroke;
  // only what was typed does: the URL changing (Search, Back) is no reason to write it back.
  const [endUserText, setEndUserText] = useState(endUser);
  const settledEndUser = useSettled(endUserText.trim());
  useEffect(() => {
    if (settledEndUser !== endUser) set({ end_user: settledEndUser }, { at: 'effect' });
  }, [settledEndUser]);
  const filters = {
    ...(widget ? { widget } : {}),
    ...(search.length >= SEARCH_MIN ? { q: search } : {}),
    ...(feedback ? { feedback } : {}),
    ...(endUser ? { end_user: endUser } : {}),
    ...(hasError ? { has_error: true } : {}),
    ...(hasAttachments ? { has_attachments: true } : {}),
  };
  // Each filter has a key of its own: an answer to an earlier one never shows under a later one.
  const threads = useInfiniteQuery({
    queryKey: ['conversations', tenant.slug, filters],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/conversations', {
          params: { path: { tenant: tenant.slug }, query: { ...filters, limit: 50, ...(pageParam ? { before: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (page) => page.next ?? null,
  });
  const list = threads.data?.pages.flatMap((p) => p.data) ?? [];
  const query = new URLSearchParams(Object.entries(filters).map(([key, value]) => [key, String(value)]));
  const canRead = tenant.can('conversations:read');
  // The exports take the list's filters: a refusal of them (not a passing fault) is theirs too.
  const refused = threads.error instanceof ApiError && threads.error.status < 500;
  const exportUrl = (format: 'jsonl' | 'csv') => `/api/v1/tenants/${tenant.slug}/conversations/export.${format}?${query}`;
  return (
    <Page
      title="Conversations"
      actions={
        <>
          <ExportLink href={exportUrl('jsonl')} enabled={canRead && !refused}>
            Export (JSON lines)
          </ExportLink>
          <ExportLink href={exportUrl('csv')} enabled={canRead && !refused}>
            Export messages (CSV)
          </ExportLink>
          <BackgroundExport filters={filters} canRead={canRead} />
        </>
      }
    >
      <form
        className="filters"
        onSubmit={(event) => {
          event.preventDefault();
          set({ q: q.trim(), end_user: endUserText.trim() });
        }}
      >
        <label className="filter">
          Search messages
          <input type="search" value={q} aria-describedby="search-note" onChange={(e) => setQ(e.target.value)} />
        </label>
        <WidgetFilter value={widget} onChange={(id) => set({ widget: id })} />
        <label className="filter">
          Feedback
          <select value={feedback} onChange={(e) => set({ feedback: e.target.value })}>
            <option value="">Any or none</option>
            <option value="any">With feedback</option>
            <option value="positive">Positive</option>
            <option value="negative">Negative</option>
          </select>
        </label>
        <label className="filter">
          End user
          <input value={endUserText} placeholder="u:42" onChange={(e) => setEndUserText(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" checked={hasError} onChange={(e) => set({ has_error: e.target.checked })} /> With an error
        </label>
        <label className="check">
          <input type="checkbox" checked={hasAttachments} onChange={(e) => set({ has_attachments: e.target.checked })} /> With attachments
        </label>
        <button type="submit">Search</button>
      </form>
      <p id="search-note" className="hint" role="status">
        {search && search.length < SEARCH_MIN ? `Search needs at least ${SEARCH_MIN} characters: "${search}" is not searched.` : ''}
      </p>
      {open && <Transcript id={open} onClose={() => setOpen(null)} />}
      {/* A page that fails leaves those shown before it (paging on is asking again). */}
      <ProblemAlert error={threads.error} />
      {threads.isPending ? (
        <Loading what="conversations" />
      ) : threads.error && list.length === 0 ? null : list.length === 0 ? (
        <Empty>No conversations match.</Empty>
      ) : (
        <Table columns={['Title', 'End user', 'Messages', 'Feedback', 'First word (median)', 'Tokens in / out', 'Last activity', 'Reviewed']}>
              {list.map((c) => (
                <tr key={c.id}>
                  <td>
                    <button type="button" className="link" onClick={() => setOpen(c.id)}>
                      {c.title ?? 'Untitled conversation'}
                    </button>
                  </td>
                  <td>{c.end_user}</td>
                  <td>{c.messages}</td>
                  <td>
                    👍 {c.positive_feedback} 👎 {c.negative_feedback}
                  </td>
                  <td>{c.first_token_p50_ms === null ? '—' : `${Math.round(c.first_token_p50_ms)} ms`}</td>
                  <td>
                    {c.input_tokens} / {c.output_tokens}
                  </td>
                  <td>{formatDate(c.last_activity)}</td>
                  <td>{c.reviewed ? 'Yes' : 'No'}</td>
                </tr>
              ))}
            </Table>
      )}
      <MoreButton query={threads} label="Older conversations" />
    </Page>
  );
}
