// The tenant a screen works in (`/t/:tenant/…`) and what the signed-in user may do there.
import { useParams } from 'react-router';
import type { Schemas } from './api/client';
import { useMe } from './auth';

export type Scope = Schemas['Scope'];

export type Tenant = { slug: string; name: string; role: Schemas['Role'] | null; can: (scope: Scope) => boolean };

export function useTenant(): Tenant {
  const { tenant: slug = '' } = useParams();
  const me = useMe().data;
  const membership = me?.user.memberships.find((m) => m.slug === slug);
  const scopes = new Set<Scope>(membership?.scopes ?? []);
  const admin = me?.user.is_platform_admin ?? false;
  return {
    slug,
    name: membership?.name ?? slug,
    role: membership?.role ?? null,
    can: (scope) => admin || scopes.has(scope),
  };
}
