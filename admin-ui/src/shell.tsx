// The frame around every signed-in screen: navigation, the tenant switcher, signing out.
import { useQueryClient } from '@tanstack/react-query';
import { Suspense, useEffect } from 'react';
import { Link, Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { api, ApiError, unwrap } from './api/client';
import { ME, useMe, useSignOut } from './auth';
import { useTenant, type Scope } from './tenant';
import { FindSelect, Loading, ProblemAlert, ScreenHeading, useTitle } from './ui';

const NAV: { to: string; label: string; scope: Scope }[] = [
  { to: 'widgets', label: 'Widgets', scope: 'widgets:read' },
  { to: 'analytics', label: 'Analytics', scope: 'analytics:read' },
  { to: 'errors', label: 'Errors', scope: 'analytics:read' },
  { to: 'conversations', label: 'Conversations', scope: 'conversations:read' },
  { to: 'knowledge', label: 'Knowledge', scope: 'knowledge:read' },
  { to: 'webhooks', label: 'Webhooks', scope: 'webhooks:write' },
  { to: 'team', label: 'Team', scope: 'members:read' },
  { to: 'clients', label: 'API clients', scope: 'clients:write' },
  { to: 'audit', label: 'Audit log', scope: 'members:read' },
  { to: 'settings', label: 'Settings', scope: 'widgets:read' },
];

/** Signed-in screens only: others go to the sign-in screen and come back. */
export function RequireSignIn() {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading what="your session" />;
  if (me.error) return <ProblemAlert error={me.error} />;
  if (!me.data) return <Navigate to="/sign-in" state={{ from: location.pathname }} replace />;
  return <Outlet />;
}

/** `/admin/`: the first tenant's widgets, or a note when the user belongs to none. */
export function Home() {
  const me = useMe().data;
  const first = me?.user.memberships[0];
  useTitle('No team yet');
  if (first) return <Navigate to={`/t/${first.slug}/widgets`} replace />;
  return (
    <main className="sign-in">
      <ScreenHeading>No team yet</ScreenHeading>
      <p>You are not a member of any tenant. Ask an owner for an invitation.</p>
    </main>
  );
}

function TenantSwitcher() {
  const me = useMe().data;
  const tenant = useTenant();
  const navigate = useNavigate();
  const location = useLocation();
  // The same section in the other tenant (a widget's editor: its widget list).
  const section = /^\/t\/[^/]+\/([^/]+)/.exec(location.pathname)?.[1] ?? 'widgets';
  const go = (slug: string) => void navigate(`/t/${slug}/${section}`);
  if (me?.user.is_platform_admin) {
    return (
      <span className="switcher">
        <FindSelect
          label={<span className="visually-hidden">Tenant</span>}
          findLabel={<span className="visually-hidden">Find a tenant</span>}
          queryKey={['tenants']}
          find={async (q, limit) => {
            const found = await unwrap(api.GET('/api/v1/tenants', { params: { query: { limit, ...(q ? { q } : {}) } } }));
            return found.map((t) => ({ value: t.slug, label: t.name || t.slug }));
          }}
          value={tenant.slug}
          current={{ value: tenant.slug, label: tenant.name || tenant.slug }}
          onChange={go}
        />
      </span>
    );
  }
  return (
    <label className="switcher">
      <span className="visually-hidden">Tenant</span>
      <select value={tenant.slug} onChange={(event) => go(event.target.value)}>
        {(me?.user.memberships ?? []).map((t) => (
          <option key={t.slug} value={t.slug}>
            {t.name || t.slug}
          </option>
        ))}
      </select>
    </label>
  );
}

/** What a member removed (or never one) sees instead of a tenant's screens. */
function NoAccess({ slug }: { slug: string }) {
  useTitle(`No access to ${slug}`);
  return (
    <section className="page" aria-labelledby="page-title">
      <ScreenHeading id="page-title">No access to {slug}</ScreenHeading>
      <p>You are not a member of this tenant, or no longer are. Ask one of its owners for an invitation.</p>
      <Link to="/">Go to your tenants</Link>
    </section>
  );
}

export function Shell() {
  const me = useMe().data;
  const tenant = useTenant();
  const signOut = useSignOut();
  const client = useQueryClient();
  // A tenant answering tenant_not_found may be one the user was just removed from: /auth/status
  // says so (and this frame then says it too, not each screen's "No tenant").
  useEffect(
    () =>
      client.getQueryCache().subscribe((event) => {
        const error = event.query.state.error;
        if (event.type === 'updated' && event.action.type === 'error' && error instanceof ApiError && error.problem.code === 'tenant_not_found') {
          void client.invalidateQueries({ queryKey: ME });
        }
      }),
    [client],
  );
  const member = Boolean(me?.user.is_platform_admin) || (me?.user.memberships ?? []).some((m) => m.slug === tenant.slug);
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Kithost</span>
        <TenantSwitcher />
        <span className="muted who">
          {me?.user.email}
          {tenant.role && ` · ${tenant.role}`}
        </span>
        <button type="button" className="secondary" onClick={() => signOut.mutate()}>
          Sign out
        </button>
      </header>
      <nav className="sidebar" aria-label="Sections">
        <ul>
          {NAV.filter((item) => tenant.can(item.scope) || item.scope === 'widgets:read').map((item) => (
            <li key={item.to}>
              <NavLink to={`/t/${tenant.slug}/${item.to}`}>{item.label}</NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        {member ? (
          <Suspense fallback={<Loading what="the screen" />}>
            <Outlet />
          </Suspense>
        ) : (
          <NoAccess slug={tenant.slug} />
        )}
      </main>
    </div>
  );
}
