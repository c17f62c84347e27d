// ChatKit's look and behaviour: theme, header, history, start screen, composer, thread item
// actions, disclaimer, locale and the frame's title (ChatKitOptions of @openai/chatkit).
import type { SupportedLocale } from '@openai/chatkit';
import { useContext, useMemo, type ReactNode } from 'react';
import { asObject, Check, Color, DraftContext, getPath, Group, NumberInput, Select, Text, useDraft, type Json, type JsonObject } from './draft';

const LOCALES: SupportedLocale[] = ['en', 'de-DE', 'es-ES', 'fr-FR', 'it-IT', 'ja-JP', 'ko-KR', 'nl-NL', 'pl-PL', 'pt-BR', 'sv-SE', 'tr-TR', 'uk-UA', 'zh-CN'];

/** An array of objects with string (or boolean) fields, edited row by row. */
export function ListEditor({
  path,
  title,
  fields,
  blank,
}: {
  path: string;
  title: string;
  fields: { key: string; label: string; kind?: 'text' | 'check' }[];
  blank: JsonObject;
}) {
  const draft = useDraft();
  const rows = (draft.value(path) as Json[] | undefined) ?? [];
  const setRow = (index: number, key: string, value: Json) =>
    draft.set(
      path,
      rows.map((row, i) => (i === index ? { ...asObject(row), [key]: value } : row)),
    );
  return (
    <fieldset className="list-editor">
      <legend>{title}</legend>
      {rows.map((row, index) => (
        <div className="list-row" key={index} role="group" aria-label={`${title} ${index + 1}`}>
          {fields.map((field) => {
            const id = `${path}-${index}-${field.key}`;
            const value = asObject(row)[field.key];
            const error = draft.errorAt(`${path}.${index}.${field.key}`);
            return field.kind === 'check' ? (
              <span className="check" key={field.key}>
                <input
                  id={id}
                  type="checkbox"
                  disabled={draft.disabled}
                  checked={value === true}
                  onChange={(event) => setRow(index, field.key, event.target.checked)}
                />
                <label htmlFor={id}>{field.label}</label>
              </span>
            ) : (
              <span className="field" key={field.key}>
                <label htmlFor={id}>{field.label}</label>
                <input
                  id={id}
                  disabled={draft.disabled}
                  aria-invalid={Boolean(error)}
                  value={typeof value === 'string' ? value : ''}
                  onChange={(event) => setRow(index, field.key, event.target.value)}
                />
                {error && <span className="error">{error}</span>}
              </span>
            );
          })}
          <button
            type="button"
            className="secondary"
            disabled={draft.disabled}
            onClick={() => draft.set(path, rows.filter((_, i) => i !== index))}
          >
            Remove
          </button>
        </div>
      ))}
      {draft.errorAt(path) && <p className="error">{draft.errorAt(path)}</p>}
      <button type="button" className="secondary" disabled={draft.disabled} onClick={() => draft.set(path, [...rows, blank])}>
        Add
      </button>
    </fieldset>
  );
}

/** Black or white, whichever reads on `hex` (`#rrggbb`). */
function contrasting(hex: Json | undefined): string {
  const match = typeof hex === 'string' ? /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex) : null;
  if (!match) return '#111827';
  const [r, g, b] = match.slice(1).map((part) => Number.parseInt(part, 16));
  return 0.299 * (r ?? 0) + 0.587 * (g ?? 0) + 0.114 * (b ?? 0) > 150 ? '#111827' : '#ffffff';
}

/** ChatKit's colour objects whose two keys go together (its schema requires both): the
 * partner's value when only one is set. */
const PAIRS: Record<string, Record<string, (group: JsonObject) => Json>> = {
  'chatkit.theme.color.accent': { primary: () => '#2563eb', level: () => 1 },
  'chatkit.theme.color.grayscale': { hue: () => 220, tint: () => 4 },
  'chatkit.theme.color.surface': { background: (g) => contrasting(g.foreground), foreground: (g) => contrasting(g.background) },
};

/** The controls inside set a pair's missing partner to a default as one is set, and clear the
 * pair when one is cleared: the draft never holds half a pair, which ChatKit refuses. */
function Pairs({ children }: { children: ReactNode }) {
  const draft = useContext(DraftContext);
  const paired = useMemo(
    () =>
      draft && {
        ...draft,
        set: (path: string, value: Json | undefined) => {
          const at = path.slice(0, path.lastIndexOf('.'));
          const partners = PAIRS[at];
          const key = path.slice(at.length + 1);
          if (!partners || !(key in partners)) return draft.set(path, value);
          const group: JsonObject = { ...asObject(getPath(draft.config, at)) };
          if (value === undefined || value === '') {
            for (const member of Object.keys(partners)) delete group[member];
          } else {
            group[key] = value;
            for (const [member, fill] of Object.entries(partners)) if (group[member] === undefined) group[member] = fill(group);
          }
          draft.set(at, group);
        },
      },
    [draft],
  );
  return <DraftContext.Provider value={paired}>{children}</DraftContext.Provider>;
}

