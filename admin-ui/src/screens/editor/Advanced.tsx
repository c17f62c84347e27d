// The whole `chatkit` object as JSON: applied to the draft, checked by the API against
// ChatKit's options schema, errors shown at their path.
import { useState } from 'react';
import { Field } from '../../ui';
import { asObject, useDraft, type Json } from './draft';

export default function Advanced() {
  const draft = useDraft();
  const [text, setText] = useState(() => JSON.stringify(draft.value('chatkit') ?? {}, null, 2));
  const [syntax, setSyntax] = useState<string | null>(null);
  const pathErrors = (draft.error?.problem.errors ?? []).filter((e) => e.field.startsWith('config.chatkit'));
  return (
    <>
      <Field
        label="ChatKit options (JSON)"
        hint="Every option of ChatKit's ChatKitOptions that is data (not a function). Apply it to the draft, then save: the API checks it against the same schema."
        error={syntax ?? undefined}
      >
        {(props) => <textarea {...props} className="mono" rows={24} spellCheck={false} value={text} disabled={draft.disabled} onChange={(e) => setText(e.target.value)} />}
      </Field>
      {pathErrors.length > 0 && (
        <ul className="error-list" role="alert">
          {pathErrors.map((e) => (
            <li key={e.field + e.message}>
              <code>{e.field.replace(/^config\./, '')}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
      <div className="row">
        <button
          type="button"
          className="secondary"
          disabled={draft.disabled}
          onClick={() => {
            try {
              const parsed = JSON.parse(text) as Json;
              setSyntax(null);
              draft.set('chatkit', asObject(parsed));
            } catch (error) {
              setSyntax(`Not valid JSON: ${(error as Error).message}`);
            }
          }}
        >
          Apply to the draft
        </button>
        <button type="button" className="secondary" onClick={() => setText(JSON.stringify(draft.value('chatkit') ?? {}, null, 2))}>
          Reload from the draft
        </button>
      </div>
    </>
  );
}
