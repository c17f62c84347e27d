// The dashboard's building blocks: labelled fields with their errors, buttons, the states of
// a screen (loading, empty, failed), copying, secrets shown once, and choosing from a list the
// server searches.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState, type MouseEvent, type ReactNode } from 'react';
import { useLocation, useSearchParams } from 'react-router';
import { ApiError, fieldShows } from './api/client';

/** The browser's title (the tab, the window, what a screen reader says on arriving): the
 * screen's own, then Kithost. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Kithost`;
  }, [title]);
}

/** The history entry (`Location.key`) whose screen last put up its heading. */
let arrivedAt: string | null = null;

/**
 * A screen's `h1`. Arriving on the screen from another one (a link, Back, the way on after an
 * action) moves the focus to it, so that a screen reader says where the user is and Tab starts
 * from the top of the screen. The page's first load leaves the focus where the browser puts it,
 * and a change that keeps the screen (the URL's query alone, as `useUrlState`'s filters; the
 * editor's tabs) keeps the focus where it is: the heading stays mounted.
 */
export function ScreenHeading({ id, children }: { id?: string; children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const { key } = useLocation();
  const [mountedAt] = useState(key);
  useEffect(() => {
    if (arrivedAt !== null && arrivedAt !== mountedAt) heading.current?.focus();
    arrivedAt = mountedAt;
  }, [mountedAt]);
  return (
    <h1 id={id} ref={heading} tabIndex={-1}>
      {children}
    </h1>
  );
}

export function Page({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  useTitle(title);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-head">
        <ScreenHeading id="page-title">{title}</ScreenHeading>
        {actions && <div className="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | undefined;
  children: (props: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }) => ReactNode;
}) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': Boolean(error), ...(describedBy ? { 'aria-describedby': describedBy } : {}) })}
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="error" id={`${id}-error`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * What went wrong with an action, and the problem's field errors that no field on screen
 * shows. `shown` names the fields the form shows errors beside (as `ApiError.fieldError`
 * finds them): when every field error is one of theirs, the fields say it all and the alert
 * stays away; otherwise it shows the problem with the errors they leave out. Without
 * `shown`, it lists every field error.
 */
export function ProblemAlert({ error, shown = [] }: { error: unknown; shown?: readonly string[] }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const all = error instanceof ApiError ? (error.problem.errors ?? []) : [];
  const fields = all.filter((f) => !shown.some((name) => fieldShows(name, f.field)));
  if (all.length > 0 && fields.length === 0) return null;
  return (
    <div className="alert" role="alert">
      <p>{message}</p>
      {fields.length > 0 && (
        <ul>
          {fields.map((f) => (
            <li key={f.field + f.message}>
              <code>{f.field}</code>: {f.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export const Loading = ({ what }: { what: string }) => (
  <p className="muted" role="status">
    Loading {what}…
  </p>
);

export const Empty = ({ children }: { children: ReactNode }) => <p className="empty">{children}</p>;

/** A query's states around its content. */
export function Query<T>({
  query,
  what,
  children,
}: {
  query: { data: T | undefined; error: unknown; isPending: boolean };
  what: string;
  children: (data: T) => ReactNode;
}) {
  if (query.isPending) return <Loading what={what} />;
  if (query.error || query.data === undefined) return <ProblemAlert error={query.error ?? new Error(`No ${what}.`)} />;
  return <>{children(query.data)}</>;
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="secondary"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(
          () => setCopied(true),
          () => setCopied(false),
        );
        setCopied(true);
        window.setTimeout(() => setCopied(false), 2000);
      }}
    >
      {copied ? 'Copied' : label}
    </button>
  );
}

/**
 * A secret the server shows once: displayed with a copy button until dismissed, never again.
 * Done puts the focus back on the control that asked for it (or on the screen, if it has gone).
 */
export function SecretOnce({ title, secret, onDone }: { title: string; secret: string; onDone: () => void }) {
  const [origin] = useState(() => (document.activeElement instanceof HTMLElement ? document.activeElement : null));
  const done = (event: MouseEvent<HTMLButtonElement>) => {
    onDone();
    const active = document.activeElement;
    if (active !== null && active !== document.body && active !== event.currentTarget) return; // onDone placed it
    const back = origin?.isConnected && origin !== document.body ? origin : document.getElementById('main');
    back?.focus();
  };
  return (
    <div className="secret" role="status">
      <p>
        <strong>{title}</strong> It is shown only this once: copy it now.
      </p>
      <div className="row">
        <code className="secret-value" data-testid="secret">
          {secret}
        </code>
        <CopyButton text={secret} />
        <button type="button" className="secondary" onClick={done}>
          Done
        </button>
      </div>
    </div>
  );
}

export const formatDate = (value: string | null | undefined): string =>
  value ? new Date(value).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';

/** A write the current role may not make: disabled controls and a note, never hidden ones. */
export function ReadOnlyNote({ canWrite }: { canWrite: boolean }) {
  return canWrite ? null : (
    <p className="note" role="note">
      Your role can view this but not change it.
    </p>
  );
}

/** A table's frame: its column headers (a hidden one names a column of buttons) and rows. */
export function Table({ columns, children }: { columns: (string | { hidden: string })[]; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            {columns.map((column) =>
              typeof column === 'string' ? (
                <th scope="col" key={column}>
                  {column}
                </th>
              ) : (
                <th scope="col" key={column.hidden}>
                  <span className="visually-hidden">{column.hidden}</span>
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** The next page of a paged list, while there is one. */
export function MoreButton({
  query,
  label,
}: {
  query: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => Promise<unknown> };
  label: string;
}) {
  if (!query.hasNextPage) return null;
  return (
    <button type="button" className="secondary" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
      {label}
    </button>
  );
}

type Choice = { value: string; label: string };

/** How many of what `FindSelect` finds it lists. */
const FOUND = 100;

/** How long typing pauses before what was typed is searched for. */
export const TYPING_PAUSE_MS = 250;

/** `value`, once it has stayed the same for `ms`. */
export function useSettled<T>(value: T, ms: number = TYPING_PAUSE_MS): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** What a screen writes to its URL's query: `null`, `''` and `false` remove the key, `true` is `1`. */
export type UrlValues = Record<string, string | boolean | null>;

/**
 * A screen's state kept in its URL's query (a reload or Back keeps it) and its setter, which
 * replaces the history entry. From a control's event the page changes at once (`flushSync`): a
 * navigation is a transition, and until it commits a controlled checkbox or select shows its old
 * value (a checkbox clicked flipped back for a moment). `{ at: 'effect' }` from an effect, where
 * React forbids flushing.
 */
export function useUrlState(): [URLSearchParams, (values: UrlValues, from?: { at: 'event' | 'effect' }) => void] {
  const [params, setParams] = useSearchParams();
  const set = (values: UrlValues, from: { at: 'event' | 'effect' } = { at: 'event' }) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        for (const [key, value] of Object.entries(values)) {
          if (value === null || value === '' || value === false) next.delete(key);
          else next.set(key, value === true ? '1' : value);
        }
        return next;
      },
      { replace: true, flushSync: from.at === 'event' },
    );
  return [params, set];
}

/**
 * A `<select>` of a list the server searches (`find`: the first `limit` that hold the text,
 * all without it), and the search box beside it: the first `FOUND` found, then a note to type
 * more when there are more. The chosen choice stays listed whatever the search finds.
 */
export function FindSelect({
  label,
  findLabel,
  queryKey,
  find,
  value,
  current,
  first,
  className,
  onChange,
}: {
  label: ReactNode;
  findLabel: ReactNode;
  queryKey: readonly unknown[];
  find: (q: string | undefined, limit: number) => Promise<Choice[]>;
  value: string;
  /** The choice `value` names, if the caller knows it (else the last one picked here). */
  current?: Choice | undefined;
  /** A choice before the found ones (e.g. "All"). */
  first?: Choice;
  /** Of the two labelled parts (each a label and its control). */
  className?: string;
  onChange: (value: string) => void;
}) {
  const [text, setText] = useState('');
  const q = useSettled(text.trim()) || undefined;
  const found = useQuery({
    queryKey: [...queryKey, q],
    queryFn: () => find(q, FOUND + 1),
    placeholderData: keepPreviousData,
  });
  const [picked, setPicked] = useState<Choice | undefined>(undefined);
  const chosen = current ?? (picked?.value === value ? picked : undefined);
  const shown = found.data?.slice(0, FOUND) ?? [];
  const listed = chosen && !shown.some((c) => c.value === chosen.value) ? [chosen, ...shown] : shown;
  const id = useId();
  return (
    <>
      <div className={className}>
        <label htmlFor={`${id}-select`}>{label}</label>
        <select
          id={`${id}-select`}
          value={value}
          onChange={(event) => {
            setPicked(listed.find((c) => c.value === event.target.value));
            onChange(event.target.value);
          }}
        >
          {first && <option value={first.value}>{first.label}</option>}
          {listed.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
          {(found.data?.length ?? 0) > FOUND && (
            <option disabled value="(more)">
              {`Only the first ${FOUND}: type to find others`}
            </option>
          )}
        </select>
      </div>
      <div className={className}>
        <label htmlFor={`${id}-find`}>{findLabel}</label>
        <input id={`${id}-find`} type="search" value={text} onChange={(event) => setText(event.target.value)} />
      </div>
    </>
  );
}
