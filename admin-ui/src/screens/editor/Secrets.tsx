// The widget's identity secret: generated (shown once), rotated, removed.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRef, useState } from 'react';
import { api, unwrap, type Schemas } from '../../api/client';
import { ConfirmButton } from '../../confirm';
import { useTenant } from '../../tenant';
import { ProblemAlert, SecretOnce } from '../../ui';
import { widgetKey } from './keys';

type Widget = Schemas['Widget'];

export default function Secrets({ widget }: { widget: Widget }) {
  const tenant = useTenant();
  const client = useQueryClient();
  const [secret, setSecret] = useState<string | null>(null);
  const button = useRef<HTMLButtonElement>(null);
  const path = { tenant: tenant.slug, id: widget.id };
  const refresh = () => client.invalidateQueries({ queryKey: widgetKey(tenant.slug, widget.id) });
  const rotate = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/tenants/{tenant}/widgets/{id}/identity-secret', { params: { path } })),
    onSuccess: (answer) => {
      setSecret(answer.identity_secret);
      void refresh();
    },
  });
  const remove = useMutation({
    mutationFn: () => unwrap(api.DELETE('/api/v1/tenants/{tenant}/widgets/{id}/identity-secret', { params: { path } })),
    onSuccess: () => void refresh(),
  });
  // Whoever holds the secret signs in as any end user: it is for those who mint sessions.
  const canWrite = tenant.can('sessions:mint');
  return (
    <div className="card">
      <h2>Identity secret</h2>
      <p className="hint">
        Your backend signs identity tokens with it (Embed tab) so the chat knows your signed-in users. A new secret replaces the old one at once:
        tokens signed with the old one stop working.
      </p>
      <p>{widget.has_identity_secret ? 'A secret is set (it is never shown again).' : 'No secret yet.'}</p>
      {secret && (
        <SecretOnce
          title="The new identity secret."
          secret={secret}
          onDone={() => {
            setSecret(null);
            button.current?.focus();
          }}
        />
      )}
      <div className="row">
        <button ref={button} type="button" disabled={!canWrite || rotate.isPending} onClick={() => rotate.mutate()}>
          {widget.has_identity_secret ? 'Rotate the secret' : 'Generate a secret'}
        </button>
        {widget.has_identity_secret && (
          <ConfirmButton
            disabled={!canWrite || remove.isPending}
            action="Remove the secret"
            question="Remove the identity secret? Identity tokens your backend signs stop working at once."
            onConfirm={() => remove.mutate()}
          >
            Remove the secret
          </ConfirmButton>
        )}
      </div>
      <ProblemAlert error={rotate.error ?? remove.error} />
    </div>
  );
}
