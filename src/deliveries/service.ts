// Deliveries after their attempt: the rules that follow a send, and vendors' reports.
//
// After an attempt (hooks the channel workers call, queue/worker.ts):
//   address gone   a device is disabled; a webhook that answered 410 Gone, or another address the
//                  vendor reported gone, is disabled on the recipient (a later PUT re-enables it)
//   fallback       a delivery on the fallback channel is made, only to an address the recipient
//                  has on a channel the workspace can use; its lane is woken; it is announced
//   chain step     routing "first": the next channel of the chain becomes due (woken); the moves
//                  are announced
//   digest         a digest delivery closes its digest and renders its items (the digest's
//                  template in the recipient's locale chain, else the plain form)
//   receipt        a vendor receipt to follow is stored; the first check comes RECEIPT_FIRST_CHECK_MS
//                  later (queue/receipts.ts follows it)
// Vendor reports (callbacks): move a `sent` delivery forward only (domain/delivery-status.ts
// advanceAfterSent), so repeated and reordered reports are harmless; each move is announced.

import type { Logger } from 'pino';
import { PermanentError } from '../channels/channel.ts';
import type { DeviceService } from '../devices/service.ts';
import { plainDigest } from '../domain/digest.ts';
import type { AfterSentStatus, DeliveryStatus } from '../domain/delivery-status.ts';
import { localeChain, pickVariant } from '../domain/locale.ts';
import { addressChannels } from '../domain/routing.ts';
import { renderDigest } from '../domain/templates.ts';
import { movedEvents, moveEvents } from '../events/delivery-events.ts';
import type { Events } from '../events/events.ts';
import type { PolicyCache } from '../queue/policy.ts';
import type { WorkerOptions } from '../queue/worker.ts';
import type { RecipientService } from '../recipients/service.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { advanceChain, createFallbackDelivery, deleteReceipt, getDeliveryById, putReceipt, reportDelivery } from '../store/deliveries.ts';
import { closeDigest } from '../store/digests.ts';
import type { DeliveriesTable } from '../store/schema.ts';
import { queueDepth } from './store.ts';

/** The first receipt check comes this soon after sending; later ones every HERALD_RECEIPT_POLL_INTERVAL. */
export const RECEIPT_FIRST_CHECK_MS = 5_000;

/** How long a vendor report waits for its delivery's outcome to be recorded (a fast vendor can report first). */
const SETTLE_WAIT_MS = 3_000;

export type AfterSendHooks = Pick<WorkerOptions, 'onAddressGone' | 'onFallback' | 'onChainStep' | 'renderDigest' | 'onReceipt'>;

export class DeliveryService {
  readonly #store: StoreAdapter;
  readonly #recipients: RecipientService;
  readonly #devices: DeviceService;
  readonly #configured: (workspaceId: string) => Promise<readonly string[]>;
  readonly #policy: PolicyCache;
  readonly #events: Events;
  readonly #wake: (channels: Iterable<string>) => void;
  readonly #log: Logger;

  constructor(
    store: StoreAdapter,
    deps: {
      recipients: RecipientService;
      devices: DeviceService;
      /** The channels a workspace can use (providers configured). */
      configured: (workspaceId: string) => Promise<readonly string[]>;
      policy: PolicyCache;
      events: Events;
      /** Wakes this node's lanes of these channels (a hint; no-op without workers). */
      wake: (channels: Iterable<string>) => void;
      log: Logger;
    },
  ) {
    this.#store = store;
    this.#recipients = deps.recipients;
    this.#devices = deps.devices;
    this.#configured = deps.configured;
    this.#policy = deps.policy;
    this.#events = deps.events;
    this.#wake = deps.wake;
    this.#log = deps.log;
  }

