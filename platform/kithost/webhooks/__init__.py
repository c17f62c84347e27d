"""Webhooks: events POSTed to the tenant's endpoints by workers, signed as the Standard
Webhooks specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``),
at least once, retried with backoff for a day, with a delivery log."""
