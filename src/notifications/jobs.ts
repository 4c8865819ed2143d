// Background work of the accept path's keys: expired Idempotency-Keys and dedupe keys are purged
// every PURGE_INTERVAL_MS (they are ignored once expired; purging only keeps the tables small).

import type { Logger } from 'pino';
import type { StoreAdapter } from '../store/adapter.ts';
import { purgeExpiredDedupeKeys } from '../store/dedupe.ts';
import { purgeExpiredIdempotency } from '../store/idempotency.ts';

export const PURGE_INTERVAL_MS = 3_600_000;

/** Starts the purges (an unref'd timer: it never keeps the process alive); returns the function that stops them. */
export function startKeyPurges(store: StoreAdapter, log: Logger): () => void {
  const timer = setInterval(() => {
    const now = Date.now();
    void purgeExpiredIdempotency(store.db, now).catch((err: unknown) => log.warn({ err }, 'idempotency purge failed'));
    void purgeExpiredDedupeKeys(store.db, now).catch((err: unknown) => log.warn({ err }, 'dedupe key purge failed'));
  }, PURGE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
