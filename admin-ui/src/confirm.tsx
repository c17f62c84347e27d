// Actions that cannot be undone ask first: one way for every screen (the browser's own confirm
// dialog, which names the consequence and answers Cancel by default).
import type { ButtonHTMLAttributes } from 'react';

/** Whether the user agrees to `question` (a whole sentence: what happens, to what). */
export const confirmed = (question: string): boolean => window.confirm(question);

/**
 * A button whose action runs only once the user confirms `question`; `danger` unless another
 * class is given.
 */
export function ConfirmButton({
  question,
  onConfirm,
  className = 'danger',
  ...button
}: Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick' | 'type'> & { question: string; onConfirm: () => void }) {
  return (
    <button
      {...button}
      type="button"
      className={className}
      onClick={() => {
        if (confirmed(question)) onConfirm();
      }}
    />
  );
}
