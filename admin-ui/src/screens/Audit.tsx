// The audit log: who did what, when, filtered by action and time, a page at a time.
import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import { useTenant } from '../tenant';
import { Empty, formatDate, Loading, MoreButton, Page, ProblemAlert, Table } from '../ui';

export default function Audit() {
  const tenant = useTenant();
  const [action, setAction] = useState('');
  const [since, setSince] = useState('');
  const entries = useInfiniteQuery({
    queryKey: ['audit', tenant.slug, action, since],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/tenants/{tenant}/audit', {
          params: {
            path: { tenant: tenant.slug },
            query: {
              limit: 50,
              ...(action ? { action } : {}),
              ...(since ? { since: new Date(since).toISOString() } : {}),
              ...(pageParam ? { cursor: pageParam } : {}),
            },
          },
        }),
      ),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const list = entries.data?.pages.flatMap((p) => p.entries) ?? [];
  return (
    <Page title="Audit log">
      <div className="filters">
        <label className="filter">
          Action
          <input value={action} placeholder="widget.published" onChange={(e) => setAction(e.target.value.trim())} />
        </label>
        <label className="filter">
          Since
          <input type="date" value={since} onChange={(e) => setSince(e.target.value)} />
        </label>
      </div>
      {entries.isPending ? (
        <Loading what="the audit log" />
      ) : entries.error ? (
        <ProblemAlert error={entries.error} />
      ) : list.length === 0 ? (
        <Empty>No entries match.</Empty>
      ) : (
        <Table columns={['When', 'Who', 'Action', 'Target', 'Details']}>
              {list.map((e) => (
                <tr key={e.id}>
                  <td>{formatDate(e.created_at)}</td>
                  <td>
                    {e.actor_type}
                    {e.actor_id && <span className="muted"> {e.actor_id}</span>}
                  </td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td>{e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '—'}</td>
                  <td>
                    <details>
                      <summary>Data</summary>
                      <pre className="code" tabIndex={0} role="region" aria-label={`Data of ${e.action}`}>
                        {JSON.stringify(e.data, null, 2)}
                      </pre>
                    </details>
                  </td>
                </tr>
              ))}
            </Table>
      )}
      <MoreButton query={entries} label="Older entries" />
    </Page>
  );
}
