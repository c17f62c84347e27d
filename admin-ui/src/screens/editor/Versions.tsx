// Publishing with a note; the published versions, each with its difference from the draft;
// restoring one into the draft.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { diffJson } from 'diff';
import { useState } from 'react';
import { api, ApiError, ifMatch, unwrap, type Schemas } from '../../api/client';
import { ConfirmButton } from '../../confirm';
import { useTenant } from '../../tenant';
import { Empty, Field, formatDate, ProblemAlert, Query, Table } from '../../ui';
import { versionsKey, widgetKey } from './keys';

type Widget = Schemas['Widget'];

function Diff({ before, after }: { before: object; after: object }) {
  const parts = diffJson(before, after);
  if (parts.every((p) => !p.added && !p.removed)) return <p className="muted">The draft is the same as this version.</p>;
  return (
    <pre className="diff" tabIndex={0} role="region" aria-label="Differences: lines marked - are in the version, + in the draft">
      {parts.map((part, i) => (
        <span key={i} className={part.added ? 'added' : part.removed ? 'removed' : 'same'}>
          {part.value
            .replace(/\n$/, '')
            .split('\n')
            .map((line) => `${part.added ? '+ ' : part.removed ? '- ' : '  '}${line}`)
            .join('\n') + '\n'}
        </span>
      ))}
    </pre>
  );
}

/** A change refused because the widget changed since it was read (412): the latest, to try
 * again on. */
function Stale({ widget, error, onLoaded }: { widget: Widget; error: unknown; onLoaded: () => void }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const reload = useMutation({
    mutationFn: () => client.invalidateQueries({ queryKey: widgetKey(tenant.slug, widget.id) }),
    onSuccess: onLoaded,
  });
  if (!(error instanceof ApiError && error.status === 412)) return <ProblemAlert error={error} />;
  return (
    <div className="alert" role="alert">
      <p>Someone changed this widget after this page loaded it. Load the latest, check it, then try again.</p>
      <button type="button" disabled={reload.isPending} onClick={() => reload.mutate()}>
        Load the latest
      </button>
    </div>
  );
}

function VersionDetail({ widget, number, onRestored }: { widget: Widget; number: number; onRestored: () => void }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const version = useQuery({
    queryKey: [...versionsKey(tenant.slug, widget.id), number],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/widgets/{id}/versions/{number}', {
          params: { path: { tenant: tenant.slug, id: widget.id, number } },
        }),
      ),
  });
  const restore = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets/{id}/versions/{number}/restore', {
          params: { path: { tenant: tenant.slug, id: widget.id, number }, header: ifMatch(widget.revision) },
        }),
      ),
    onSuccess: (restored) => {
      onRestored();
      client.setQueryData(widgetKey(tenant.slug, widget.id), restored);
    },
  });
  return (
    <Query query={version} what={`version ${number}`}>
      {(v) => (
        <div className="card">
          <h3>
            Version {v.number} against the draft
          </h3>
          <Diff before={v.config} after={widget.config} />
          <ConfirmButton
            disabled={!tenant.can('widgets:write') || restore.isPending}
            action={`Restore version ${v.number}`}
            question={`Restore version ${v.number} into the draft? It replaces the draft, and any changes you have not saved.`}
            onConfirm={() => restore.mutate()}
          >
            Restore version {v.number} into the draft
          </ConfirmButton>
          {restore.isSuccess && <p role="status">Restored into the draft. Publish to show it to visitors.</p>}
          <Stale widget={widget} error={restore.error} onLoaded={() => restore.reset()} />
        </div>
      )}
    </Query>
  );
}

export default function Versions({ widget, onRestored }: { widget: Widget; onRestored: () => void }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [note, setNote] = useState('');
  const [shown, setShown] = useState<number | null>(null);
  const versions = useQuery({
    queryKey: versionsKey(tenant.slug, widget.id),
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/widgets/{id}/versions', { params: { path: { tenant: tenant.slug, id: widget.id }, query: { limit: 100 } } }),
      ),
  });
  const publish = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/widgets/{id}/publish', {
          params: { path: { tenant: tenant.slug, id: widget.id }, header: ifMatch(widget.revision) },
          body: { note },
        }),
      ),
    onSuccess: (published) => {
      setNote('');
      client.setQueryData(widgetKey(tenant.slug, widget.id), published);
      void client.invalidateQueries({ queryKey: versionsKey(tenant.slug, widget.id) });
    },
  });
  const canWrite = tenant.can('widgets:write');
  return (
    <>
      <form
        className="card"
        onSubmit={(event) => {
          event.preventDefault();
          publish.mutate();
        }}
      >
        <h2>Publish the draft</h2>
        <p className="hint">Visitors see the published version; saving the draft changes nothing for them until you publish.</p>
        <Field label="Note (what changes)">
          {(props) => <input {...props} value={note} maxLength={500} disabled={!canWrite} onChange={(e) => setNote(e.target.value)} />}
        </Field>
        <button type="submit" disabled={!canWrite || publish.isPending}>
          Publish
        </button>
        {publish.isSuccess && <p role="status">Published as version {publish.data.published_version}.</p>}
        <Stale widget={widget} error={publish.error} onLoaded={() => publish.reset()} />
      </form>
      <h2>Published versions</h2>
      <Query query={versions} what="versions">
        {(list) =>
          list.length === 0 ? (
            <Empty>Nothing published yet.</Empty>
          ) : (
            <Table columns={['Version', 'Published', 'Note', { hidden: 'Compare' }]}>
                  {list.map((v) => (
                    <tr key={v.number}>
                      <td>
                        v{v.number}
                        {v.number === widget.published_version && <span className="badge">live</span>}
                      </td>
                      <td>{formatDate(v.created_at)}</td>
                      <td>{v.note || <span className="muted">—</span>}</td>
                      <td>
                        <button type="button" className="secondary" onClick={() => setShown(v.number)}>
                          Compare with the draft
                        </button>
                      </td>
                    </tr>
                  ))}
                </Table>
          )
        }
      </Query>
      {shown !== null && <VersionDetail widget={widget} number={shown} onRestored={onRestored} />}
    </>
  );
}
