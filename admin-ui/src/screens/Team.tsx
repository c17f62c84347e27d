// Members and roles; invitations (the link to copy); revoking them.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { api, ApiError, unwrap, type Schemas } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { CopyButton, Empty, Field, formatDate, Page, ProblemAlert, Query, ReadOnlyNote, Table } from '../ui';

type Role = Schemas['Role'];
const ROLES: Role[] = ['owner', 'admin', 'editor', 'viewer'];

function Invite({ pending }: { pending: Schemas['Invitation'][] }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [sent, setSent] = useState<{ link: string; email: string; replaced: boolean } | null>(null);
  const form = useForm<{ email: string; role: Role }>({ defaultValues: { email: '', role: 'editor' } });
  const pendingFor = (email: string) => pending.find((i) => i.email.toLowerCase() === email.trim().toLowerCase());
  const invite = useMutation({
    mutationFn: (body: { email: string; role: Role }) => unwrap(api.POST('/api/v1/tenants/{tenant}/invitations', { params: { path: { tenant: tenant.slug } }, body })),
    onSuccess: (created, body) => {
      setSent({ link: created.accept_url, email: created.invitation.email, replaced: pendingFor(body.email) !== undefined });
      // The role stays as chosen: the next invitation is often of the same kind.
      form.reset({ email: '', role: body.role });
      void client.invalidateQueries({ queryKey: ['invitations', tenant.slug] });
    },
  });
  const replaces = pendingFor(form.watch('email'));
  const error = invite.error instanceof ApiError ? invite.error : null;
  const canWrite = tenant.can('members:write');
  return (
    <form className="card" onSubmit={form.handleSubmit((body) => invite.mutate(body))} noValidate>
      <h2>Invite someone</h2>
      <div className="row">
        <Field
          label="Email"
          hint={replaces && `${replaces.email} has a pending invitation: inviting again replaces it, and the link sent before stops working.`}
          error={form.formState.errors.email?.message ?? error?.fieldError('email')}
        >
          {(props) => <input {...props} type="email" disabled={!canWrite} {...form.register('email', { required: 'Enter an email.' })} />}
        </Field>
        <Field label="Role" error={error?.fieldError('role')}>
          {(props) => (
            <select {...props} disabled={!canWrite} {...form.register('role')}>
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          )}
        </Field>
        <button type="submit" disabled={!canWrite || invite.isPending}>
          Invite
        </button>
      </div>
      <ProblemAlert error={invite.error} shown={['email', 'role']} />
      {sent && (
        <div className="secret" role="status">
          <p>
            Send this link to {sent.email} (it is shown only now).
            {sent.replaced && ' It replaces their earlier invitation, whose link no longer works.'}
          </p>
          <div className="row">
            <code className="secret-value" data-testid="invite-link">
              {sent.link}
            </code>
            <CopyButton text={sent.link} />
          </div>
        </div>
      )}
    </form>
  );
}

export default function Team() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const members = useQuery({ queryKey: ['members', tenant.slug], queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/members', { params: { path } })) });
  const invitations = useQuery({
    queryKey: ['invitations', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/invitations', { params: { path } })),
  });
  const changeRole = useMutation({
    mutationFn: ({ user, role }: { user: string; role: Role }) =>
      unwrap(api.PATCH('/api/v1/tenants/{tenant}/members/{user_id}', { params: { path: { ...path, user_id: user } }, body: { role } })),
    onSettled: () => client.invalidateQueries({ queryKey: ['members', tenant.slug] }),
  });
  const removeMember = useMutation({
    mutationFn: (user: string) => unwrap(api.DELETE('/api/v1/tenants/{tenant}/members/{user_id}', { params: { path: { ...path, user_id: user } } })),
    onSettled: () => client.invalidateQueries({ queryKey: ['members', tenant.slug] }),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tenants/{tenant}/invitations/{id}', { params: { path: { ...path, id } } })),
    onSettled: () => client.invalidateQueries({ queryKey: ['invitations', tenant.slug] }),
  });
  const canWrite = tenant.can('members:write');
  return (
    <Page title="Team">
      <ReadOnlyNote canWrite={canWrite} />
      <Invite pending={invitations.data ?? []} />
      <h2>Members</h2>
      <Query query={members} what="members">
        {(list) => (
          <Table columns={['Name', 'Email', 'Role', 'Since', { hidden: 'Actions' }]}>
                {list.map((m) => (
                  <tr key={m.user_id}>
                    <td>{m.name || '—'}</td>
                    <td>{m.email}</td>
                    <td>
                      <select
                        aria-label={`Role of ${m.email}`}
                        value={m.role}
                        disabled={!canWrite}
                        onChange={(e) => changeRole.mutate({ user: m.user_id, role: e.target.value as Role })}
                      >
                        {ROLES.map((r) => (
                          <option key={r}>{r}</option>
                        ))}
                      </select>
                    </td>
                    <td>{formatDate(m.created_at)}</td>
                    <td>
                      <ConfirmButton
                        disabled={!canWrite}
                        aria-label={`Remove ${m.email}`}
                        action="Remove member"
                        question={`Remove ${m.email} from ${tenant.name}? They lose access at once.`}
                        onConfirm={() => removeMember.mutate(m.user_id)}
                      >
                        Remove
                      </ConfirmButton>
                    </td>
                  </tr>
                ))}
              </Table>
        )}
      </Query>
      <ProblemAlert error={changeRole.error ?? removeMember.error} />
      <h2>Pending invitations</h2>
      <Query query={invitations} what="invitations">
        {(list) =>
          list.length === 0 ? (
            <Empty>No pending invitations.</Empty>
          ) : (
            <ul className="plain-list">
              {list.map((i) => (
                <li key={i.id} className="row card">
                  <span>
                    {i.email} as <strong>{i.role}</strong>, until {formatDate(i.expires_at)}
                  </span>
                  <ConfirmButton
                    disabled={!canWrite}
                    aria-label={`Revoke the invitation of ${i.email}`}
                    action="Revoke invitation"
                    question={`Revoke the invitation of ${i.email}? Its link stops working.`}
                    onConfirm={() => revoke.mutate(i.id)}
                  >
                    Revoke
                  </ConfirmButton>
                </li>
              ))}
            </ul>
          )
        }
      </Query>
      <ProblemAlert error={revoke.error} />
    </Page>
  );
}
