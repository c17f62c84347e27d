// Batches events to `POST /v1/embed/{pk}/events`: a client event id each, at most 50 per
// batch, JSON by fetch (retried), `text/plain` by `navigator.sendBeacon` on `pagehide`.
import { call, randomId } from './net';

const MAX_BATCH = 50;
const FLUSH_MS = 1000;

export type Batcher = {
  add(name: string, data?: Record<string, unknown>): void;
  /** Send by beacon from now on (a page whose origin CORS refuses cannot send JSON). */
  beaconOnly(): void;
};

export function batcher(url: string, endUser: () => string | null): Batcher {
  const queue: object[] = [];
  let timer = 0;
  let beacon = false;
  const flush = (useBeacon: boolean): void => {
    clearTimeout(timer);
    timer = 0;
    while (queue.length) {
      const body = JSON.stringify({ end_user: endUser(), events: queue.splice(0, MAX_BATCH) });
      if (useBeacon || beacon) navigator.sendBeacon(url, body);
      else call(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).catch(() => undefined);
    }
  };
  addEventListener('pagehide', () => flush(true));
  return {
    add(name, data = {}) {
      queue.push({ id: randomId(16), name, time: Date.now(), data });
      if (queue.length >= MAX_BATCH) flush(false);
      else timer ||= setTimeout(flush, FLUSH_MS, false) as unknown as number;
    },
    beaconOnly() {
      beacon = true;
    },
  };
}