export default function Design() {
  return (
    <>
      <Group title="Theme">
        <Select path="chatkit.theme.colorScheme" label="Colour scheme" options={['light', 'dark']} />
        <Pairs>
          <Color path="chatkit.theme.color.accent.primary" label="Accent colour" hint="Goes with the accent level: setting one sets the other, clearing one clears both." />
          <Select path="chatkit.theme.color.accent.level" label="Accent level" options={['0', '1', '2', '3']} />
          <NumberInput path="chatkit.theme.color.grayscale.hue" label="Grayscale hue" min={0} max={360} hint="Goes with the tint: setting one sets the other, clearing one clears both." />
          <NumberInput path="chatkit.theme.color.grayscale.tint" label="Grayscale tint" min={0} max={9} />
          <Color path="chatkit.theme.color.surface.background" label="Surface background" hint="Goes with the foreground: setting one sets the other, clearing one clears both." />
          <Color path="chatkit.theme.color.surface.foreground" label="Surface foreground" />
        </Pairs>
        <Select path="chatkit.theme.radius" label="Corner radius" options={['pill', 'round', 'soft', 'sharp']} />
        <Select path="chatkit.theme.density" label="Density" options={['compact', 'normal', 'spacious']} />
        <Select path="chatkit.theme.typography.baseSize" label="Base font size" options={['14', '15', '16', '17', '18']} />
        <Text path="chatkit.theme.typography.fontFamily" label="Font family" placeholder="Inter, sans-serif" />
      </Group>
      <Group title="Header">
        <Check path="chatkit.header.enabled" label="Show the header" />
        <Check path="chatkit.header.title.enabled" label="Show a title" />
        <Text path="chatkit.header.title.text" label="Title" />
      </Group>
      <Group title="History">
        <Check path="chatkit.history.enabled" label="Visitors see their earlier conversations" />
        <Check path="chatkit.history.showDelete" label="…and may delete them" />
        <Check path="chatkit.history.showRename" label="…and may rename them" />
      </Group>
      <Group title="Start screen">
        <Text path="chatkit.startScreen.greeting" label="Greeting" placeholder="How can we help?" />
        <ListEditor
          path="chatkit.startScreen.prompts"
          title="Prompts"
          fields={[
            { key: 'label', label: 'Label' },
            { key: 'prompt', label: 'Text sent' },
            { key: 'icon', label: 'Icon' },
          ]}
          blank={{ label: '', prompt: '' }}
        />
      </Group>
      <Group title="Composer">
        <Text path="chatkit.composer.placeholder" label="Placeholder" />
        <Check path="chatkit.composer.attachments.enabled" label="Visitors may attach files" />
        <NumberInput path="chatkit.composer.attachments.maxCount" label="Most files per message" min={1} max={20} />
        <NumberInput path="chatkit.composer.attachments.maxSize" label="Largest file (bytes)" min={1} />
        <Check path="chatkit.composer.dictation.enabled" label="Dictation" />
        <ListEditor
          path="chatkit.composer.tools"
          title="Tools in the composer"
          fields={[
            { key: 'id', label: 'Id' },
            { key: 'label', label: 'Label' },
            { key: 'icon', label: 'Icon' },
            { key: 'pinned', label: 'Pinned', kind: 'check' },
          ]}
          blank={{ id: '', label: '', icon: 'search' }}
        />
        <ListEditor
          path="chatkit.composer.models"
          title="Models to choose from"
          fields={[
            { key: 'id', label: 'Id' },
            { key: 'label', label: 'Label' },
            { key: 'default', label: 'Default', kind: 'check' },
          ]}
          blank={{ id: '', label: '' }}
        />
      </Group>
      <Group title="Messages">
        <Check path="chatkit.threadItemActions.feedback" label="Thumbs up and down on answers" />
        <Check path="chatkit.threadItemActions.retry" label="Retry an answer" />
        <Text path="chatkit.disclaimer.text" label="Disclaimer under the composer" />
        <Check path="chatkit.disclaimer.highContrast" label="High-contrast disclaimer" />
      </Group>
      <Group title="Language and frame">
        <Select path="chatkit.locale" label="Locale" options={LOCALES} />
        <Text path="chatkit.frameTitle" label="Frame title" hint="What screen readers announce for the chat." />
      </Group>
    </>
  );
}
