// Knowledge bases: create one, upload documents (processed in the background), delete.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { api, ApiError, unwrap } from '../api/client';
import { ConfirmButton } from '../confirm';
import { useTenant } from '../tenant';
import { Empty, Field, formatDate, Page, ProblemAlert, Query, ReadOnlyNote } from '../ui';

function Base({ id }: { id: string }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug, id };
  const base = useQuery({
    queryKey: ['knowledge-base', tenant.slug, id],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/knowledge-bases/{id}', { params: { path } })),
    refetchInterval: (query) => (query.state.data?.processing ? 3000 : false),
  });
  const [file, setFile] = useState<File | null>(null);
  const refresh = () => {
    void client.invalidateQueries({ queryKey: ['knowledge-base', tenant.slug, id] });
    void client.invalidateQueries({ queryKey: ['knowledge-bases', tenant.slug] });
  };
  const upload = useMutation({
    mutationFn: (chosen: File) =>
      unwrap(
        api.POST('/api/v1/tenants/{tenant}/knowledge-bases/{id}/documents', {
          params: { path },
          body: { file: chosen as unknown as string },
          bodySerializer: () => {
            const data = new FormData();
            data.append('file', chosen);
            return data;
          },
        }),
      ),
    onSuccess: refresh,
  });
  const remove = useMutation({
    mutationFn: (document_id: string) =>
      unwrap(api.DELETE('/api/v1/tenants/{tenant}/knowledge-bases/{id}/documents/{document_id}', { params: { path: { ...path, document_id } } })),
    onSuccess: () => {
      upload.reset();
      refresh();
    },
  });
  const canWrite = tenant.can('knowledge:write');
  return (
    <Query query={base} what="the knowledge base">
      {(b) => (
        <div className="card">
          <h2>{b.name}</h2>
          {b.description && <p>{b.description}</p>}
          <form
            className="inline-form"
            onSubmit={(event) => {
              event.preventDefault();
              if (file) upload.mutate(file);
            }}
          >
            <Field label="Upload a document" hint="PDF, Markdown, HTML, plain text or DOCX.">
              {(props) => <input
                  {...props}
                  type="file"
                  disabled={!canWrite}
                  onChange={(e) => {
                    upload.reset();
                    setFile(e.target.files?.[0] ?? null);
                  }}
                />}
            </Field>
            <button type="submit" disabled={!canWrite || !file || upload.isPending}>
              Upload
            </button>
          </form>
          <ProblemAlert error={upload.error ?? remove.error} />
          {b.files.length === 0 ? (
            <Empty>No documents yet.</Empty>
          ) : (
            <ul className="plain-list">
              {b.files.map((d) => (
                <li key={d.id} className="row">
                  <span>
                    {d.filename} · {Math.ceil(d.size_bytes / 1024)} KB · <span className={`badge ${d.status === 'failed' ? 'warn' : ''}`}>{d.status}</span>
                    {d.failure_reason && ` — ${d.failure_reason}`} · {formatDate(d.created_at)}
                  </span>
                  <ConfirmButton
                    disabled={!canWrite}
                    aria-label={`Delete ${d.filename}`}
                    action="Delete document"
                    question={`Delete the document ${d.filename}? It is removed from OpenAI too, and agents stop finding it.`}
                    onConfirm={() => remove.mutate(d.id)}
                  >
                    Delete
                  </ConfirmButton>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </Query>
  );
}

export default function Knowledge() {
  const tenant = useTenant();
  const client = useQueryClient();
  const path = { tenant: tenant.slug };
  const [shown, setShown] = useState<string | null>(null);
  const bases = useQuery({
    queryKey: ['knowledge-bases', tenant.slug],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/knowledge-bases', { params: { path } })),
    // Documents are processed in the background: the counts change until none is left.
    refetchInterval: (query) => (query.state.data?.some((b) => b.processing > 0) ? 3000 : false),
  });
  const form = useForm<{ name: string; description: string }>({ defaultValues: { name: '', description: '' } });
  const create = useMutation({
    mutationFn: (body: { name: string; description: string }) => unwrap(api.POST('/api/v1/tenants/{tenant}/knowledge-bases', { params: { path }, body })),
    onSuccess: (created) => {
      form.reset();
      setShown(created.id);
      void client.invalidateQueries({ queryKey: ['knowledge-bases', tenant.slug] });
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tenants/{tenant}/knowledge-bases/{id}', { params: { path: { ...path, id } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ['knowledge-bases', tenant.slug] }),
  });
  const error = create.error instanceof ApiError ? create.error : null;
  const canWrite = tenant.can('knowledge:write');
  return (
    <Page title="Knowledge">
      <p className="hint">Documents your agents search (the Agent tab's tools). They are indexed with your OpenAI key.</p>
      <ReadOnlyNote canWrite={canWrite} />
      <form className="card" onSubmit={form.handleSubmit((body) => create.mutate(body))} noValidate>
        <h2>New knowledge base</h2>
        <Field label="Name" error={form.formState.errors.name?.message ?? error?.fieldError('name')}>
          {(props) => <input {...props} disabled={!canWrite} {...form.register('name', { required: 'Name it.' })} />}
        </Field>
        <Field label="Description" error={error?.fieldError('description')}>
          {(props) => <input {...props} disabled={!canWrite} {...form.register('description')} />}
        </Field>
        <button type="submit" disabled={!canWrite || create.isPending}>
          Create
        </button>
        <ProblemAlert error={create.error} shown={['name', 'description']} />
      </form>
      <Query query={bases} what="knowledge bases">
        {(list) =>
          list.length === 0 ? (
            <Empty>No knowledge bases yet.</Empty>
          ) : (
            <ul className="plain-list">
              {list.map((b) => (
                <li key={b.id} className="row card">
                  <button type="button" className="link" onClick={() => setShown(b.id)}>
                    {b.name}
                  </button>
                  <span className="muted">
                    {b.documents} documents · {b.processing} processing · {b.failed} failed
                  </span>
                  <ConfirmButton
                    disabled={!canWrite}
                    aria-label={`Delete ${b.name}`}
                    action="Delete knowledge base"
                    question={`Delete the knowledge base ${b.name} and its ${b.documents} documents? They are removed from OpenAI too, and agents stop finding them.`}
                    onConfirm={() => remove.mutate(b.id)}
                  >
                    Delete
                  </ConfirmButton>
                </li>
              ))}
            </ul>
          )
        }
      </Query>
      <ProblemAlert error={remove.error} />
      {shown && <Base id={shown} />}
    </Page>
  );
}
