// What the tenant pastes: the snippet, the optional command stub, and the recipe for the
// identity tokens their backend signs; a check that runs the snippet in the preview.
import { CopyButton } from '../../ui';
import type { Schemas } from '../../api/client';
import { useMe } from '../../auth';
import { useTenant } from '../../tenant';

type Widget = Schemas['Widget'];

const STUB = '<script>window.kithost = window.kithost || function(){(kithost.q = kithost.q || []).push(arguments)}</script>';

function Snippet({ title, code, hint }: { title: string; code: string; hint?: string }) {
  return (
    <div className="card">
      <div className="row spread">
        <h2>{title}</h2>
        <CopyButton text={code} label={`Copy ${title.toLowerCase()}`} />
      </div>
      {hint && <p className="hint">{hint}</p>}
      <pre className="code" tabIndex={0} role="region" aria-label={title}>
        <code>{code}</code>
      </pre>
    </div>
  );
}

export default function Embed({ widget, onCheck }: { widget: Widget; onCheck: () => void }) {
  const tenant = useTenant();
  const base = useMe().data?.visitor_url ?? window.location.origin;
  const snippet = `<script async src="${base}/embed/${widget.public_key}.js"></script>`;
  const python = `# pip install pyjwt — sign on your server, never in the browser.
import os, time, jwt

def kithost_identity_token(user) -> str:
    claims = {"sub": str(user.id), "name": user.name, "email": user.email,
              "exp": int(time.time()) + 3600}
    # The identity secret of widget ${widget.public_key} (Secrets tab).
    return jwt.encode(claims, os.environ["KITHOST_IDENTITY_SECRET"], algorithm="HS256")`;
  const node = `// npm install jose — sign on your server, never in the browser.
import { SignJWT } from 'jose';

// The identity secret of widget ${widget.public_key} (Secrets tab).
const secret = new TextEncoder().encode(process.env.KITHOST_IDENTITY_SECRET);

export const kithostIdentityToken = (user) =>
  new SignJWT({ name: user.name, email: user.email })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(String(user.id))
    .setExpirationTime('1h')
    .sign(secret);`;
  return (
    <>
      {!widget.published_version && (
        <p className="note" role="note">
          Publish the widget first: the snippet shows the published version, and nothing until there is one.
        </p>
      )}
      <Snippet title="Snippet" code={snippet} hint="Paste it into every page that shows the chat, before </body>. The page's origin must be allowed (Origins tab)." />
      <Snippet
        title="Command stub"
        code={STUB}
        hint="Optional, before the snippet: lets your page call kithost('open'), kithost('identify', token), … before the script has loaded."
      />
      <Snippet title="Identity token (Python)" code={python} hint="Then, in the page: kithost('identify', token)." />
      <Snippet title="Identity token (Node)" code={node} />
      {/* The preview runs on the draft, which needs edit rights (the editor's note says so). */}
      <button type="button" className="secondary" disabled={!tenant.can('widgets:write')} onClick={onCheck}>
        Check: run the snippet in the preview
      </button>
    </>
  );
}
