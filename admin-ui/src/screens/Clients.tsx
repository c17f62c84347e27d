// API clients: create one (its secret shown once), revoke one.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { Empty, Field, formatDate, Page, ProblemAlert, Query, ReadOnlyNote, SecretOnce, Table } from '../ui';

type Scope = Schemas['Scope'];
const SCOPES: Scope[] = [
  'widgets:read',
  'widgets:write',
  'sessions:mint',
  'analytics:read',
  'members:read',
  'members:write',
  'clients:write',
  'knowledge:read',
  'knowledge:write',
  'conversations:read',
  'conversations:write',
  'webhooks:write',
];

export default function Clients() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const [created, setCreated] = useState<{ id: string; secret: string } | null>(null);
  const form = useForm<{ name: string; scopes: Scope[] }>({ defaultValues: { name: '', scopes: ['widgets:read', 'sessions:mint'] } });
  const clients = useQuery({ queryKey: ['clients', tenant.slug], queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/clients', { params: { path } })) });
  // The Team screen's query: who made a client is named by their address where it may be read.
  const members = useQuery({
    queryKey: ['members', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/members', { params: { path } })),
    enabled: tenant.can('members:read'),
  });
  const madeBy = (made: Schemas['Client']['created_by'], list: Schemas['Client'][]): string => {
    if (made === null) return '—';
    if (made.type === 'cli') return 'The command line';
    if (made.type === 'client') return `API client ${list.find((c) => c.client_id === made.id)?.name ?? made.id}`;
    const member = members.data?.find((m) => m.user_id === made.id);
    if (member) return member.email;
    return members.data ? 'A former member' : 'A member';
  };
  const create = useMutation({
    mutationFn: (body: { name: string; scopes: Scope[] }) => unwrap(api.POST('/api/v1/tenants/{tenant}/clients', { params: { path }, body })),
    onSuccess: (answer) => {
      setCreated({ id: answer.client.client_id, secret: answer.client_secret });
      form.reset();
      void client.invalidateQueries({ queryKey: ['clients', tenant.slug] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tenants/{tenant}/clients/{id}', { params: { path: { ...path, id } } })),
    onSettled: () => client.invalidateQueries({ queryKey: ['clients', tenant.slug] }),
  });
  const error = create.error instanceof ApiError ? create.error : null;
  const canWrite = tenant.can('clients:write');
  return (
    <Page title="API clients">
      <p className="hint">
        Your backend gets access tokens with a client's id and secret (<code>POST /oauth/token</code>, client credentials) and calls the
        REST API with the scopes you grant here.
      </p>
      <ReadOnlyNote canWrite={canWrite} />
      <form className="card" onSubmit={form.handleSubmit((body) => create.mutate(body))} noValidate>
        <h2>New client</h2>
        <Field label="Name" error={form.formState.errors.name?.message ?? error?.fieldError('name')}>
          {(props) => <input {...props} disabled={!canWrite} {...form.register('name', { required: 'Name the client.' })} />}
        </Field>
        <fieldset className="group">
          <legend>Scopes</legend>
          <div className="checks">
            {SCOPES.map((scope) => (
              <label key={scope} className="check">
                <input type="checkbox" value={scope} disabled={!canWrite} {...form.register('scopes')} /> <code>{scope}</code>
              </label>
            ))}
          </div>
          {error?.fieldError('scopes') && (
            <p className="error" role="alert">
              {error.fieldError('scopes')}
            </p>
          )}
        </fieldset>
        <button type="submit" disabled={!canWrite || create.isPending}>
          Create client
        </button>
        <ProblemAlert error={create.error} shown={['name', 'scopes']} />
      </form>
      {created && <SecretOnce title={`Client ${created.id} created.`} secret={created.secret} onDone={() => setCreated(null)} />}
      <Query query={clients} what="API clients">
        {(list) =>
          list.length === 0 ? (
            <Empty>No API clients yet.</Empty>
          ) : (
            <Table columns={['Name', 'Client id', 'Scopes', 'Made by', 'Last used', 'Status']}>
                  {list.map((c) => (
                    <tr key={c.id}>
                      <td>{c.name}</td>
                      <td>
                        <code>{c.client_id}</code>
                      </td>
                      <td>{c.scopes.join(', ')}</td>
                      <td>{madeBy(c.created_by, list)}</td>
                      <td>{formatDate(c.last_used_at)}</td>
                      <td>
                        {c.revoked_at ? (
                          <span className="muted">Revoked {formatDate(c.revoked_at)}</span>
                        ) : (
                          <ConfirmButton
                            disabled={!canWrite}
                            aria-label={`Revoke ${c.name}`}
                            action="Revoke API client"
                            question={`Revoke the API client ${c.name}? Its tokens stop working at once, and the pending invitations it made are withdrawn.`}
                            onConfirm={() => revoke.mutate(c.id)}
                          >
                            Revoke
                          </ConfirmButton>
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
          )
        }
      </Query>
      <ProblemAlert error={revoke.error} />
    </Page>
  );
}
