// The draft being edited, as plain JSON, and controls bound to a path in it
// (`chatkit.theme.colorScheme`). Clearing a control removes its key, so ChatKit's own
// default applies. The API's errors name the same paths (`config.<path>`), shown beside
// the control at fault.
import { createContext, useContext, useState, type ReactNode } from 'react';
import type { ApiError, Schemas } from '../../api/client';
import { Field } from '../../ui';

/** `agent.reasoning_effort`'s values. */
export const EFFORTS: Schemas['ReasoningEffort'][] = ['minimal', 'low', 'medium', 'high'];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function getPath(value: Json | undefined, path: string): Json | undefined {
  return path.split('.').reduce<Json | undefined>((node, key) => {
    if (node === null || typeof node !== 'object') return undefined;
    return Array.isArray(node) ? node[Number(key)] : node[key];
  }, value);
}

const isEmpty = (value: Json | undefined): boolean =>
  value === undefined || value === '' || (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);

/** `root` with `value` at `path` (removed when empty, and so are objects left empty; a
 * number in the path is an index into a list). */
export function setPath(root: JsonObject, path: string, value: Json | undefined): JsonObject {
  return setKeys(root, path.split('.'), value);
}

/** `setPath` with the path as keys (a key may hold a dot: a widget action's name). */
export function setKeys(root: JsonObject, keys: string[], value: Json | undefined): JsonObject {
  return asObject(setIn(root, keys, value));
}

function getKeys(value: Json | undefined, keys: string[]): Json | undefined {
  return keys.reduce<Json | undefined>((node, key) => (node !== null && typeof node === 'object' && !Array.isArray(node) ? node[key] : undefined), value);
}

const same = (a: Json | undefined, b: Json | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);
const isObject = (value: Json | undefined): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value);

/** What changed from `before` to `after`, value by value (a list is one value; `undefined`:
 * removed). */
export function changes(before: Json | undefined, after: Json | undefined, keys: string[] = []): [string[], Json | undefined][] {
  // An object added or removed whole is compared key by key with nothing.
  if ((isObject(before) || before === undefined) && (isObject(after) || after === undefined) && before !== after) {
    const [b, a] = [before ?? {}, after ?? {}];
    return [...new Set([...Object.keys(b), ...Object.keys(a)])].flatMap((key) => changes(b[key], a[key], [...keys, key]));
  }
  return same(before, after) ? [] : [[keys, after]];
}

/** `mine` (edits of `base`) applied on top of `latest`, and the paths someone else changed
 * too since `base` (where `mine` wins). */
export function rebase(base: JsonObject, mine: JsonObject, latest: JsonObject): { config: JsonObject; overlapped: string[] } {
  let config = latest;
  const overlapped: string[] = [];
  for (const [keys, value] of changes(base, mine)) {
    const theirs = getKeys(latest, keys);
    if (!same(theirs, getKeys(base, keys)) && !same(theirs, value)) overlapped.push(keys.join('.'));
    config = setKeys(config, keys, value);
  }
  return { config, overlapped };
}

function setIn(node: Json | undefined, keys: string[], value: Json | undefined): Json | undefined {
  const [key, ...rest] = keys;
  if (key === undefined) return value;
  if (Array.isArray(node)) {
    const copy = [...node];
    copy[Number(key)] = setIn(node[Number(key)], rest, value) ?? {};
    return copy;
  }
  const copy: JsonObject = { ...asObject(node) };
  const next = setIn(copy[key], rest, value);
  if (isEmpty(next)) delete copy[key];
  else copy[key] = next as Json;
  return copy;
}

export const asObject = (value: Json | undefined): JsonObject =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};

type Draft = {
  config: JsonObject;
  set: (path: string, value: Json | undefined) => void;
  error: ApiError | null;
  disabled: boolean;
  /** A new model key typed in the agent tab, saved with the draft (never shown again). */
  modelKey: string;
  setModelKey: (key: string) => void;
  /** There are edits not saved (or a model key). */
  dirty: boolean;
  /** Forgets the edits not saved: the server has just replaced the draft (an import). */
  drop: () => void;
};

export const DraftContext = createContext<Draft | null>(null);

export function useDraft(): Draft & { value: (path: string) => Json | undefined; errorAt: (path: string) => string | undefined } {
  const draft = useContext(DraftContext);
  if (!draft) throw new Error('useDraft outside the editor');
  return {
    ...draft,
    value: (path) => getPath(draft.config, path),
    errorAt: (path) => errorAt(draft.error, path),
  };
}

/** The API's error for the control at `path`: its own, or one its object has about its key
 * (`'level' is a required property` on `….accent` belongs beside `….accent.level`). */
function errorAt(error: ApiError | null, path: string): string | undefined {
  const errors = error?.problem.errors ?? [];
  const own = errors.find((e) => e.field === `config.${path}`);
  if (own) return own.message;
  const cut = path.lastIndexOf('.');
  const parent = `config.${path.slice(0, cut)}`;
  const key = path.slice(cut + 1);
  return errors.find((e) => e.field === parent && e.message.includes(`'${key}'`))?.message;
}