  /** The rules that follow an attempt, as the channel workers' hooks. */
  afterSend(): AfterSendHooks {
    const store = this.#store;
    const log = this.#log;
    return {
      onAddressGone: async (delivery, err) => {
        const now = Date.now();
        if (delivery.device_id) {
          if (await this.#devices.disable(delivery.device_id, `${err.errorClass}: ${err.message}`.slice(0, 500), now)) {
            log.warn({ device: delivery.device_id, recipient: delivery.recipient_id, delivery: delivery.id, channel: delivery.channel }, 'device disabled: the vendor says it is gone');
          }
        } else if (delivery.channel === 'webhook') {
          await this.#recipients.disableWebhook(delivery.workspace_id, delivery.recipient_id, err.message, now);
          log.warn({ recipient: delivery.recipient_id, delivery: delivery.id }, 'webhook disabled: the receiver answered 410 Gone');
        } else {
          await this.#recipients.disableAddress(delivery.workspace_id, delivery.recipient_id, delivery.channel, now);
          log.warn({ recipient: delivery.recipient_id, delivery: delivery.id, channel: delivery.channel }, 'address disabled: the vendor says it is gone');
        }
      },
      onFallback: async (delivery, channel) => {
        // Only to an address the recipient has, on a channel the workspace can use.
        const r = await this.#recipients.get(delivery.workspace_id, delivery.recipient_id);
        if (!r || !addressChannels(r).has(channel) || !(await this.#configured(delivery.workspace_id)).includes(channel)) return false;
        const created = await createFallbackDelivery(store, delivery, channel, Date.now());
        if (!created) return false;
        this.#wake([channel]);
        this.#events.emit(moveEvents([created]));
        return true;
      },
      onChainStep: async (delivery) => {
        const { woken, moves } = await advanceChain(store, delivery.id, Date.now());
        this.#wake(woken);
        this.#events.emit(moveEvents(moves));
      },
      renderDigest: async (delivery) => {
        const closed = await closeDigest(store, delivery.digest_id!);
        if (!closed) throw new PermanentError('digest_missing', `digest ${delivery.digest_id} does not exist`);
        const items = closed.items.map((i) => ({ title: i.title, body: i.body, data: i.data === null ? null : (JSON.parse(i.data) as unknown) }));
        if (closed.digest.template) {
          const [template, settings] = await Promise.all([this.#policy.template(delivery.workspace_id, closed.digest.template), this.#policy.settings(delivery.workspace_id)]);
          const variant = template && pickVariant(template.variants, localeChain(delivery.locale, settings.default_locale), delivery.channel);
          if (variant) return renderDigest(variant, items, items.length, { channel: delivery.channel });
        }
        return plainDigest(items);
      },
      onReceipt: async (delivery, receipt) => {
        const now = Date.now();
        await putReceipt(store.db, { delivery_id: delivery.id, workspace_id: delivery.workspace_id, channel: delivery.channel, receipt: receipt.id, next_check_at: now + RECEIPT_FIRST_CHECK_MS, expires_at: receipt.expiresAt, created_at: now });
      },
    };
  }

  get(id: string): Promise<DeliveriesTable | undefined> {
    return getDeliveryById(this.#store.db, id);
  }

  /**
   * Applies a vendor's report: moves the delivery to `next` if the state machine allows it, wakes
   * what the move made due and announces it. A report that arrives while the attempt's outcome is
   * not yet recorded (`sending`) waits for it, up to SETTLE_WAIT_MS, instead of being dropped.
   * True when the delivery moved.
   */
  async report(id: string, next: AfterSentStatus, detail: Record<string, unknown>, reason: string): Promise<boolean> {
    const deadline = Date.now() + SETTLE_WAIT_MS;
    for (;;) {
      const r = await reportDelivery(this.#store, id, next, detail, Date.now());
      if (r?.moved) {
        this.#wake(r.woken);
        this.#events.emit([...movedEvents([{ ...r.delivery, from: r.from }], r.status, reason), ...moveEvents(r.chain)]);
        return true;
      }
      if (r?.status !== 'sending' || Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Deliveries waiting or exhausted, by channel and status (sampled for the metrics). */
  queueDepth(): Promise<{ channel: string; status: DeliveryStatus; n: number }[]> {
    return queueDepth(this.#store.db);
  }

  /** Stops following the delivery's vendor receipt (it was answered). */
  forgetReceipt(id: string): Promise<void> {
    return deleteReceipt(this.#store.db, id);
  }
}
