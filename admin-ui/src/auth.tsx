// Who is signed in (`GET /api/v1/auth/status`), signing in and out, and accepting an invitation.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useForm } from 'react-hook-form';
import { Navigate, useLocation, useNavigate } from 'react-router';
import { api, ApiError, setCsrfToken, unwrap, type Schemas } from './api/client';
import { Field, Loading, ProblemAlert, ScreenHeading, useTitle } from './ui';

export type SignedIn = Schemas['SignedIn'];

export const ME = ['me'] as const;

/** The signed-in user; `null` when nobody is. Asked of `/auth/status`, which says so with a
 * 200: `/auth/me`'s 401 would be logged by the browser as an error on every signed-out visit. */
export function useMe() {
  return useQuery({
    queryKey: ME,
    queryFn: async (): Promise<SignedIn | null> => {
      const { signed_in: me } = await unwrap(api.GET('/api/v1/auth/status'));
      setCsrfToken(me?.csrf_token ?? null);
      return me;
    },
    staleTime: 60_000,
  });
}

export function useSignOut() {
  const client = useQueryClient();
  const navigate = useNavigate();
  return useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/auth/logout')),
    onSettled: () => {
      setCsrfToken(null);
      client.clear();
      void navigate('/sign-in');
    },
  });
}

type Credentials = { email: string; password: string };

export function SignIn() {
  const me = useMe();
  const client = useQueryClient();
  const location = useLocation();
  const methods = useQuery({ queryKey: ['sign-in-methods'], queryFn: () => unwrap(api.GET('/api/v1/auth/methods')) });
  const form = useForm<Credentials>();
  const signIn = useMutation({
    mutationFn: (body: Credentials) => unwrap(api.POST('/api/v1/auth/login', { body })),
    onSuccess: (signedIn) => {
      setCsrfToken(signedIn.csrf_token);
      client.setQueryData(ME, signedIn);
    },
  });
  useTitle('Sign in');
  if (me.data) {
    const back = (location.state as { from?: string } | null)?.from;
    return <Navigate to={back ?? '/'} replace />;
  }
  const error = signIn.error instanceof ApiError ? signIn.error : null;
  return (
    <main className="sign-in">
      <ScreenHeading>Sign in to Kithost</ScreenHeading>
      <form onSubmit={form.handleSubmit((body) => signIn.mutate(body))} noValidate>
        <Field label="Email" error={form.formState.errors.email?.message ?? error?.fieldError('email')}>
          {(props) => (
            <input {...props} type="email" autoComplete="username" {...form.register('email', { required: 'Enter your email.' })} />
          )}
        </Field>
        <Field label="Password" error={form.formState.errors.password?.message ?? error?.fieldError('password')}>
          {(props) => (
            <input
              {...props}
              type="password"
              autoComplete="current-password"
              {...form.register('password', { required: 'Enter your password.' })}
            />
          )}
        </Field>
        <ProblemAlert error={signIn.error} shown={['email', 'password']} />
        <button type="submit" disabled={signIn.isPending}>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {methods.data?.oidc && (
        <p>
          <a className="button secondary" href="/api/v1/auth/oidc/login">
            Sign in with single sign-on
          </a>
        </p>
      )}
    </main>
  );
}

type Acceptance = { name: string; password: string };

/** `/admin/invite#token=…`, the link an invitation sends. */
export function AcceptInvitation() {
  const me = useMe();
  const navigate = useNavigate();
  const client = useQueryClient();
  const token = new URLSearchParams(window.location.hash.slice(1)).get('token') ?? '';
  const form = useForm<Acceptance>({ defaultValues: { name: '', password: '' } });
  const accept = useMutation({
    mutationFn: (body: Partial<Acceptance>) => unwrap(api.POST('/api/v1/invitations/accept', { body: { token, ...body } })),
    onSuccess: async (membership) => {
      if (me.data) {
        await client.invalidateQueries({ queryKey: ME });
        void navigate(`/t/${membership.tenant.slug}/widgets`);
      }
    },
  });
  useTitle(accept.isSuccess && !me.data ? 'Invitation accepted' : 'Join a Kithost team');
  if (me.isPending) return <Loading what="your session" />;
  const error = accept.error instanceof ApiError ? accept.error : null;
  if (!token)
    return (
      <main className="sign-in">
        <ScreenHeading>Join a Kithost team</ScreenHeading>
        <ProblemAlert error={new Error('This invitation link has no token.')} />
      </main>
    );
  if (accept.isSuccess && !me.data) {
    return (
      <main className="sign-in">
        <ScreenHeading>Invitation accepted</ScreenHeading>
        <p>Your account is ready: sign in with the invited email and the password you chose.</p>
        <a className="button" href="/admin/sign-in">Sign in</a>
      </main>
    );
  }
  return (
    <main className="sign-in">
      <ScreenHeading>Join a Kithost team</ScreenHeading>
      {me.data ? (
        <>
          <p>You are signed in as {me.data.user.email}.</p>
          <button type="button" onClick={() => accept.mutate({})} disabled={accept.isPending}>
            Accept the invitation
          </button>
        </>
      ) : (
        <form onSubmit={form.handleSubmit((body) => accept.mutate(body))} noValidate>
          <p>Choose your name and a password for your new account, or <a href="/admin/sign-in">sign in</a> first if you have one.</p>
          <Field label="Your name" error={error?.fieldError('name')}>
            {(props) => <input {...props} autoComplete="name" {...form.register('name')} />}
          </Field>
          <Field label="Password" hint="At least 12 characters." error={form.formState.errors.password?.message ?? error?.fieldError('password')}>
            {(props) => (
              <input
                {...props}
                type="password"
                autoComplete="new-password"
                {...form.register('password', { required: 'Choose a password.' })}
              />
            )}
          </Field>
          <button type="submit" disabled={accept.isPending}>
            Accept and create my account
          </button>
        </form>
      )}
      <ProblemAlert error={accept.error} shown={me.data ? [] : ['name', 'password']} />
    </main>
  );
}
