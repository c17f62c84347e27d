// Analytics: a date range, time zone and widget filter; metrics over time, the funnel,
// latency percentiles and feedback; the CSV export.
import { useQueries, useQuery } from '@tanstack/react-query';
import { lazy, Suspense } from 'react';
import { api, unwrap, type Schemas } from '../api/client';
import { useTenant } from '../tenant';
import { FindSelect, Loading, Page, ProblemAlert, Query, useUrlState } from '../ui';
import type { Row } from './Charts';

const Charts = lazy(() => import('./Charts'));

type Metric = Schemas['Metric'];

const METRICS: { key: Metric; label: string }[] = [
  { key: 'loads', label: 'Loads' },
  { key: 'opens', label: 'Opens' },
  { key: 'sessions', label: 'Sessions' },
  { key: 'messages', label: 'Messages' },
  { key: 'responses', label: 'Responses' },
  { key: 'tokens_in', label: 'Tokens in' },
  { key: 'tokens_out', label: 'Tokens out' },
  { key: 'client_errors', label: 'Errors' },
  { key: 'feedback_up', label: 'Thumbs up' },
  { key: 'feedback_down', label: 'Thumbs down' },
  { key: 'guardrails_tripped', label: 'Guardrails tripped' },
];

export function WidgetFilter({ value, onChange }: { value: string; onChange: (id: string) => void }) {
  const tenant = useTenant();
  return (
    <FindSelect
      label="Widget"
      findLabel="Find a widget"
      className="filter"
      // Not the widget list's key (that one pages): a list under it would be read as pages.
      queryKey={['widgets', tenant.slug, 'filter']}
      find={async (q, limit) => {
        const query = { limit, ...(q ? { q } : {}) };
        const found = await unwrap(api.GET('/api/v1/tenants/{tenant}/widgets', { params: { path: { tenant: tenant.slug }, query } }));
        return found.map((w) => ({ value: w.id, label: w.name }));
      }}
      value={value}
      first={{ value: '', label: 'All widgets' }}
      onChange={onChange}
    />
  );
}

const RANGES = [7, 30, 90];

/** The browser's time zone, and every IANA zone it knows (the API takes any of them). */
const localZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
let zones: string[] | undefined;
const timeZones = (): string[] => (zones ??= ['UTC', ...Intl.supportedValuesOf('timeZone').filter((zone) => zone !== 'UTC')]);

export default function Analytics() {
  const tenant = useTenant();
  // The range, time zone and widget live in the URL, so that a reload or Back keeps them.
  const [params, setUrl] = useUrlState();
  const set = (key: string, value: string, initial: string) => setUrl({ [key]: value === initial ? null : value });
  const days = RANGES.find((d) => String(d) === params.get('days')) ?? 7;
  const tz = params.get('tz') || localZone();
  const widget = params.get('widget') ?? '';
  const zoneList = timeZones().includes(tz) ? timeZones() : [tz, ...timeZones()];
  // Whole hours, so that the queries stay the same between renders.
  const until = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
  const since = new Date(until.getTime() - days * 86_400_000);
  const range = { since: since.toISOString(), until: until.toISOString(), ...(widget ? { widget } : {}) };
  const path = { tenant: tenant.slug };
  const series = useQueries({
    queries: METRICS.map((m) => ({
      queryKey: ['series', tenant.slug, m.key, range, tz],
      queryFn: () =>
        unwrap(api.GET('/api/v1/tenants/{tenant}/analytics/series', { params: { path, query: { ...range, metric: m.key, interval: 'day', tz } } })),
    })),
  });
  const funnel = useQuery({
    queryKey: ['funnel', tenant.slug, range],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/analytics/funnel', { params: { path, query: range } })),
  });
  const latency = useQuery({
    queryKey: ['latency', tenant.slug, range],
    queryFn: () => unwrap(api.GET('/api/v1/tenants/{tenant}/analytics/latency', { params: { path, query: range } })),
  });
  const failed = series.find((s) => s.error)?.error;
  const loaded = series.every((s) => s.data);
  const rows: Row[] = [];
  const totals: Record<string, number> = {};
  if (loaded) {
    series[0]!.data!.points.forEach((point, i) => {
      const row: Row = { start: point.start.slice(0, 10) };
      METRICS.forEach((m, j) => {
        const value = series[j]!.data!.points[i]?.value ?? 0;
        row[m.key] = value;
        totals[m.key] = (totals[m.key] ?? 0) + value;
      });
      rows.push(row);
    });
  }
  const csv = `/api/v1/tenants/${tenant.slug}/analytics/export/series.csv?${new URLSearchParams({ ...range, tz, interval: 'day' })}`;
  return (
    <Page title="Analytics" actions={<a className="button secondary" href={csv} download>Export CSV</a>}>
      <div className="filters">
        <label className="filter">
          Range
          <select value={days} onChange={(e) => set('days', e.target.value, '7')}>
            <option value={7}>Last 7 days</option>
            <option value={30}>Last 30 days</option>
            <option value={90}>Last 90 days</option>
          </select>
        </label>
        <label className="filter">
          Time zone
          <select value={tz} onChange={(e) => set('tz', e.target.value, localZone())}>
            {zoneList.map((zone) => (
              <option key={zone}>{zone}</option>
            ))}
          </select>
        </label>
        <WidgetFilter value={widget} onChange={(id) => set('widget', id, '')} />
      </div>
      {failed ? (
        <ProblemAlert error={failed} />
      ) : !loaded ? (
        <Loading what="analytics" />
      ) : (
        <>
          <dl className="stats" aria-label="Totals over the range">
            {METRICS.map((m) => (
              <div key={m.key} className="stat">
                <dt>{m.label}</dt>
                <dd data-metric={m.key}>{totals[m.key] ?? 0}</dd>
              </div>
            ))}
          </dl>
          <Suspense fallback={<Loading what="charts" />}>
            <Charts rows={rows} metrics={METRICS.slice(0, 5)} />
            <Charts rows={rows} metrics={METRICS.slice(5)} />
          </Suspense>
        </>
      )}
      <h2>Funnel</h2>
      <Query query={funnel} what="the funnel">
        {(f) => (
          <ol className="funnel">
            {(
              [
                ['Loads', f.loads],
                ['Opens', f.opens],
                ['Conversations', f.conversations],
                ['Engaged (3+ messages)', f.engaged],
                ['Positive feedback', f.positive_feedback],
              ] as const
            ).map(([label, value]) => (
              <li key={label}>
                <span>{label}</span> <strong>{value}</strong>
              </li>
            ))}
          </ol>
        )}
      </Query>
      <h2>Latency</h2>
      <Query query={latency} what="latency">
        {(l) => (
          <dl className="stats">
            {(
              [
                ['Responses', l.responses],
                ['First token p50', l.first_token_p50],
                ['First token p95', l.first_token_p95],
                ['Whole answer p50', l.total_p50],
                ['Whole answer p95', l.total_p95],
              ] as const
            ).map(([label, value]) => (
              <div key={label} className="stat">
                <dt>{label}</dt>
                <dd>{value === null || value === undefined ? '—' : label === 'Responses' ? value : `${value} ms`}</dd>
              </div>
            ))}
          </dl>
        )}
      </Query>
    </Page>
  );
}
