// The error log: client error groups with counts, affected end users, the fix hint and a
// sample; resolving a group (a later occurrence reopens it).
import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap, type Schemas } from '../api/client';
import { useTenant } from '../tenant';
import { Empty, formatDate, Loading, MoreButton, Page, ProblemAlert } from '../ui';
import { WidgetFilter } from './Analytics';

type Status = Schemas['ErrorStatus'];

export default function Errors() {
  const tenant = useTenant();
  const client = useQueryClient();
  const [status, setStatus] = useState<Status>('open');
  const [widget, setWidget] = useState('');
  const key = ['errors', tenant.slug, status, widget];
  const groups = useInfiniteQuery({
    queryKey: key,
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/analytics/errors', {
          params: { path: { tenant: tenant.slug }, query: { status, limit: 50, ...(widget ? { widget } : {}), ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const resolve = useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/v1/tenants/{tenant}/analytics/errors/{id}/resolve', { params: { path: { tenant: tenant.slug, id } } })),
    onSuccess: () => client.invalidateQueries({ queryKey: ['errors', tenant.slug] }),
  });
  const list = groups.data?.pages.flatMap((p) => p.groups) ?? [];
  return (
    <Page title="Errors">
      <div className="filters">
        <label className="filter">
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value as Status)}>
            <option value="open">Open</option>
            <option value="resolved">Resolved</option>
          </select>
        </label>
        <WidgetFilter value={widget} onChange={setWidget} />
      </div>
      {groups.isPending ? (
        <Loading what="errors" />
      ) : groups.error ? (
        <ProblemAlert error={groups.error} />
      ) : list.length === 0 ? (
        <Empty>No {status} errors. Errors your visitors' browsers hit show up here, grouped.</Empty>
      ) : (
        <ul className="plain-list" aria-label="Error groups">
          {list.map((g) => (
            <li key={g.id} className="card error-group">
              <div className="row spread">
                <h2 className="h3">
                  <code>{g.kind}</code> {g.message}
                </h2>
                <button type="button" className="secondary" disabled={!tenant.can('widgets:write') || g.status === 'resolved'} onClick={() => resolve.mutate(g.id)}>
                  Resolve
                </button>
              </div>
              <p>
                <strong>{g.count}</strong> times · <strong>{g.affected_end_users}</strong> end users · last {formatDate(g.last_seen)} · first{' '}
                {formatDate(g.first_seen)}
              </p>
              {g.hint && <p className="hint-box">How to fix: {g.hint}</p>}
              <details>
                <summary>Sample</summary>
                <pre className="code" tabIndex={0} role="region" aria-label={`Sample of ${g.kind} ${g.message}`}>
                  {JSON.stringify(g.sample, null, 2)}
                </pre>
              </details>
            </li>
          ))}
        </ul>
      )}
      <MoreButton query={groups} label="Load more" />
      <ProblemAlert error={resolve.error} />
    </Page>
  );
}
