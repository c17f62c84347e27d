// Webhooks: endpoints (the signing secret shown once, rotated), a test send, the delivery
// log with replay.
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { Empty, Field, formatDate, MoreButton, Page, ProblemAlert, Query, ReadOnlyNote, SecretOnce, Table } from '../ui';

type EventType = Schemas['EventType'];
type Endpoint = Schemas['Endpoint'];
const EVENTS: EventType[] = [
  'conversation.started',
  'conversation.message',
  'conversation.idle',
  'feedback.created',
  'client_error.new_group',
  'widget.published',
];
/** Every event but one per message (high volume): what a new endpoint starts with. */
const DEFAULT_EVENTS = EVENTS.filter((event) => event !== 'conversation.message');
type NewEndpoint = { url: string; description: string; events: EventType[]; idle_minutes: number };

/** When the endpoint's next delivery may be attempted, if one waits for a time: a failing
 * endpoint's rest (or the deadline of the attempt under way), a slow endpoint's attempt under
 * way (its deadline, the next going sooner if it ends sooner). One waiting for another slow
 * endpoint's attempt has none: its `waiting_turn` says so. */
function NextTry({ endpoint: e }: { endpoint: Endpoint }) {
  const at = e.next_attempt_at;
  const waits = at !== null && (e.failing_since !== null || (e.slow_since !== null && Date.parse(at) > Date.now()));
  return waits ? <span className="badge">next try {formatDate(at)}</span> : null;
}