type Bound = { path: string; label: string; hint?: ReactNode };

export function Text({ path, label, hint, multiline, placeholder }: Bound & { multiline?: boolean; placeholder?: string }) {
  const draft = useDraft();
  const value = draft.value(path);
  const common = {
    value: typeof value === 'string' ? value : '',
    disabled: draft.disabled,
    placeholder,
    onChange: (event: { target: { value: string } }) => draft.set(path, event.target.value),
  };
  return (
    <Field label={label} hint={hint} error={draft.errorAt(path)}>
      {(props) => (multiline ? <textarea {...props} {...common} rows={5} /> : <input {...props} {...common} />)}
    </Field>
  );
}

export function NumberInput({ path, label, hint, min, max, step }: Bound & { min?: number; max?: number; step?: number }) {
  const draft = useDraft();
  const value = draft.value(path);
  return (
    <Field label={label} hint={hint} error={draft.errorAt(path)}>
      {(props) => (
        <input
          {...props}
          type="number"
          min={min}
          max={max}
          step={step}
          disabled={draft.disabled}
          value={typeof value === 'number' ? value : ''}
          onChange={(event) => draft.set(path, event.target.value === '' ? undefined : Number(event.target.value))}
        />
      )}
    </Field>
  );
}

export function Select({ path, label, hint, options }: Bound & { options: (string | [string, string])[] }) {
  const draft = useDraft();
  const value = draft.value(path);
  return (
    <Field label={label} hint={hint} error={draft.errorAt(path)}>
      {(props) => (
        <select
          {...props}
          disabled={draft.disabled}
          value={value === undefined || value === null ? '' : String(value)}
          onChange={(event) => {
            const raw = event.target.value;
            draft.set(path, raw === '' ? undefined : /^-?\d+$/.test(raw) ? Number(raw) : raw);
          }}
        >
          <option value="">Default</option>
          {options.map((option) => {
            const [key, text] = Array.isArray(option) ? option : [option, option];
            return (
              <option key={key} value={key}>
                {text}
              </option>
            );
          })}
        </select>
      )}
    </Field>
  );
}

export function Check({ path, label, hint }: Bound) {
  const draft = useDraft();
  const error = draft.errorAt(path);
  const id = `check-${path.replaceAll('.', '-')}`;
  return (
    <div className={`field check${error ? ' invalid' : ''}`}>
      <input
        id={id}
        type="checkbox"
        disabled={draft.disabled}
        checked={draft.value(path) === true}
        onChange={(event) => draft.set(path, event.target.checked)}
      />
      <label htmlFor={id}>{label}</label>
      {hint && <p className="hint">{hint}</p>}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** A colour as `#rrggbb`: a picker and the text beside it. */
export function Color({ path, label, hint }: Bound) {
  const draft = useDraft();
  const value = draft.value(path);
  const text = typeof value === 'string' ? value : '';
  return (
    <Field label={label} hint={hint} error={draft.errorAt(path)}>
      {(props) => (
        <span className="row">
          <input
            {...props}
            value={text}
            placeholder="#2563eb"
            disabled={draft.disabled}
            onChange={(event) => draft.set(path, event.target.value)}
          />
          <input
            type="color"
            aria-label={`${label}: picker`}
            disabled={draft.disabled}
            value={/^#[0-9a-f]{6}$/i.test(text) ? text : '#000000'}
            onChange={(event) => draft.set(path, event.target.value)}
          />
        </span>
      )}
    </Field>
  );
}

/** A list of strings, one per line; the draft has the list as typed (blank lines left out). */
export function Lines({ path, label, hint }: Bound) {
  const draft = useDraft();
  const value = draft.value(path);
  const [text, setText] = useState(Array.isArray(value) ? value.join('\n') : '');
  return (
    <Field label={label} hint={hint} error={draft.errorAt(path)}>
      {(props) => (
        <textarea
          {...props}
          rows={3}
          disabled={draft.disabled}
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            const lines = event.target.value.split('\n').map((line) => line.trim()).filter(Boolean);
            draft.set(path, lines.length ? lines : undefined);
          }}
        />
      )}
    </Field>
  );
}

/** A JSON value as text; what does not parse goes to the API as text, which names the field. */
export function JsonText({ path, label, hint }: Bound) {
  const draft = useDraft();
  const [text, setText] = useState(() => JSON.stringify(draft.value(path) ?? {}, null, 2));
  const [parses, setParses] = useState(true);
  return (
    <Field label={label} hint={hint} error={parses ? draft.errorAt(path) : 'This is not JSON.'}>
      {(props) => (
        <textarea
          {...props}
          rows={6}
          className="mono"
          disabled={draft.disabled}
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            try {
              draft.set(path, JSON.parse(event.target.value) as Json);
              setParses(true);
            } catch {
              draft.set(path, event.target.value);
              setParses(false);
            }
          }}
        />
      )}
    </Field>
  );
}

export const Group = ({ title, children }: { title: string; children: ReactNode }) => (
  <fieldset className="group">
    <legend>{title}</legend>
    {children}
  </fieldset>
);
