// How the chat appears on the page: the launcher, the placement, identity, and what
// ChatKit's widget actions do.
import { Check, Color, Group, Select, Text, useDraft, asObject, type JsonObject } from './draft';

const KINDS: [string, string][] = [
  ['open_url', 'Open a URL'],
  ['send_message', 'Send a message'],
  ['forward', "Forward to Kithost's server"],
  ['ignore', 'Ignore'],
];

function Actions() {
  const draft = useDraft();
  const actions = asObject(draft.value('actions'));
  const names = Object.keys(actions);
  const put = (next: JsonObject) => draft.set('actions', next);
  return (
    <Group title="Widget actions">
      <p className="hint">What a button in an answer's widget does, by its action type.</p>
      {names.map((name) => {
        const action = asObject(actions[name]);
        const kind = String(action.kind ?? 'ignore');
        return (
          <div className="list-row" key={name} role="group" aria-label={`Action ${name}`}>
            <span className="field">
              <span className="label">Action type</span> <code>{name}</code>
            </span>
            <span className="field">
              <label htmlFor={`action-${name}-kind`}>Does</label>
              <select
                id={`action-${name}-kind`}
                disabled={draft.disabled}
                value={kind}
                onChange={(e) => put({ ...actions, [name]: e.target.value === 'open_url' ? { kind: 'open_url', url: '' } : e.target.value === 'send_message' ? { kind: 'send_message', text: '' } : { kind: e.target.value } })}
              >
                {KINDS.map(([value, label]) => (
                  <option key={value} value={value}>
                    {label}
                  </option>
                ))}
              </select>
            </span>
            {(kind === 'open_url' || kind === 'send_message') && (
              <Text path={`actions.${name}.${kind === 'open_url' ? 'url' : 'text'}`} label={kind === 'open_url' ? 'URL' : 'Message'} />
            )}
            <button
              type="button"
              className="secondary"
              disabled={draft.disabled}
              onClick={() => put(Object.fromEntries(Object.entries(actions).filter(([n]) => n !== name)))}
            >
              Remove
            </button>
          </div>
        );
      })}
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          const input = event.currentTarget.elements.namedItem('action-name') as HTMLInputElement;
          if (input.value) put({ ...actions, [input.value]: { kind: 'forward' } });
          input.value = '';
        }}
      >
        <label htmlFor="action-name">New action type</label>
        <input id="action-name" name="action-name" disabled={draft.disabled} placeholder="order.track" />
        <button type="submit" className="secondary" disabled={draft.disabled}>
          Add action
        </button>
      </form>
    </Group>
  );
}

export default function LauncherTab() {
  return (
    <>
      <Group title="Launcher">
        <Text path="launcher.label" label="Label" placeholder="Chat with us" />
        <Color path="launcher.background" label="Background" />
        <Color path="launcher.foreground" label="Text colour" />
        <Text path="launcher.icon" label="Icon" hint="A ChatKit icon name, or lucide:name." />
        <Select path="launcher.position" label="Position" options={['bottom-right', 'bottom-left']} />
        <Check path="launcher.open_on_load" label="Open the chat when the page loads" />
        <Check path="launcher.prefetch" label="Load the chat before the first click" />
      </Group>
      <Group title="Placement and identity">
        <Select
          path="placement"
          label="Placement"
          hint="Framed: the chat runs on Kithost's page in an iframe (works everywhere). Direct: ChatKit runs in your page, which needs an OpenAI domain key per origin."
          options={[
            ['framed', 'Framed (default)'],
            ['direct', 'Direct'],
          ]}
        />
        <Check path="require_identity" label="Only signed-in end users (your backend mints their identity token)" />
      </Group>
      <Actions />
    </>
  );
}
