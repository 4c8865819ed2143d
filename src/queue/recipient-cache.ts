// The recipients the accept path reads (RecipientAddresses: addresses, locale, time zone), cached
// per workspace and id, so a send to a recipient seen in the last few seconds reads nothing.
//
// Cache contract: an entry lives at most `ttlMs`. Every change to a recipient's row (PUT, DELETE,
// an address disabled by a worker) calls `invalidate(workspace, id)`, which drops the entry on this
// node at once and on every other node through the bus (RECIPIENTS_INVALIDATE, the message is
// "<workspace>\0<id>"); a node that misses the message converges within ttlMs and drops everything
// when its bus reconnects. Unknown ids are not cached, so a recipient is sendable as soon as its
// PUT has answered. A lookup that started before an invalidation does not cache what it read.
//
// What a stale entry can do: name an address that was just removed or disabled; the worker reads
// the recipient again when it claims the delivery and skips it then (`no_address`, queue/worker.ts).

import type { Bus } from '../bus/bus.ts';
import type { RecipientAddresses, StoreAdapter } from '../store/adapter.ts';

export const RECIPIENTS_INVALIDATE = 'recipients.invalidate';

/** Entries kept at most; beyond it the oldest are dropped. */
const MAX_ENTRIES = 50_000;

export class RecipientCache {
  readonly #store: StoreAdapter;
  readonly #bus: Bus | undefined;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { r: RecipientAddresses; until: number }>();
  readonly #unsubscribe: (() => void) | undefined;
  #generation = 0;

  /** `now`: the clock of the entries' lifetime (tests inject one). */
  constructor(store: StoreAdapter, opts: { bus?: Bus; ttlMs?: number; now?: () => number } = {}) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#bus = opts.bus;
    this.#ttlMs = opts.ttlMs ?? 10_000;
    this.#unsubscribe = opts.bus?.subscribe(RECIPIENTS_INVALIDATE, {
      onMessage: (key) => this.#drop(key),
      onGap: () => this.#clear(),
    });
  }

  /** The recipients among `ids` that exist, in the order of `ids` (each id once). */
  async find(workspaceId: string, ids: readonly string[]): Promise<RecipientAddresses[]> {
    const now = this.#now();
    const found: (RecipientAddresses | undefined)[] = [];
    let missing: string[] | undefined;
    for (const id of ids) {
      const e = this.#entries.get(`${workspaceId}\u0000${id}`);
      if (e && e.until > now) found.push(e.r);
      else {
        found.push(undefined);
        (missing ??= []).push(id);
      }
    }
    if (missing) {
      const generation = this.#generation;
      const rows = await this.#store.findRecipients(workspaceId, missing);
      if (generation === this.#generation) this.#put(workspaceId, rows, now + this.#ttlMs);
      const read = new Map(rows.map((r) => [r.id, r]));
      ids.forEach((id, i) => (found[i] ??= read.get(id)));
    }
    return found.filter((r) => r !== undefined);
  }

  /** After a recipient's row changed: drops it here now and asks every node to drop it. */
  invalidate(workspaceId: string, id: string): void {
    const key = `${workspaceId}\u0000${id}`;
    this.#drop(key);
    void this.#bus?.publish(RECIPIENTS_INVALIDATE, key);
  }

  close(): void {
    this.#unsubscribe?.();
  }

  #put(workspaceId: string, rows: readonly RecipientAddresses[], until: number): void {
    for (const r of rows) {
      const key = `${workspaceId}\u0000${r.id}`;
      this.#entries.delete(key); // re-inserted last: the Map's order is the eviction order
      this.#entries.set(key, { r, until });
    }
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= MAX_ENTRIES) break;
      this.#entries.delete(key);
    }
  }

  #drop(key: string): void {
    this.#generation++;
    this.#entries.delete(key);
  }

  #clear(): void {
    this.#generation++;
    this.#entries.clear();
  }
}
