// The dashboard's only way to the server: Kithost's public REST API, typed from its OpenAPI
// document (`make admin-ui-client` regenerates schema.d.ts). The session cookie goes along;
// every write carries the sign-in cookie's CSRF token. Errors become `ApiError`s holding the
// problem document, whose `errors[].field` the forms show next to the field at fault.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type Problem = Schemas['Problem'];

/** Whether a form's field `name` shows the problem's error on `path` (the same field, or the
 * field at the end of the path). */
export const fieldShows = (name: string, path: string): boolean => path === name || path.endsWith(`.${name}`);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title);
  }

  /** The message for one field (a dotted path such as `config.launcher.label`), if any. */
  fieldError(field: string): string | undefined {
    return this.problem.errors?.find((e) => fieldShows(field, e.field))?.message;
  }
}

let csrfToken: string | null = null;
export const setCsrfToken = (token: string | null): void => {
  csrfToken = token;
};

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const csrf: Middleware = {
  onRequest({ request }) {
    if (csrfToken && WRITES.has(request.method)) request.headers.set('X-CSRF-Token', csrfToken);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

type Answer<T> = { data?: T; error?: unknown; response: Response };

/** The answer's data, or an `ApiError` thrown with its problem document. */
export async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    const problem =
      error && typeof error === 'object' && 'status' in error
        ? (error as Problem)
        : { type: 'about:blank', title: response.statusText || 'Request failed', status: response.status, code: 'http_error' };
    throw new ApiError(response.status, problem);
  }
  return data as T;
}

/** `If-Match` for a change of a widget whose ETag is its revision. */
export const ifMatch = (revision: number): { 'if-match': string } => ({ 'if-match': `"${revision}"` });
