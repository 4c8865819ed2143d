// The accept path of POST /v1/notifications: validate against the store, plan deliveries, and
// write the notification with its deliveries durably before answering.
//
// Contract: `accept` resolves only after the notification, its deliveries and its idempotency
// record are committed to stable storage (group commit: concurrent requests share one commit).
// Idempotency (per workspace and key, kept HERALD_IDEMPOTENCY_TTL):
//   - same key, same body      -> the original response again, `replayed: true`
//   - same key, different body -> 422 idempotency_key_reused
//   - same key while the first request is not yet committed on this node -> 409 idempotency_in_flight
//   - across nodes the store's unique key decides: the loser replays the winner's response.
// A retried request therefore never creates a second notification.

import { createHash } from 'node:crypto';
import { DEVICE_CHANNELS, type ChannelName } from '../channels/channel.ts';
import { canonicalJson } from '../domain/canonical-json.ts';
import { newId } from '../domain/ids.ts';
import { planDeliveries } from '../domain/routing.ts';
import { Problem } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { AcceptItem, AcceptOutcome, RecipientAddresses, StoreAdapter } from '../store/adapter.ts';
import { GroupCommitter } from '../store/group-commit.ts';
import { findIdempotencyRecord } from '../store/idempotency.ts';
import type { DeliveriesTable } from '../store/schema.ts';
import { findActiveDevices } from '../store/devices.ts';

export interface SendRequest {
  to: string | string[];
  kind?: string;
  title?: string;
  body?: string;
  data?: unknown;
  channels?: ChannelName[];
  /** Per-channel options ({pushover: {priority…}, apns: {…}}), validated by the HTTP schema. */
  channel_options?: Partial<Record<ChannelName, Record<string, unknown>>>;
  /** Whether a channel may hand the notification to its fallback channel (kakao -> sms). */
  fallback?: boolean;
  metadata?: Record<string, unknown>;
}

export interface AcceptResponse {
  id: string;
  status: 'accepted';
  deliveries: { id: string; recipient: string; channel: string; device?: string; status: string; reason?: string }[];
}

export interface AcceptResult {
  response: AcceptResponse;
  replayed: boolean;
}

export class Accepter {
  readonly #store: StoreAdapter;
  readonly #reachable: (r: RecipientAddresses) => Set<ChannelName>;
  readonly #configured: (workspaceId: string) => Promise<ChannelName[]>;
  readonly #metrics: Metrics;
  readonly #idempotencyTtl: number;
  readonly #onCommitted: (channels: Set<string>) => void;
  readonly #committer: GroupCommitter<AcceptItem, AcceptOutcome>;
  readonly #inFlight = new Set<string>();

  constructor(opts: {
    store: StoreAdapter;
    /** The channels a recipient has an address on. */
    reachable: (r: RecipientAddresses) => Set<ChannelName>;
    /** The channels the workspace can deliver on, in default priority order. */
    configured: (workspaceId: string) => Promise<ChannelName[]>;
    metrics: Metrics;
    idempotencyTtlMs: number;
    /** Called after each commit with the channels that got pending deliveries (a wake-up hint). */
    onCommitted: (channels: Set<string>) => void;
  }) {
    this.#store = opts.store;
    this.#reachable = opts.reachable;
    this.#configured = opts.configured;
    this.#metrics = opts.metrics;
    this.#idempotencyTtl = opts.idempotencyTtlMs;
    this.#onCommitted = opts.onCommitted;
    this.#committer = new GroupCommitter((items) => this.#store.acceptBatch(items));
  }

