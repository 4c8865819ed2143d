// Follows vendor receipts until they settle (Pushover emergency-priority messages: acknowledged by
// a person, or expired). Runs on worker nodes.
//
// Every `intervalMs`, it claims the receipts due for a check (store/deliveries.ts
// claimDueReceipts: a claimed receipt is not due again for intervalMs, on any node), asks the
// vendor about each, and applies the answer: a settled receipt moves its delivery (reportDelivery,
// forward only) and is deleted; an unsettled one waits for its next check. A receipt past its
// expiry plus a grace period is given up as `undelivered`. A vendor callback may settle a delivery
// first; the poll then finds it settled and deletes the receipt.

import type { Logger } from 'pino';
import type { ChannelName, ProviderCredentials } from '../channels/channel.ts';
import { CHANNEL_PROVIDER } from '../channels/channel.ts';
import type { ProviderRegistry } from '../providers/service.ts';
import type { AfterSentStatus } from '../domain/delivery-status.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { claimDueReceipts, deleteReceipt, reportDelivery } from '../store/deliveries.ts';
import type { Events } from '../events/events.ts';
import { movedEvents, moveEvents } from '../events/delivery-events.ts';

export interface ReceiptCheck {
  /** The delivery's new status when the receipt settled; undefined while it has not. */
  status?: AfterSentStatus;
  detail?: Record<string, unknown>;
}

export type ReceiptChecker = (creds: ProviderCredentials, receipt: string, signal: AbortSignal) => Promise<ReceiptCheck>;

const EXPIRY_GRACE_MS = 60_000;

export class ReceiptTracker {
  readonly #store: StoreAdapter;
  readonly #providers: ProviderRegistry;
  readonly #checkers: Partial<Record<ChannelName, ReceiptChecker>>;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #wake: (channels: string[]) => void;
  readonly #events: Events | undefined;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(opts: {
    store: StoreAdapter;
    providers: ProviderRegistry;
    checkers: Partial<Record<ChannelName, ReceiptChecker>>;
    intervalMs: number;
    log: Logger;
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
  }

  start(): void {
    const tick = () => {
      this.#running = this.checkDue()
        .then(() => undefined)
        .catch((err: unknown) => this.#log.warn({ err }, 'receipt check failed'))
        .finally(() => {
          if (!this.#abort.signal.aborted) this.#timer = setTimeout(tick, this.#intervalMs);
        });
    };
    this.#timer = setTimeout(tick, Math.min(this.#intervalMs, 1000));
  }

  /** Checks every due receipt once. Returns how many settled. */
  async checkDue(now = Date.now()): Promise<number> {
    let settled = 0;
    const due = await claimDueReceipts(this.#store.db, now, now + this.#intervalMs, 100);
    for (const r of due) {
      if (this.#abort.signal.aborted) break;
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
            continue;
          }
          outcome = { status: 'undelivered', detail: { receipt: r.receipt, error: 'receipt expired while it could not be checked' } };
        }
      }
      if (!outcome.status) continue;
      const reported = await reportDelivery(this.#store, r.delivery_id, outcome.status, outcome.detail, Date.now());
      if (reported?.woken.length) this.#wake(reported.woken);
      if (reported?.moved) this.#events?.emit([...movedEvents([{ ...reported.delivery, from: reported.from }], reported.status, 'receipt'), ...moveEvents(reported.chain)]);
      await deleteReceipt(this.#store.db, r.delivery_id);
      settled++;
    }
    return settled;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    clearTimeout(this.#timer);
    await this.#running;
  }
}
