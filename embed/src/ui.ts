// What the visitor sees when there is no chat to show yet: never a blank box.

export const UNAVAILABLE = 'Chat is unavailable right now — try again.';

/** Replaces `box`'s content with a short message; with `retry`, an alert and a retry button. */
export function notice(box: HTMLElement, text: string, retry?: () => void): void {
  const p = document.createElement('p');
  p.className = 'kithost-notice';
  p.setAttribute('role', retry ? 'alert' : 'status');
  p.textContent = text;
  if (retry) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Try again';
    button.onclick = retry;
    p.append(' ', button);
  }
  box.replaceChildren(p);
}

export const NOTICE_CSS =
  '.kithost-notice{margin:auto;padding:24px;font:15px/1.5 system-ui,sans-serif;text-align:center;color:#111827}' +
  '.kithost-notice button{font:inherit;margin-top:8px;padding:6px 14px;border:1px solid #111827;border-radius:6px;background:#fff;cursor:pointer}' +
  '.kithost-notice button:focus-visible{outline:3px solid #2563eb;outline-offset:2px}';
