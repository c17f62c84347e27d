// Widgets: the list (name, mode, placement, published version, last change, loads this
// week), creating one, deleting one.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useForm } from 'react-hook-form';
import { Link, useNavigate } from 'react-router';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { Empty, Field, formatDate, MoreButton, Page, ProblemAlert, Query, ReadOnlyNote, Table } from '../ui';

type Widget = Schemas['Widget'];

export const widgetsKey = (tenant: string) => ['widgets', tenant] as const;
const WIDGETS_PAGE = 100;

const DAY_MS = 86_400_000;

/** Each widget's loads over the last 7 UTC days (today's so far included), in one request for
 * the whole list: whole days, so the daily rollups answer. */
function useLoadsThisWeek(tenant: string): Map<string, number> | undefined {
  const tomorrow = Math.floor(Date.now() / DAY_MS) * DAY_MS + DAY_MS;
  const query = { metric: 'loads' as const, since: new Date(tomorrow - 7 * DAY_MS).toISOString(), until: new Date(tomorrow).toISOString() };
  const totals = useQuery({
    queryKey: ['loads-week', tenant, query.until],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/analytics/widgets', { params: { path: { tenant }, query } })),
  });
  return totals.data && new Map(totals.data.widgets.map((w) => [w.widget_id, w.value]));
}

function CreateWidget({ onDone }: { onDone: () => void }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const navigate = useNavigate();
  const form = useForm<{ name: string; origins: string }>({ defaultValues: { name: '', origins: '' } });
  // The form opens on a click elsewhere: the keyboard follows it to its first field.
  useEffect(() => form.setFocus('name'), [form]);
  const create = useMutation({
    mutationFn: (values: { name: string; origins: string }) =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets', {
          params: { path: { tenant: tenant.slug } },
          body: { name: values.name, origins: values.origins.split(/\s+/).filter(Boolean) },
        }),
      ),
    onSuccess: (widget) => {
      void client.invalidateQueries({ queryKey: widgetsKey(tenant.slug) });
      onDone();
      void navigate(`/t/${tenant.slug}/widgets/${widget.id}`);
    },
  });
  const error = create.error instanceof ApiError ? create.error : null;
  const originsError = error?.problem.errors?.find((e) => e.field.includes('origins'));
  return (
    <form className="card" onSubmit={form.handleSubmit((values) => create.mutate(values))} noValidate>
      <h2>New widget</h2>
      <Field label="Name" error={form.formState.errors.name?.message ?? error?.fieldError('name')}>
        {(props) => <input {...props} {...form.register('name', { required: 'Name the widget.' })} />}
      </Field>
      <Field
        label="Allowed origins"
        hint="One per line, e.g. https://www.example.com or https://*.example.com. You can add them later."
        error={originsError?.message}
      >
        {(props) => <textarea {...props} rows={3} {...form.register('origins')} />}
      </Field>
      <ProblemAlert error={create.error} shown={['name', ...(originsError ? [originsError.field] : [])]} />
      <div className="row">
        <button type="submit" disabled={create.isPending}>
          Create widget
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function DeleteWidget({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const remove = useMutation({
    mutationFn: () =>
      unwrap(
        api.DELETE('/api/v1/tenants/{tenant}/widgets/{id}', {
          params: { path: { tenant: tenant.slug, id: widget.id } },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: widgetsKey(tenant.slug) }),
  });
  return (
    <>
      <ConfirmButton
        disabled={!tenant.can('widgets:write') || remove.isPending}
        aria-label={`Delete ${widget.name}`}
        action="Delete widget"
        question={`Delete the widget "${widget.name}"? Pages embedding it stop showing it.`}
        onConfirm={() => remove.mutate()}
      >
        Delete
      </ConfirmButton>
      <ProblemAlert error={remove.error} />
    </>
  );
}

export default function Widgets() {
  const tenant = useTenant();
  const [creating, setCreating] = useState(false);
  const widgets = useInfiniteQuery({
    queryKey: widgetsKey(tenant.slug),
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/widgets', {
          params: { path: { tenant: tenant.slug }, query: { limit: WIDGETS_PAGE, ...(pageParam ? { after: pageParam } : {}) } },
        }),
      ),
    // A full page may have more after it (the list pages by the last widget's id).
    getNextPageParam: (page) => (page.length === WIDGETS_PAGE ? (page[page.length - 1]?.id ?? null) : null),
  });
  const loads = useLoadsThisWeek(tenant.slug);
  const canWrite = tenant.can('widgets:write');
  return (
    <Page
      title="Widgets"
      actions={
        <button type="button" onClick={() => setCreating(true)} disabled={!canWrite || creating}>
          New widget
        </button>
      }
    >
      <ReadOnlyNote canWrite={canWrite} />
      {creating && <CreateWidget onDone={() => setCreating(false)} />}
      <Query query={widgets} what="widgets">
        {({ pages }) =>
          pages[0]?.length === 0 ? (
            <Empty>No widgets yet. Create one, then paste its snippet into your site.</Empty>
          ) : (
            <Table columns={['Name', 'Mode', 'Placement', 'Published', 'Last change', 'Loads this week', { hidden: 'Actions' }]}>
              {pages.flat().map((w) => (
                <tr key={w.id}>
                  <td>
                    <Link to={`/t/${tenant.slug}/widgets/${w.id}`}>{w.name}</Link>
                    {w.attention.includes('agent_builder_retired') && <span className="badge warn">Agent Builder retired</span>}
                  </td>
                  <td>{w.config.mode === 'hosted' ? 'Hosted (retired)' : 'Self-hosted'}</td>
                  <td>{w.config.placement}</td>
                  <td>{w.published_version ? `v${w.published_version}` : <span className="muted">not yet</span>}</td>
                  <td>{formatDate(w.updated_at)}</td>
                  <td>{loads ? (loads.get(w.id) ?? 0) : <span className="muted">…</span>}</td>
                  <td>
                    <DeleteWidget widget={w} />
                  </td>
                </tr>
              ))}
            </Table>
          )
        }
      </Query>
      <MoreButton query={widgets} label="More widgets" />
    </Page>
  );
}
