// Network helpers shared by the loader and the framed page.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `fetch`, retried on network errors and 5xx answers with exponential backoff and jitter
 * (at most `tries` attempts, about 3.5 s in all by default), and on a 429 that asks to wait
 * at most 5 s (`Retry-After`, which Kithost exposes to pages): an events batch refused
 * under load. A longer wait (a rate limit) is the caller's to show. */
export async function call(url: string, init?: RequestInit, tries = 4): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    let wait = 250 * 2 ** attempt * (0.5 + Math.random());
    try {
      const response = await fetch(url, init);
      const after = response.status === 429 ? Number(response.headers.get('Retry-After') || 99) : 0;
      if ((response.status < 500 && !(after && after <= 5)) || attempt >= tries) return response;
      wait = Math.max(wait, after * 1000);
    } catch (error) {
      if (attempt >= tries) throw error;
    }
    await sleep(wait);
  }
}

export const postJson = (url: string, body: unknown): Promise<Response> =>
  call(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

/** `n` random characters from [A-Za-z0-9_-]. */
export function randomId(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  let id = '';
  for (const b of bytes) id += 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'[b & 63];
  return id;
}

/** base64url without padding of the UTF-8 JSON of `value`. */
export function base64url(value: unknown): string {
  let binary = '';
  for (const b of new TextEncoder().encode(JSON.stringify(value))) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Loads ChatKit's script once per page; rejects after `timeoutMs` or on error (and
 * removes the tag, so that a retry loads it afresh). */
export function loadScript(src: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let script = document.querySelector<HTMLScriptElement>(`script[src="${src}"]`);
    if (!script) {
      script = document.createElement('script');
      script.src = src;
      script.async = true;
      document.head.append(script);
    }
    const fail = (): void => {
      script.remove();
      reject();
    };
    const timer = setTimeout(fail, timeoutMs);
    script.addEventListener('error', fail);
    customElements.whenDefined('openai-chatkit').then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