  async accept(workspaceId: string, req: SendRequest, idempotencyKey?: string): Promise<AcceptResult> {
    const title = req.title ?? '';
    const body = req.body ?? '';
    if (title.trim() === '' && body.trim() === '') throw new Problem('empty_content', 'Give a title or a body (or both)');
    const to = [...new Set(Array.isArray(req.to) ? req.to : [req.to])];

    let requestHash: string | undefined;
    const flightKey = `${workspaceId}\u0000${idempotencyKey}`;
    if (idempotencyKey !== undefined) {
      requestHash = createHash('sha256').update(canonicalJson(req)).digest('hex');
      if (this.#inFlight.has(flightKey)) {
        throw new Problem('idempotency_in_flight', 'The first request with this Idempotency-Key has not finished; retry shortly', { headers: { 'retry-after': '1' } });
      }
      const existing = await this.#replay(workspaceId, idempotencyKey, requestHash);
      if (existing) return existing;
      if (this.#inFlight.has(flightKey)) throw new Problem('idempotency_in_flight', 'The first request with this Idempotency-Key has not finished; retry shortly', { headers: { 'retry-after': '1' } });
      this.#inFlight.add(flightKey);
    }
    try {
      const recipients = await this.#store.findRecipients(workspaceId, to);
      if (recipients.length !== to.length) {
        const known = new Set(recipients.map((r) => r.id));
        const unknown = to.filter((id) => !known.has(id));
        throw new Problem('unknown_recipients', `Unknown recipients: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ', …' : ''}`, { extensions: { recipients: unknown } });
      }
      const configured = await this.#configured(workspaceId);
      const candidates = req.channels ?? configured;
      const deviceChannels = DEVICE_CHANNELS.filter((c) => candidates.includes(c) && configured.includes(c));
      let devices: Map<string, Map<ChannelName, string[]>> | undefined;
      if (deviceChannels.length > 0) {
        devices = new Map(recipients.map((r) => [r.id, new Map<ChannelName, string[]>(deviceChannels.map((c) => [c, []]))]));
        for (const d of await findActiveDevices(this.#store.db, workspaceId, to, deviceChannels)) {
          devices.get(d.recipient_id)?.get(d.platform as ChannelName)?.push(d.id);
        }
      }
      const plan = planDeliveries({
        recipients: recipients.map((r) => ({ id: r.id, reachable: this.#reachable(r), devices: devices?.get(r.id) })),
        requested: req.channels,
        configured,
      });
      if (plan.unreachable.length > 0) {
        throw new Problem('no_channel', `No usable channel for: ${plan.unreachable.slice(0, 20).join(', ')}`, { extensions: { recipients: plan.unreachable } });
      }

      const now = Date.now();
      const notificationId = newId('ntf');
      const deliveries: DeliveriesTable[] = plan.deliveries.map((p) => ({
        id: newId('dlv'),
        workspace_id: workspaceId,
        notification_id: notificationId,
        recipient_id: p.recipientId,
        channel: p.channel,
        device_id: p.deviceId ?? null,
        status: p.skip ? 'skipped' : 'pending',
        reason: p.skip ?? null,
        attempts: 0,
        run_at: now,
        lease_owner: null,
        error_class: null,
        last_error: null,
        provider_message_id: null,
        created_at: now,
        updated_at: now,
        completed_at: p.skip ? now : null,
      }));
      const response: AcceptResponse = {
        id: notificationId,
        status: 'accepted',
        deliveries: deliveries.map((d) => ({
          id: d.id,
          recipient: d.recipient_id,
          channel: d.channel,
          ...(d.device_id && { device: d.device_id }),
          status: d.status,
          ...(d.reason && { reason: d.reason }),
        })),
      };
      const item: AcceptItem = {
        notification: {
          id: notificationId,
          workspace_id: workspaceId,
          kind: req.kind ?? 'transactional',
          title,
          body,
          data: req.data === undefined ? null : JSON.stringify(req.data),
          metadata: req.metadata === undefined ? null : JSON.stringify(req.metadata),
          status: 'accepted',
          idempotency_key: idempotencyKey ?? null,
          delivery_count: deliveries.length,
          channel_options: req.channel_options === undefined ? null : JSON.stringify(req.channel_options),
          fallback: req.fallback ? 1 : 0,
          created_at: now,
        },
        deliveries,
        ...(idempotencyKey !== undefined && {
          idempotency: { key: idempotencyKey, requestHash: requestHash!, response: JSON.stringify(response), expiresAt: now + this.#idempotencyTtl },
        }),
      };

      const outcome = await this.#committer.submit(item);
      if (outcome === 'idempotency_conflict') {
        const winner = await this.#replay(workspaceId, idempotencyKey!, requestHash!);
        if (winner) return winner;
        throw new Problem('idempotency_in_flight', 'A concurrent request with this Idempotency-Key is being processed; retry shortly', { headers: { 'retry-after': '1' } });
      }
      this.#metrics.notificationsAccepted.inc();
      const woken = new Set<string>();
      for (const d of deliveries) {
        if (d.status !== 'pending') continue;
        woken.add(d.channel);
        this.#metrics.deliveriesCreated.inc({ channel: d.channel });
      }
      this.#onCommitted(woken);
      return { response, replayed: false };
    } finally {
      if (idempotencyKey !== undefined) this.#inFlight.delete(flightKey);
    }
  }

  async #replay(workspaceId: string, key: string, requestHash: string): Promise<AcceptResult | undefined> {
    const record = await findIdempotencyRecord(this.#store.db, workspaceId, key, Date.now());
    if (!record) return undefined;
    if (record.request_hash !== requestHash) {
      throw new Problem('idempotency_key_reused', 'This Idempotency-Key was already used with a different request body');
    }
    return { response: JSON.parse(record.response) as AcceptResponse, replayed: true };
  }

  /** Waits until every submitted notification is committed (shutdown). */
  drain(): Promise<void> {
    return this.#committer.drain();
  }
}
