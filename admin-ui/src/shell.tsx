// The frame around every signed-in screen: navigation, the tenant switcher, signing out.
import { Suspense } from 'react';
import { Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { api, unwrap } from './api/client';
import { useMe, useSignOut } from './auth';
import { useTenant, type Scope } from './tenant';
import { FindSelect, Loading, ProblemAlert } from './ui';

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
  if (first) return <Navigate to={`/t/${first.slug}/widgets`} replace />;
  return (
    <main className="sign-in">
      <h1>No team yet</h1>
      <p>You are not a member of any tenant. Ask an owner for an invitation.</p>
    </main>
  );
}

function TenantSwitcher() {
  const me = useMe().data;
  const tenant = useTenant();
  const navigate = useNavigate();
  const go = (slug: string) => void navigate(`/t/${slug}/widgets`);
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

export function Shell() {
  const me = useMe().data;
  const tenant = useTenant();
  const signOut = useSignOut();
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
        <Suspense fallback={<Loading what="the screen" />}>
          <Outlet />
        </Suspense>
      </main>
    </div>
  );
}