function Deliveries({ id }: { id: string }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug, id };
  const deliveries = useInfiniteQuery({
    queryKey: ['deliveries', tenant.slug, id],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/tenants/{tenant}/webhooks/{id}/deliveries', { params: { path, query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
    // A delivery is sent by a worker: follow it until none is pending.
    refetchInterval: (query) => (query.state.data?.pages.some((p) => p.deliveries.some((d) => d.status === 'pending')) ? 3000 : false),
  });
  const replay = useMutation({
    mutationFn: (delivery_id: string) =>
      unwrap(api.POST('/api/v1/tenants/{tenant}/webhooks/{id}/deliveries/{delivery_id}/replay', { params: { path: { ...path, delivery_id } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ['deliveries', tenant.slug, id] }),
  });
  const canWrite = tenant.can('webhooks:write');
  return (
    <>
      <Query query={deliveries} what="deliveries">
        {({ pages }) =>
          pages[0]?.deliveries.length === 0 ? (
            <Empty>No deliveries yet.</Empty>
          ) : (
            <Table columns={['When', 'Event', 'Status', 'Response', { hidden: 'Replay' }]}>
              {pages.flatMap((p) => p.deliveries).map((d) => (
                <tr key={d.id}>
                  <td>{formatDate(d.created_at)}</td>
                  <td>
                    <code>{d.event_type}</code>
                  </td>
                  <td>
                    {d.status} (attempt {d.attempts})
                  </td>
                  <td>
                    {d.response_status ?? '—'} {d.latency_ms !== null && d.latency_ms !== undefined && `${d.latency_ms} ms`}
                  </td>
                  <td>
                    <button type="button" className="secondary" disabled={!canWrite} onClick={() => replay.mutate(d.id)}>
                      Replay
                    </button>
                  </td>
                </tr>
              ))}
            </Table>
          )
        }
      </Query>
      <MoreButton query={deliveries} label="Older deliveries" />
    </>
  );
}

export default function Webhooks() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const [secret, setSecret] = useState<string | null>(null);
  const [shown, setShown] = useState<string | null>(null);
  const endpoints = useQuery({ queryKey: ['webhooks', tenant.slug], queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/webhooks', { params: { path } })) });
  const refresh = () => client.invalidateQueries({ queryKey: ['webhooks', tenant.slug] });
  const form = useForm<NewEndpoint>({ defaultValues: { url: '', description: '', events: DEFAULT_EVENTS, idle_minutes: 30 } });
  const create = useMutation({
    mutationFn: (body: NewEndpoint) => unwrap(api.POST('/api/v1/tenants/{tenant}/webhooks', { params: { path }, body })),
    onSuccess: (created) => {
      setSecret(created.secret);
      form.reset();
      void refresh();
    },
  });
  const rotate = useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/v1/tenants/{tenant}/webhooks/{id}/rotate-secret', { params: { path: { ...path, id } } })),
    onSuccess: (answer) => setSecret(answer.secret ?? null),
  });
  const test = useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/v1/tenants/{tenant}/webhooks/{id}/test', { params: { path: { ...path, id } } })),
    onSuccess: (_, id) => {
      setShown(id);
      // A failing endpoint's next try moves to now.
      void refresh();
      void client.invalidateQueries({ queryKey: ['deliveries', tenant.slug, id] });
    },
  });
  const toggle = useMutation({
    mutationFn: ({ id, enabled }: { id: string; enabled: boolean }) =>
      unwrap(api.PATCH('/api/v1/tenants/{tenant}/webhooks/{id}', { params: { path: { ...path, id } }, body: { enabled } })),
    onSuccess: () => void refresh(),
  });
  const remove = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tenants/{tenant}/webhooks/{id}', { params: { path: { ...path, id } } })),
    onSuccess: () => void refresh(),
  });
  const error = create.error instanceof ApiError ? create.error : null;
  const canWrite = tenant.can('webhooks:write');
  return (
    <Page title="Webhooks">
      <p className="hint">
        Kithost POSTs events to your endpoints, signed as the Standard Webhooks specification says (<code>webhook-id</code>,{' '}
        <code>webhook-timestamp</code>, <code>webhook-signature</code>), retrying for up to a day.
      </p>
      <ReadOnlyNote canWrite={canWrite} />
      <form className="card" onSubmit={form.handleSubmit((body) => create.mutate(body))} noValidate>
        <h2>New endpoint</h2>
        <Field label="URL" error={form.formState.errors.url?.message ?? error?.fieldError('url')}>
          {(props) => <input {...props} type="url" disabled={!canWrite} placeholder="https://example.com/kithost" {...form.register('url', { required: 'Enter the HTTPS URL.' })} />}
        </Field>
        <Field label="Description" error={error?.fieldError('description')}>
          {(props) => <input {...props} disabled={!canWrite} {...form.register('description')} />}
        </Field>
        <fieldset className="group">
          <legend>Events</legend>
          {EVENTS.map((event) => (
            <label key={event} className="check">
              <input type="checkbox" value={event} disabled={!canWrite} {...form.register('events')} /> <code>{event}</code>
            </label>
          ))}
          {error?.fieldError('events') && (
            <p className="error" role="alert">
              {error.fieldError('events')}
            </p>
          )}
        </fieldset>
        <Field
          label="Idle after (minutes)"
          hint="conversation.idle is sent once a thread has had no message for this long."
          error={error?.fieldError('idle_minutes')}
        >
          {(props) => <input {...props} type="number" min={1} max={10080} disabled={!canWrite} {...form.register('idle_minutes', { valueAsNumber: true })} />}
        </Field>
        <button type="submit" disabled={!canWrite || create.isPending}>
          Add endpoint
        </button>
        <ProblemAlert error={create.error} shown={['url', 'description', 'events', 'idle_minutes']} />
      </form>
      {secret && <SecretOnce title="The endpoint's signing secret." secret={secret} onDone={() => setSecret(null)} />}
      <Query query={endpoints} what="endpoints">
        {(list) =>
          list.length === 0 ? (
            <Empty>No endpoints yet.</Empty>
          ) : (
            <ul className="plain-list">
              {list.map((e) => (
                <li key={e.id} className="card">
                  <div className="row spread">
                    <span>
                      <code>{e.url}</code> {e.enabled ? '' : <span className="badge warn">disabled</span>}
                      {e.failing_since && <span className="badge warn">failing since {formatDate(e.failing_since)}</span>}
                      {e.slow_since && <span className="badge warn">slow since {formatDate(e.slow_since)}</span>}
                      <NextTry endpoint={e} />
                      {e.waiting_turn && <span className="badge">waiting its turn</span>}
                    </span>
                    <span className="row">
                      <button
                        type="button"
                        className="secondary"
                        disabled={!canWrite}
                        aria-describedby={e.failing_since ? `test-hint-${e.id}` : undefined}
                        onClick={() => test.mutate(e.id)}
                      >
                        Send a test
                      </button>
                      <ConfirmButton
                        className="secondary"
                        disabled={!canWrite}
                        action="Rotate secret"
                        question={`Give ${e.url} a new signing secret? For 24 hours deliveries carry both signatures; then only the new secret's, so your receiver must switch to it.`}
                        onConfirm={() => rotate.mutate(e.id)}
                      >
                        Rotate secret
                      </ConfirmButton>
                      <button type="button" className="secondary" disabled={!canWrite} onClick={() => toggle.mutate({ id: e.id, enabled: !e.enabled })}>
                        {e.enabled ? 'Disable' : 'Enable'}
                      </button>
                      <button type="button" className="secondary" onClick={() => setShown(shown === e.id ? null : e.id)}>
                        Deliveries
                      </button>
                      <ConfirmButton
                        disabled={!canWrite}
                        aria-label={`Delete ${e.url}`}
                        action="Delete endpoint"
                        question={`Delete the endpoint ${e.url}? It gets no more events, and its delivery log goes with it.`}
                        onConfirm={() => remove.mutate(e.id)}
                      >
                        Delete
                      </ConfirmButton>
                    </span>
                  </div>
                  {e.failing_since ? (
                    <p className="hint" id={`test-hint-${e.id}`}>
                      While it fails, one delivery at a time is attempted, each after a rest; a test or a replay is tried at once.
                    </p>
                  ) : (
                    e.slow_since && (
                      <p className="hint">
                        While it answers slowly (over 2 s), one delivery at a time is attempted, the next within seconds of the one under way ending; the others wait their turn. Your slow endpoints take one delivery at a time all together: while another one's is under way, this one is waiting its turn.
                      </p>
                    )
                  )}
                  <p className="muted">
                    {e.description} · {e.events.join(', ')}
                  </p>
                  {shown === e.id && <Deliveries id={e.id} />}
                </li>
              ))}
            </ul>
          )
        }
      </Query>
      <ProblemAlert error={rotate.error ?? test.error ?? toggle.error ?? remove.error} />
    </Page>
  );
}
