// The origins allowed to show the widget, checked as you type; a domain key per origin for
// the direct placement.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError, unwrap, type Schemas } from '../../api/client';
import { ConfirmButton } from '../../confirm';
import { useTenant } from '../../tenant';
import { Empty, Field, ProblemAlert, Query } from '../../ui';
import { originsKey, widgetKey } from './keys';

type Widget = Schemas['Widget'];
type Origin = Schemas['Origin'];

const ORIGIN = /^(https?):\/\/(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+(:\d{1,5})?$/i;

/** What is wrong with `value` as an origin, before asking the server. */
export function originProblem(value: string): string | undefined {
  const text = value.trim();
  if (!text) return undefined;
  if (/[/?#]/.test(text.replace(/^https?:\/\//i, ''))) return 'An origin has no path: only scheme, host and port.';
  if (!ORIGIN.test(text)) return 'Write it as https://host, https://host:port or https://*.domain.';
  if (text.startsWith('http://') && !/^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?$/i.test(text))
    return 'Plain http:// is only allowed for localhost unless the widget allows insecure origins.';
  return undefined;
}

function DomainKey({ widget, origin }: { widget: Widget; origin: Origin }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [value, setValue] = useState(origin.domain_key ?? '');
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PATCH('/api/v1/tenants/{tenant}/widgets/{id}/origins/{origin_id}', {
          params: { path: { tenant: tenant.slug, id: widget.id, origin_id: origin.id } },
          body: { domain_key: value || null },
        }),
      ),
    onSuccess: () => client.invalidateQueries({ queryKey: originsKey(tenant.slug, widget.id) }),
  });
  const error = save.error instanceof ApiError ? save.error.fieldError('domain_key') ?? save.error.message : undefined;
  return (
    <form
      className="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        save.mutate();
      }}
    >
      <Field label={`Domain key for ${origin.origin}`} error={error}>
        {(props) => <input {...props} value={value} placeholder="domain_pk_…" disabled={!tenant.can('widgets:write')} onChange={(e) => setValue(e.target.value)} />}
      </Field>
      <button type="submit" className="secondary" disabled={!tenant.can('widgets:write') || save.isPending}>
        Save key
      </button>
    </form>
  );
}

export default function Origins({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [origin, setOrigin] = useState('');
  const origins = useQuery({
    queryKey: originsKey(tenant.slug, widget.id),
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/widgets/{id}/origins', { params: { path: { tenant: tenant.slug, id: widget.id } } })),
  });
  const changed = () => {
    void client.invalidateQueries({ queryKey: originsKey(tenant.slug, widget.id) });
    void client.invalidateQueries({ queryKey: widgetKey(tenant.slug, widget.id) });
  };
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets/{id}/origins', {
          params: { path: { tenant: tenant.slug, id: widget.id } },
          body: { origin: origin.trim() },
        }),
      ),
    onSuccess: () => {
      setOrigin('');
      changed();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/tenants/{tenant}/widgets/{id}/origins/{origin_id}', { params: { path: { tenant: tenant.slug, id: widget.id, origin_id: id } } })),
    onSuccess: changed,
  });
  const canWrite = tenant.can('widgets:write');
  const typed = originProblem(origin);
  const serverError = add.error instanceof ApiError ? (add.error.fieldError('origin') ?? add.error.message) : undefined;
  const direct = widget.config.placement === 'direct';
  return (
    <>
      <p className="hint">
        Only pages of these origins may show the widget. <code>https://*.example.com</code> allows every subdomain of
        example.com (not example.com itself). Changes apply to visitors at once, without publishing.
      </p>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          if (!typed) add.mutate();
        }}
      >
        <Field label="Add an origin" error={typed ?? serverError}>
          {(props) => (
            <input {...props} value={origin} placeholder="https://www.example.com" disabled={!canWrite} onChange={(e) => setOrigin(e.target.value)} />
          )}
        </Field>
        <button type="submit" disabled={!canWrite || !origin || Boolean(typed) || add.isPending}>
          Add origin
        </button>
      </form>
      <Query query={origins} what="origins">
        {(list) =>
          list.length === 0 ? (
            <Empty>No origin yet: the widget shows nowhere until you add one.</Empty>
          ) : (
            <ul className="plain-list" aria-label="Allowed origins">
              {list.map((o) => (
                <li key={o.id} className="card">
                  <div className="row">
                    <code>{o.origin}</code>
                    {direct && !o.domain_key && (
                      <span className="badge warn" role="note">
                        No domain key: the direct placement cannot load ChatKit here
                      </span>
                    )}
                    <ConfirmButton
                      disabled={!canWrite}
                      aria-label={`Remove ${o.origin}`}
                      action="Remove origin"
                      question={`Remove ${o.origin}? Its pages stop showing the widget at once.`}
                      onConfirm={() => remove.mutate(o.id)}
                    >
                      Remove
                    </ConfirmButton>
                  </div>
                  {direct && <DomainKey widget={widget} origin={o} />}
                </li>
              ))}
            </ul>
          )
        }
      </Query>
      <ProblemAlert error={remove.error} />
    </>
  );
}
