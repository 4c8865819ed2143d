// Follows vendor receipts until they settle (Pushover emergency-priority messages: acknowledged by
// a person, or expired). Runs on worker nodes.
//
// Every `intervalMs`, it claims the receipts due for a check from the lease queue (kind receipt,
// key the delivery id; queue/lease-queue.ts: a claimed receipt is leased to this node for
// intervalMs), asks the vendor about each, and applies the answer: a settled receipt moves its
// delivery (reportDelivery, forward only), is deleted, and its lease completed; an unsettled one
// (or one whose check failed) is due again intervalMs later (fail). A receipt past its expiry plus
// a grace period is given up as `undelivered`. A vendor callback may settle a delivery first; the
// poll then finds it settled and deletes the receipt; a lease whose receipt is gone is completed.

import type { Logger } from 'pino';
import type { ChannelName, ProviderCredentials } from '../channels/channel.ts';
import { CHANNEL_PROVIDER } from '../channels/channel.ts';
import type { ProviderRegistry } from '../providers/service.ts';
import type { AfterSentStatus } from '../domain/delivery-status.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Events } from '../events/events.ts';
import { movedEvents, moveEvents } from '../events/delivery-events.ts';
import { deleteReceipt, receiptsOf, reportDelivery } from '../store/deliveries.ts';
import { LEASE_KINDS, LeaseQueue, Poller } from './lease-queue.ts';

export interface ReceiptCheck {
  /** The delivery's new status when the receipt settled; undefined while it has not. */
  status?: AfterSentStatus;
  detail?: Record<string, unknown>;
}

export type ReceiptChecker = (creds: ProviderCredentials, receipt: string, signal: AbortSignal) => Promise<ReceiptCheck>;

const EXPIRY_GRACE_MS = 60_000;
/** Receipts claimed per check. */
const BATCH = 100;
const KIND = LEASE_KINDS.receipt;

export class ReceiptTracker {
  readonly #store: StoreAdapter;
  readonly #providers: ProviderRegistry;
  readonly #checkers: Partial<Record<ChannelName, ReceiptChecker>>;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #wake: (channels: string[]) => void;
  readonly #events: Events | undefined;
  readonly #leases: LeaseQueue;
  readonly #poller: Poller;
  readonly #abort = new AbortController();

  constructor(opts: {
    store: StoreAdapter;
    providers: ProviderRegistry;
    checkers: Partial<Record<ChannelName, ReceiptChecker>>;
    intervalMs: number;
    log: Logger;
    /** This node's lease owner id. */
    owner: string;
    /** Channels that got due deliveries (routing "first" moving on). */
    wake: (channels: string[]) => void;
    /** Where deliveries a receipt moved are announced (delivery.status). */
    events?: Events | undefined;
  }) {
    this.#events = opts.events;
    this.#store = opts.store;
    this.#providers = opts.providers;
    this.#checkers = opts.checkers;
    this.#intervalMs = opts.intervalMs;
    this.#log = opts.log;
    this.#wake = opts.wake;
    this.#leases = new LeaseQueue(opts.store, opts.owner);
    // A full batch may mean more are due: check again at once.
    this.#poller = new Poller({
      tick: async () => (await this.checkDue()).claimed === BATCH,
      intervalMs: opts.intervalMs,
      onError: (err) => this.#log.warn({ err }, 'receipt check failed'),
    });
  }

  start(): void {
    this.#poller.start();
  }

  /** Checks every due receipt once (up to BATCH). Returns how many were claimed and how many settled. */
  async checkDue(now = Date.now()): Promise<{ claimed: number; settled: number }> {
    let settled = 0;
    const leases = await this.#leases.claim(KIND, BATCH, this.#intervalMs, now);
    const receipts = new Map((await receiptsOf(this.#store.db, leases.map((l) => l.key))).map((r) => [r.delivery_id, r]));
    for (const lease of leases) {
      if (this.#abort.signal.aborted) break;
      const r = receipts.get(lease.key);
      if (!r) {
        await this.#leases.complete(KIND, lease.key);
        continue;
      }
      const channel = r.channel as ChannelName;
      const checker = this.#checkers[channel];
      const provider = CHANNEL_PROVIDER[channel];
      const creds = provider ? await this.#providers.get(r.workspace_id, provider) : undefined;
      let outcome: ReceiptCheck;
      if (!checker || !creds) {
        outcome = { status: 'undelivered', detail: { receipt: r.receipt, error: 'the receipt can no longer be checked (provider removed)' } };
      } else {
        try {
          outcome = await checker(creds, r.receipt, this.#abort.signal);
        } catch (err) {
          if (Date.now() < r.expires_at + EXPIRY_GRACE_MS) {
            this.#log.warn({ err, delivery: r.delivery_id }, 'receipt check failed; will check again');
            await this.#leases.fail(KIND, lease.key, Date.now() + this.#intervalMs);
            continue;
          }
          outcome = { status: 'undelivered', detail: { receipt: r.receipt, error: 'receipt expired while it could not be checked' } };
        }
      }
      if (!outcome.status) {
        await this.#leases.fail(KIND, lease.key, Date.now() + this.#intervalMs);
        continue;
      }
      const reported = await reportDelivery(this.#store, r.delivery_id, outcome.status, outcome.detail, Date.now());
      if (reported?.woken.length) this.#wake(reported.woken);
      if (reported?.moved) this.#events?.emit([...movedEvents([{ ...reported.delivery, from: reported.from }], reported.status, 'receipt'), ...moveEvents(reported.chain)]);
      await deleteReceipt(this.#store.db, r.delivery_id);
      await this.#leases.complete(KIND, lease.key);
      settled++;
    }
    return { claimed: leases.length, settled };
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#poller.stop();
    await this.#leases.release(KIND).catch(() => undefined);
  }
}
