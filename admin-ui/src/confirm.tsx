// Actions that cannot be undone ask first: one way for every screen, one modal dialog (the
// native <dialog>, opened with showModal(): the page behind is inert). It is an alert dialog
// named by its heading and described by the question; the focus starts on Cancel, Escape
// answers Cancel, and the focus goes back to what asked once it is answered.
import { createContext, useCallback, useContext, useEffect, useId, useRef, useState, type ButtonHTMLAttributes, type ReactNode } from 'react';

/** A question before an action: `action` names the button that does it ("Delete widget"), and
 * `question` says in whole sentences what happens, to what. */
export type Question = { action: string; question: string };

type Asking = Question & { answer: (agreed: boolean) => void; asker: HTMLElement | null };

/** The value the action's button closes the dialog with (Cancel and Escape leave it empty). */
const AGREED = 'agreed';

const Ask = createContext<(question: Question) => Promise<boolean>>(() => Promise.reject(new Error('No ConfirmDialog around this screen.')));

/** Whether the user agrees to a question, asked in `ConfirmDialog` (one at a time: it is modal). */
export const useConfirm = () => useContext(Ask);

/** The dialog every question before an action is asked in, for the screens inside it. */
export function ConfirmDialog({ children }: { children: ReactNode }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const [asking, setAsking] = useState<Asking | null>(null);
  const id = useId();
  const ask = useCallback(
    (question: Question) =>
      new Promise<boolean>((answer) => {
        const asker = document.activeElement instanceof HTMLElement ? document.activeElement : null;
        setAsking({ ...question, answer, asker });
      }),
    [],
  );
  useEffect(() => {
    if (!asking || !dialog.current) return;
    dialog.current.returnValue = '';
    dialog.current.showModal();
    cancel.current?.focus();
  }, [asking]);
  return (
    <Ask.Provider value={ask}>
      {children}
      <dialog
        ref={dialog}
        className="confirm"
        role="alertdialog"
        aria-labelledby={`${id}-action`}
        aria-describedby={`${id}-question`}
        onClose={() => {
          if (!asking) return;
          setAsking(null);
          asking.asker?.focus();
          asking.answer(dialog.current?.returnValue === AGREED);
        }}
      >
        {asking && (
          <form method="dialog">
            <h2 id={`${id}-action`}>{asking.action}?</h2>
            <p id={`${id}-question`}>{asking.question}</p>
            <div className="row">
              <button ref={cancel} type="submit" className="secondary">
                Cancel
              </button>
              <button type="submit" className="danger" value={AGREED}>
                {asking.action}
              </button>
            </div>
          </form>
        )}
      </dialog>
    </Ask.Provider>
  );
}

/** A button whose action runs only once the user agrees to `question` (in `ConfirmDialog`, its
 * button named `action`); `danger` unless another class is given. */
export function ConfirmButton({
  action,
  question,
  onConfirm,
  className = 'danger',
  ...button
}: Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick' | 'type'> & Question & { onConfirm: () => void }) {
  const confirm = useConfirm();
  return (
    <button
      {...button}
      type="button"
      className={className}
      onClick={async () => {
        if (await confirm({ action, question })) onConfirm();
      }}
    />
  );
}
