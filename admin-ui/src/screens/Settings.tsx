// The tenant's settings: its OpenAI key (write-only), how long analytics and chats are kept,
// whether editors read conversations, deleting one end user's data, and deleting the tenant.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError, unwrap } from '../api/client';
import { ME, useMe } from '../auth';
import { ConfirmButton, useConfirm } from '../confirm';
import { useTenant } from '../tenant';
import { Field, Page, ProblemAlert, Query, ReadOnlyNote } from '../ui';

function OpenAIKey() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const [value, setValue] = useState('');
  const key = useQuery({ queryKey: ['openai-key', tenant.slug], queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/openai-key', { params: { path } })) });
  const save = useMutation({
    mutationFn: () => unwrap(api.PUT('/api/v1/tenants/{tenant}/openai-key', { params: { path }, body: { api_key: value } })),
    onSuccess: () => {
      setValue('');
      void client.invalidateQueries({ queryKey: ['openai-key', tenant.slug] });
    },
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/v1/tenants/{tenant}/openai-key', { params: { path } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ['openai-key', tenant.slug] }),
  });
  const canWrite = tenant.can('widgets:write');
  const error = save.error instanceof ApiError ? save.error : null;
  return (
    <section className="card" aria-labelledby="openai-key">
      <h2 id="openai-key">OpenAI API key</h2>
      <Query query={key} what="the key's state">
        {(k) => <p>{k.configured ? `A key ending in …${k.last4} is set. It is never shown again.` : 'No key: widgets use the platform key, if there is one.'}</p>}
      </Query>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          save.mutate();
        }}
      >
        <Field label="New key" error={error?.fieldError('api_key')}>
          {(props) => <input {...props} type="password" autoComplete="off" value={value} disabled={!canWrite} onChange={(e) => setValue(e.target.value)} />}
        </Field>
        <button type="submit" disabled={!canWrite || !value || save.isPending}>
          Save key
        </button>
        {key.data?.configured && (
          <ConfirmButton
            disabled={!canWrite}
            action="Remove key"
            question={`Remove the OpenAI key ending in …${key.data.last4}? Widgets then answer with the platform's key, if there is one, or not at all.`}
            onConfirm={() => remove.mutate()}
          >
            Remove key
          </ConfirmButton>
        )}
      </form>
      <ProblemAlert error={save.error} shown={['api_key']} />
      <ProblemAlert error={remove.error} />
    </section>
  );
}

function Retention() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const settings = useQuery({
    queryKey: ['analytics-settings', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/analytics/settings', { params: { path } })),
  });
  // As typed (an empty box stays empty, not 0), until saved.
  const [days, setDays] = useState<string | null>(null);
  const [typo, setTypo] = useState<string | undefined>(undefined);
  const save = useMutation({
    mutationFn: (retention_days: number) => unwrap(api.PUT('/api/v1/tenants/{tenant}/analytics/settings', { params: { path }, body: { retention_days } })),
    onSuccess: (saved) => client.setQueryData(['analytics-settings', tenant.slug], saved),
  });
  const error = save.error instanceof ApiError ? save.error : null;
  const canWrite = tenant.can('members:write') && tenant.can('conversations:write');
  return (
    <section className="card" aria-labelledby="retention">
      <h2 id="retention">Data retention</h2>
      <Query query={settings} what="settings">
        {(s) => (
          <form
            className="inline-form"
            onSubmit={(event) => {
              event.preventDefault();
              const value = days === null ? s.retention_days : Number(days);
              if (days !== null && (days.trim() === '' || !Number.isInteger(value) || value < 1)) {
                setTypo('Enter a whole number of days, at least 1.');
                return;
              }
              setTypo(undefined);
              save.mutate(value);
            }}
          >
            <Field label="Keep raw events, error samples and chats for (days)" error={typo ?? error?.fieldError('retention_days')}>
              {(props) => (
                <input {...props} type="number" min={1} value={days ?? s.retention_days} disabled={!canWrite} onChange={(e) => setDays(e.target.value)} />
              )}
            </Field>
            <button type="submit" disabled={!canWrite || save.isPending}>
              Save
            </button>
            {save.isSuccess && <span role="status">Saved.</span>}
          </form>
        )}
      </Query>
      <ProblemAlert error={save.error} shown={['retention_days']} />
    </section>
  );
}

/** Whether editors read (and export) conversations; owners and admins always do, viewers never. */
function ConversationReaders() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const canRead = tenant.can('conversations:read');
  const settings = useQuery({
    queryKey: ['conversation-settings', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/conversations/settings', { params: { path } })),
    enabled: canRead,
  });
  const save = useMutation({
    mutationFn: (editors_may_read: boolean) =>
      unwrap(api.PUT('/api/v1/tenants/{tenant}/conversations/settings', { params: { path }, body: { editors_may_read } })),
    onSuccess: (saved) => {
      client.setQueryData(['conversation-settings', tenant.slug], saved);
      void client.invalidateQueries({ queryKey: ME });
    },
  });
  const canWrite = tenant.can('members:write');
  return (
    <section className="card" aria-labelledby="conversation-readers">
      <h2 id="conversation-readers">Who reads conversations</h2>
      <p className="hint">Owners and admins always read and export them; viewers never. Editors only when you allow it here.</p>
      {canRead ? (
        <Query query={settings} what="who reads conversations">
          {(s) => (
            <>
              <label className="check">
                <input
                  type="checkbox"
                  checked={s.editors_may_read}
                  disabled={!canWrite || save.isPending}
                  onChange={(e) => save.mutate(e.target.checked)}
                />{' '}
                Editors may read and export conversations
              </label>
              <ReadOnlyNote canWrite={canWrite} />
              {save.isSuccess && <span role="status">Saved.</span>}
            </>
          )}
        </Query>
      ) : (
        <p className="muted">Your role does not read conversations.</p>
      )}
      <ProblemAlert error={save.error} />
    </section>
  );
}

/** The shape of an end user id (the API checks the rest). */
const END_USER = /^[ua]:./;

function EndUserDeletion() {
  const tenant = useTenant();
  const [endUser, setEndUser] = useState('');
  const [typo, setTypo] = useState<string | undefined>(undefined);
  const confirm = useConfirm();
  const erase = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/tenants/{tenant}/analytics/end-user-deletions', { params: { path: { tenant: tenant.slug } }, body: { end_user: endUser.trim() } })),
  });
  const error = erase.error instanceof ApiError ? erase.error : null;
  const canWrite = tenant.can('members:write') && tenant.can('conversations:write');
  return (
    <section className="card" aria-labelledby="erasure">
      <h2 id="erasure">Delete an end user's data</h2>
      <p className="hint">Their events, error occurrences, chats and files, for a deletion request. It cannot be undone.</p>
      <form
        className="inline-form"
        onSubmit={async (event) => {
          event.preventDefault();
          // Checked before asking: a question about an id that cannot be one misleads.
          if (!END_USER.test(endUser.trim())) {
            setTypo('An end user id starts with u: (your user id) or a: (a device id).');
            return;
          }
          setTypo(undefined);
          if (await confirm({ action: 'Delete their data', question: `Delete every record of ${endUser.trim()}?` })) erase.mutate();
        }}
      >
        <Field label="End user id" hint="u:<your user id> or a:<device id>" error={typo ?? error?.fieldError('end_user')}>
          {(props) => <input {...props} value={endUser} disabled={!canWrite} onChange={(e) => setEndUser(e.target.value)} />}
        </Field>
        <button type="submit" className="danger" disabled={!canWrite || !endUser || erase.isPending}>
          Delete their data
        </button>
      </form>
      {erase.data && <p role="status">Deleted: {JSON.stringify(erase.data.removed)}</p>}
      <ProblemAlert error={erase.error} shown={['end_user']} />
    </section>
  );
}

function TenantDeletion() {
  const tenant = useTenant();
  const me = useMe().data;
  const client = useQueryClient();
  const navigate = useNavigate();
  const [confirm, setConfirm] = useState('');
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/v1/tenants/{tenant}', { params: { path: { tenant: tenant.slug }, query: { confirm } } })),
    onSuccess: async () => {
      await client.invalidateQueries({ queryKey: ME });
      void navigate('/', { replace: true });
    },
  });
  const error = remove.error instanceof ApiError ? remove.error : null;
  const canDelete = tenant.role === 'owner' || Boolean(me?.user.is_platform_admin);
  return (
    <section className="card" aria-labelledby="tenant-deletion">
      <h2 id="tenant-deletion">Delete this tenant</h2>
      <p className="hint">
        Its widgets stop answering at once, and its conversations, analytics, knowledge, webhooks, API clients and audit log are deleted; members keep
        their accounts. Owners only. It cannot be undone.
      </p>
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          remove.mutate();
        }}
      >
        <Field label={`Type ${tenant.slug} to confirm`} error={error?.fieldError('confirm')}>
          {(props) => <input {...props} value={confirm} autoComplete="off" disabled={!canDelete} onChange={(e) => setConfirm(e.target.value)} />}
        </Field>
        <button type="submit" className="danger" disabled={!canDelete || confirm !== tenant.slug || remove.isPending}>
          Delete the tenant
        </button>
      </form>
      <ProblemAlert error={remove.error} shown={['confirm']} />
    </section>
  );
}

export default function Settings() {
  return (
    <Page title="Settings">
      <OpenAIKey />
      <Retention />
      <ConversationReaders />
      <EndUserDeletion />
      <TenantDeletion />
    </Page>
  );
}
