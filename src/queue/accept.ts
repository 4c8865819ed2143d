// The accept path of POST /v1/notifications: validate against the store, decide each recipient's
// deliveries under the workspace's policy (docs/policy.md: kind, preferences, quiet hours, channel
// blackouts, rate limits, templates, routing, deduplication), and write the notification with its
// deliveries durably before answering.
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
import { deliveryId, newId } from '../domain/ids.ts';
import { decideRecipient, type DecidedDelivery } from '../domain/decide.ts';
import { localeChain, pickVariant } from '../domain/locale.ts';
import { missingVariables, renderVariant, TemplateError, type RenderedContent } from '../domain/templates.ts';
import { summarizeNotification, type DeliveryStatus, type StatusCounts } from '../domain/delivery-status.ts';
import { parseDuration } from '../domain/duration.ts';
import { Problem } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { AcceptItem, AcceptOutcome, RecipientAddresses, StoreAdapter } from '../store/adapter.ts';
import { GroupCommitter } from './group-commit.ts';
import { findIdempotencyRecord } from '../store/idempotency.ts';
import type { DeliveriesTable, NotificationsTable } from '../store/schema.ts';
import type { HeraldEvent } from '../domain/events.ts';
import type { Events } from '../events/events.ts';
import { findActiveDevices } from '../devices/store.ts';
import { findDedupeHolders } from '../store/dedupe.ts';
import { acceptWithDigest, type DigestSpec } from '../store/digests.ts';
import { getPreferencesFor, type Preferences } from '../preferences/store.ts';
import type { Kind } from '../domain/kinds.ts';
import { getTemplate, type Template } from '../templates/store.ts';
import { countMembers, getTopic } from '../topics/store.ts';
import type { RateLimiter } from '../ratelimit/limiter.ts';
import type { PolicyCache } from './policy.ts';
import type { RecipientCache } from './recipient-cache.ts';

const DEFAULT_DEDUPE_WINDOW_MS = 86_400_000;

export interface SendRequest {
  /** Recipient ids, or a topic whose members get it (expanded in the background, queue/fanout.ts). */
  to: string | string[] | { topic: string };
  kind?: string;
  title?: string;
  body?: string;
  data?: unknown;
  channels?: ChannelName[];
  /** Per-channel options ({pushover: {priority…}, apns: {…}}), validated by the HTTP schema. */
  channel_options?: Partial<Record<ChannelName, Record<string, unknown>>>;
  /** Whether a channel may hand the notification to its fallback channel (kakao -> sms). */
  fallback?: boolean;
  /** ISO 8601 time: deliveries wait (`scheduled`, reason send_at) until then. Past: now. */
  send_at?: string;
  /**
   * A recipient that already got a notification with this key inside the window (default 24 h)
   * gets this one as `deduplicated` deliveries instead.
   */
  dedupe_key?: string;
  /** Duration, e.g. "24h". */
  dedupe_window?: string;
  /** Overrides the kind's routing: 'all' every channel at once; 'first' one at a time, the next only if it fails. */
  routing?: 'all' | 'first';
  /** A template key: title and body are rendered per recipient locale and channel from `data`. */
  template?: string;
  /**
   * Overrides the kind's digest: notifications to a recipient on a channel with the same key within
   * `window` go out as one delivery when the window closes, rendered with `template` if given.
   */
  digest?: { key: string; window: string; template?: string };
  metadata?: Record<string, unknown>;
}

export interface AcceptResponse {
  id: string;
  status: 'accepted';
  deliveries: { id: string; recipient: string; channel: string; device?: string; status: string; reason?: string; scheduled_for?: string }[];
  /** A topic send: its deliveries are made in the background, member by member. */
  topic?: { key: string; members: number };
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
  readonly #policy: PolicyCache;
  readonly #recipients: RecipientCache;
  readonly #limiter: RateLimiter;
  readonly #onFanout: () => void;
  readonly #events: Events | undefined;

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
    /** Called after a topic send is committed (a wake-up hint for the fan-out workers). */
    onFanout?: () => void;
    policy: PolicyCache;
    /** Where direct sends read their recipients (topic fan-out batches read the store). */
    recipients: RecipientCache;
    rateLimiter: RateLimiter;
    /** Where committed notifications are announced (notification.accepted). */
    events?: Events | undefined;
  }) {
    this.#events = opts.events;
    this.#recipients = opts.recipients;
    this.#policy = opts.policy;
    this.#onFanout = opts.onFanout ?? (() => undefined);
    this.#limiter = opts.rateLimiter;
    this.#store = opts.store;
    this.#reachable = opts.reachable;
    this.#configured = opts.configured;
    this.#metrics = opts.metrics;
    this.#idempotencyTtl = opts.idempotencyTtlMs;
    this.#onCommitted = opts.onCommitted;
    this.#committer = new GroupCommitter((items) => this.#store.acceptBatch(items), this.#store.acceptBatching);
  }

  async accept(workspaceId: string, req: SendRequest, idempotencyKey?: string): Promise<AcceptResult> {
    const title = req.title ?? '';
    const body = req.body ?? '';
    checkTiming(req);
    if (req.template === undefined && title.trim() === '' && body.trim() === '') throw new Problem('empty_content', 'Give a title or a body (or both), or a template');
    const topic = typeof req.to === 'object' && !Array.isArray(req.to) ? req.to.topic : undefined;
    const to = topic !== undefined ? [] : [...new Set(Array.isArray(req.to) ? req.to : [req.to as string])];

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
      if (topic !== undefined) return await this.#acceptTopic(workspaceId, req, topic, title, body, idempotencyKey, requestHash);
      const recipients = await this.#recipients.find(workspaceId, to);
      if (recipients.length !== to.length) {
        const known = new Set(recipients.map((r) => r.id));
        const unknown = to.filter((id) => !known.has(id));
        throw new Problem('unknown_recipients', `Unknown recipients: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ', …' : ''}`, { extensions: { recipients: unknown } });
      }
      const now = Date.now();
      // Recipients holding the dedupe key already get `deduplicated` deliveries: they take no rate-limit tokens.
      const held = req.dedupe_key === undefined ? undefined : await findDedupeHolders(this.#store.db, workspaceId, to, req.dedupe_key, now);
      const { decided, contents, kind, template } = await this.#decide(workspaceId, req, recipients, now, 'direct', undefined, held);

      for (let round = 1; ; round++) {
        const dedupeKey = req.dedupe_key;
        const holders = round === 1 || dedupeKey === undefined ? held : await findDedupeHolders(this.#store.db, workspaceId, to, dedupeKey, now);
        const { item, response } = this.#build(workspaceId, req, kind, title, body, decided, contents, template, now, holders, idempotencyKey, requestHash);
        const digest = digestSpec(req, kind);
        const outcome = digest
          ? await acceptWithDigest(this.#store, item, digest, now, (ds) => {
              response.deliveries = deliveryViews(ds);
              return JSON.stringify(response);
            })
          : await this.#committer.submit(item);
        if (digest) response.deliveries = deliveryViews(item.deliveries);
        if (outcome === 'idempotency_conflict') {
          const winner = await this.#replay(workspaceId, idempotencyKey!, requestHash!);
          if (winner) return winner;
          throw new Problem('idempotency_in_flight', 'A concurrent request with this Idempotency-Key is being processed; retry shortly', { headers: { 'retry-after': '1' } });
        }
        // Another notification took a dedupe key between our read and our write: decide again.
        if (outcome === 'dedupe_conflict') {
          if (round < 3) continue;
          throw new Problem('conflict', 'Concurrent notifications with this dedupe_key are being accepted; retry shortly', { headers: { 'retry-after': '1' } });
        }
        this.#committed(item.notification, item.deliveries);
        return { response, replayed: false };
      }
    } finally {
      if (idempotencyKey !== undefined) this.#inFlight.delete(flightKey);
    }
  }

  /**
   * A topic send: the notification and its fan-out row are committed (202) before any member is
   * looked at; workers expand the members in batches (queue/fanout.ts). Refused here: an unknown
   * topic, and a template whose variants use names `data` lacks.
   */
  async #acceptTopic(workspaceId: string, req: SendRequest, topicKey: string, title: string, body: string, idempotencyKey: string | undefined, requestHash: string | undefined): Promise<AcceptResult> {
    const topic = await getTopic(this.#store.db, workspaceId, topicKey);
    if (!topic) throw new Problem('validation_failed', `body.to.topic: no topic "${topicKey}"`, { errors: [{ path: 'body.to.topic', message: `no topic "${topicKey}"` }] });
    const [kind, template, members] = await Promise.all([
      this.#policy.kind(workspaceId, req.kind ?? 'transactional'),
      req.template === undefined ? undefined : this.#policy.template(workspaceId, req.template),
      countMembers(this.#store.db, workspaceId, topicKey),
    ]);
    if (req.template !== undefined) {
      if (!template) throw new Problem('validation_failed', `body.template: no template "${req.template}"`, { errors: [{ path: 'body.template', message: `no template "${req.template}"` }] });
      const missing = [...new Set(template.variants.flatMap((v) => missingVariables(v, req.data ?? {})))].sort();
      if (missing.length > 0) throw new Problem('missing_variables', `The template "${template.key}" uses ${missing.join(', ')}, which data does not have`, { extensions: { missing } });
    }
    const now = Date.now();
    const notificationId = newId('ntf');
    const response: AcceptResponse = { id: notificationId, status: 'accepted', deliveries: [], topic: { key: topicKey, members } };
    const item: AcceptItem = {
      notification: {
        id: notificationId,
        workspace_id: workspaceId,
        kind: kind.kind,
        title,
        body,
        data: req.data === undefined ? null : JSON.stringify(req.data),
        metadata: req.metadata === undefined ? null : JSON.stringify(req.metadata),
        status: 'accepted',
        idempotency_key: idempotencyKey ?? null,
        delivery_count: 0,
        channel_options: req.channel_options === undefined ? null : JSON.stringify(req.channel_options),
        fallback: req.fallback ? 1 : 0,
        routing: req.routing ?? kind.routing,
        template: template ? `${template.key}@${template.version}` : null,
        created_at: now,
      },
      deliveries: [],
      fanout: {
        notification_id: notificationId,
        workspace_id: workspaceId,
        topic: topicKey,
        request: JSON.stringify(req),
        template_version: template?.version ?? null,
        after: null,
        state: 'pending',
        recipients: 0,
        created_at: now,
        updated_at: now,
      },
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
    if (this.#events?.wants('notification.accepted')) this.#events.emit([acceptedEvent(item.notification, [], now)]);
    this.#onFanout();
    return { response, replayed: false };
  }

  /**
   * The delivery rows of a batch of a topic's members for a topic send (queue/fanout.ts), decided
   * at `now` under the workspace's policy like a direct send, without its refusals: members that
   * were deleted or cannot be reached get nothing. Dedupe keys held by another notification make
   * `deduplicated` rows; `dedupe` lists the members whose keys this batch takes.
   */
  async deliveriesForMembers(
    workspaceId: string,
    notificationId: string,
    req: SendRequest,
    memberIds: readonly string[],
    templateVersion: number | null,
    now: number,
  ): Promise<{ rows: DeliveriesTable[]; dedupe?: { key: string; recipients: string[]; expiresAt: number } }> {
    const recipients = await this.#store.findRecipients(workspaceId, [...memberIds]);
    if (recipients.length === 0) return { rows: [] };
    const holders = req.dedupe_key === undefined ? undefined : await findDedupeHolders(this.#store.db, workspaceId, recipients.map((r) => r.id), req.dedupe_key, now);
    const { decided, contents, kind } = await this.#decide(workspaceId, req, recipients, now, 'fanout', templateVersion ?? undefined, holders);
    // Ids without ordinals: a notification's fan-out batches each make deliveries.
    const rows = deliveryRows(workspaceId, notificationId, req.routing ?? kind.routing, decided, contents, now, holders, false);
    if (req.dedupe_key === undefined) return { rows };
    const taking = [...new Set(rows.filter((r) => r.status !== 'deduplicated' && r.status !== 'skipped').map((r) => r.recipient_id))];
    const window = req.dedupe_window === undefined ? DEFAULT_DEDUPE_WINDOW_MS : parseDuration(req.dedupe_window);
    return { rows, dedupe: { key: req.dedupe_key, recipients: taking, expiresAt: now + window } };
  }

  /**
   * Each recipient's deliveries under the workspace's policy (domain/decide.ts, then templates and
   * rate limits). `direct` (a send naming its recipients): a recipient that cannot be reached is a
   * 422 no_channel and a single recipient throttled everywhere a 429. `fanout` (a batch of a
   * topic's members): such members simply get nothing, and the template is the accepted version.
   */
  async #decide(
    workspaceId: string,
    req: SendRequest,
    recipients: readonly RecipientAddresses[],
    now: number,
    mode: 'direct' | 'fanout',
    templateVersion?: number,
    /** Recipients holding the request's dedupe key (their deliveries become `deduplicated`). */
    dedupeHolders?: ReadonlyMap<string, string>,
  ): Promise<{ decided: DecidedDelivery[]; contents: (RenderedContent | undefined)[] | undefined; kind: Kind; template: Template | undefined }> {
    const kindName = req.kind ?? 'transactional';
    const ids = recipients.map((r) => r.id);
    const [configured, kind, settings, template] = await Promise.all([
      this.#configured(workspaceId),
      this.#policy.kind(workspaceId, kindName),
      this.#policy.settings(workspaceId),
      req.template === undefined ? undefined : templateVersion === undefined ? this.#policy.template(workspaceId, req.template) : getTemplate(this.#store.db, workspaceId, req.template, templateVersion),
    ]);
    if (req.template !== undefined && !template) {
      throw new Problem('validation_failed', `body.template: no template "${req.template}"`, { errors: [{ path: 'body.template', message: `no template "${req.template}"` }] });
    }
    const candidates = req.channels ?? (kind.channels as ChannelName[] | null) ?? configured;
    const deviceChannels = DEVICE_CHANNELS.filter((c) => candidates.includes(c) && configured.includes(c));
    let devices: Map<string, Map<ChannelName, string[]>> | undefined;
    if (deviceChannels.length > 0) {
      devices = new Map(recipients.map((r) => [r.id, new Map<ChannelName, string[]>(deviceChannels.map((c) => [c, []]))]));
      for (const d of await findActiveDevices(this.#store.db, workspaceId, ids, deviceChannels)) {
        devices.get(d.recipient_id)?.get(d.platform as ChannelName)?.push(d.id);
      }
    }
    // A mandatory kind ignores preferences (opt-outs and quiet hours alike): no need to read them.
    const prefs: Map<string, Preferences> | undefined =
      kind.mandatory || !(await this.#policy.hasPreferences(workspaceId)) ? undefined : await getPreferencesFor(this.#store.db, workspaceId, ids);
    const blackouts = settings.channel_blackouts
      ? Object.fromEntries(Object.entries(settings.channel_blackouts).map(([c, w]) => [c, { start: w.start, end: w.end, timeZone: w.timezone }]))
      : null;
    const decided: DecidedDelivery[] = [];
    const unreachable: string[] = [];
    for (const r of recipients) {
      const p = prefs?.get(r.id);
      const out = decideRecipient(
        {
          kind: { mandatory: kind.mandatory, channels: kind.channels, quietHours: kind.quiet_hours, blackout: kind.blackout },
          requested: req.channels,
          configured,
          now,
          sendAt: req.send_at === undefined ? undefined : Date.parse(req.send_at),
          blackouts,
        },
        { id: r.id, reachable: this.#reachable(r), devices: devices?.get(r.id), preference: p?.kinds[kindName], quietHours: p?.quiet_hours, timeZone: r.timezone },
      );
      if (!out.reachable) unreachable.push(r.id);
      decided.push(...out.deliveries);
    }
    if (mode === 'direct' && unreachable.length > 0) {
      throw new Problem('no_channel', `No usable channel for: ${unreachable.slice(0, 20).join(', ')}`, { extensions: { recipients: unreachable } });
    }
    const contents = template ? renderAll(template, decided, recipients, settings.default_locale, req.data ?? {}, mode) : undefined;
    await this.#throttle(workspaceId, kind, decided, now, mode === 'direct' && recipients.length === 1, dedupeHolders);
    return { decided, contents, kind, template };
  }

  /** The notification row, its deliveries and the 202 body, for a plan decided at `now`. */
  #build(
    workspaceId: string,
    req: SendRequest,
    kind: Kind,
    title: string,
    body: string,
    planned: readonly DecidedDelivery[],
    contents: readonly (RenderedContent | undefined)[] | undefined,
    template: Template | undefined,
    now: number,
    dedupeHolders: ReadonlyMap<string, string> | undefined,
    idempotencyKey: string | undefined,
    requestHash: string | undefined,
  ): { item: AcceptItem; response: AcceptResponse } {
    const notificationId = newId('ntf');
    const routing = req.routing ?? kind.routing;
    const deliveries = deliveryRows(workspaceId, notificationId, routing, planned, contents, now, dedupeHolders);
    const counts: StatusCounts = {};
    for (const d of deliveries) counts[d.status] = (counts[d.status] ?? 0) + 1;
    const response: AcceptResponse = { id: notificationId, status: 'accepted', deliveries: deliveryViews(deliveries) };
    const dedupeKey = req.dedupe_key;
    const item: AcceptItem = {
      notification: {
        id: notificationId,
        workspace_id: workspaceId,
        kind: kind.kind,
        title: title || contents?.find((c) => c)?.title || '',
        body: body || contents?.find((c) => c)?.body || '',
        data: req.data === undefined ? null : JSON.stringify(req.data),
        metadata: req.metadata === undefined ? null : JSON.stringify(req.metadata),
        status: summarizeNotification(counts),
        idempotency_key: idempotencyKey ?? null,
        delivery_count: deliveries.length,
        channel_options: req.channel_options === undefined ? null : JSON.stringify(req.channel_options),
        fallback: req.fallback ? 1 : 0,
        routing,
        template: template ? `${template.key}@${template.version}` : null,
        created_at: now,
      },
      deliveries,
      ...(idempotencyKey !== undefined && {
        idempotency: { key: idempotencyKey, requestHash: requestHash!, response: JSON.stringify(response), expiresAt: now + this.#idempotencyTtl },
      }),
      ...(dedupeKey !== undefined && {
        dedupe: {
          key: dedupeKey,
          recipients: [...new Set(planned.map((p) => p.recipientId))].filter((r) => !dedupeHolders?.has(r)),
          expiresAt: now + (req.dedupe_window === undefined ? DEFAULT_DEDUPE_WINDOW_MS : parseDuration(req.dedupe_window)),
        },
      }),
    };
    return { item, response };
  }

  /**
   * Rate limits, per recipient x channel for the kind (kind.rate_limits[channel], else its "*"):
   * one token per notification and channel, taken only for deliveries that would go (pending or
   * scheduled; not those of recipients holding the dedupe key, which become `deduplicated`).
   * Beyond the limit a delivery is `throttled` until a token is back (kind throttle `defer`) or
   * skipped as `throttled` (`drop`). A single-recipient send throttled on every channel
   * is refused with 429 and Retry-After, and nothing is stored.
   */
  async #throttle(workspaceId: string, kind: Kind, decided: DecidedDelivery[], now: number, single: boolean, deduplicated?: ReadonlyMap<string, string>): Promise<void> {
    const limits = kind.rate_limits;
    if (!limits) return;
    const groups = new Map<string, DecidedDelivery[]>();
    for (const d of decided) {
      if (d.status === 'skipped' || deduplicated?.has(d.recipientId)) continue;
      const k = `${d.recipientId}\u0000${d.channel}`;
      const g = groups.get(k);
      if (g) g.push(d);
      else groups.set(k, [d]);
    }
    let going = 0;
    let retryAfterMs = Infinity;
    const refused: DecidedDelivery[][] = [];
    for (const [, group] of groups) {
      const { recipientId, channel } = group[0]!;
      const limit = limits[channel] ?? limits['*'];
      if (!limit) {
        going++;
        continue;
      }
      const decision = await this.#limiter.consume(`kind:${workspaceId}:${kind.kind}:${recipientId}:${channel}`, limit.limit, limit.per_ms);
      if (decision.allowed) {
        going++;
        continue;
      }
      retryAfterMs = Math.min(retryAfterMs, decision.retryAfterMs);
      refused.push(group);
      for (const d of group) {
        if (kind.throttle === 'drop') Object.assign(d, { status: 'skipped', reason: 'throttled', runAt: now });
        else Object.assign(d, { status: 'throttled', reason: 'rate_limit', runAt: Math.max(d.runAt, now + decision.retryAfterMs) });
      }
    }
    if (single && going === 0 && refused.length > 0) {
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      throw new Problem('rate_limited', `This recipient got too many "${kind.kind}" notifications; retry in ${seconds}s`, { headers: { 'retry-after': String(seconds) } });
    }
  }

  #committed(notification: NotificationsTable, deliveries: readonly DeliveriesTable[]): void {
    this.#metrics.notificationsAccepted.inc();
    if (this.#events?.wants('notification.accepted')) this.#events.emit([acceptedEvent(notification, deliveries, Date.now())]);
    const woken = new Set<string>();
    for (const d of deliveries) {
      if (d.status !== 'pending') continue;
      woken.add(d.channel);
      this.#metrics.deliveriesCreated.inc({ channel: d.channel });
    }
    this.#onCommitted(woken);
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

const MAX_SEND_AHEAD_MS = 366 * 86_400_000;
const MAX_DEDUPE_WINDOW_MS = 30 * 86_400_000;

/** send_at and dedupe_window within their bounds (the schema checks their syntax). */
function checkTiming(req: SendRequest): void {
  const errors: { path: string; message: string }[] = [];
  if (req.send_at !== undefined) {
    const at = Date.parse(req.send_at);
    if (!Number.isFinite(at)) errors.push({ path: 'body.send_at', message: 'is not a date-time' });
    else if (at - Date.now() > MAX_SEND_AHEAD_MS) errors.push({ path: 'body.send_at', message: 'is more than a year ahead' });
  }
  if (req.dedupe_window !== undefined) {
    let ms: number | undefined;
    try {
      ms = parseDuration(req.dedupe_window);
    } catch {
      errors.push({ path: 'body.dedupe_window', message: 'is not a duration' });
    }
    if (ms !== undefined && (ms < 1000 || ms > MAX_DEDUPE_WINDOW_MS)) errors.push({ path: 'body.dedupe_window', message: 'must be from 1s to 30d' });
  }
  if (req.digest !== undefined) {
    let ms: number | undefined;
    try {
      ms = parseDuration(req.digest.window);
    } catch {
      errors.push({ path: 'body.digest.window', message: 'is not a duration' });
    }
    if (ms !== undefined && (ms < 1000 || ms > 7 * 86_400_000)) errors.push({ path: 'body.digest.window', message: 'must be from 1s to 7d' });
    if (typeof req.to === 'object' && !Array.isArray(req.to)) errors.push({ path: 'body.digest', message: 'is not available for topic sends' });
  }
  if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
}

/**
 * Each decided delivery's rendering of the template: the variant for the recipient's locale chain
 * (recipient locale, its prefixes, the workspace default) and the delivery's channel. Refuses the
 * send (422 missing_variables, listing them) when a variant uses names `data` lacks, or
 * (validation_failed) when no variant fits a recipient; in a topic's fan-out such a member's
 * delivery is skipped (no_template_variant) instead.
 */
function renderAll(
  template: Template,
  decided: DecidedDelivery[],
  recipients: readonly { id: string; locale: string | null }[],
  defaultLocale: string,
  data: unknown,
  mode: 'direct' | 'fanout',
): (RenderedContent | undefined)[] {
  const locales = new Map(recipients.map((r) => [r.id, r.locale]));
  const missing = new Set<string>();
  const noVariant: string[] = [];
  const picked = decided.map((d) => {
    if (d.status === 'skipped') return undefined;
    const variant = pickVariant(template.variants, localeChain(locales.get(d.recipientId), defaultLocale), d.channel);
    if (!variant) {
      // A topic member no variant fits gets nothing (the send was accepted before members were seen).
      if (mode === 'fanout') Object.assign(d, { status: 'skipped', reason: 'no_template_variant', runAt: d.runAt });
      else noVariant.push(d.recipientId);
      return undefined;
    }
    try {
      for (const name of missingVariables(variant, data)) missing.add(name);
    } catch (err) {
      if (err instanceof TemplateError) throw new Problem('validation_failed', `body.data: ${err.message}`, { errors: [{ path: 'body.data', message: err.message }] });
      throw err;
    }
    return variant;
  });
  if (noVariant.length > 0) {
    const who = [...new Set(noVariant)];
    throw new Problem('validation_failed', `body.template: template "${template.key}" has no variant for the locale of ${who.slice(0, 20).join(', ')} (nor the workspace default ${defaultLocale})`, {
      errors: [{ path: 'body.template', message: `no variant for ${who.slice(0, 20).join(', ')}` }],
    });
  }
  if (missing.size > 0) {
    const names = [...missing].sort();
    throw new Problem('missing_variables', `The template "${template.key}" uses ${names.join(', ')}, which data does not have`, { extensions: { missing: names } });
  }
  return picked.map((v, i) => (v ? renderVariant(v, data, { channel: decided[i]!.channel }) : undefined));
}

/**
 * The delivery rows of decided deliveries. Routing "first": per recipient, the deliveries of its
 * first channel go; each later channel's wait (`standby`) for the previous channel's first
 * delivery (after_id). A recipient whose dedupe key another notification holds gets
 * `deduplicated` deliveries. Ids are in the notification's key range (deliveryId); `ordinals`: the
 * notification's deliveries are all made by this call (its accept), so the i-th gets ordinal i.
 */
export function deliveryRows(
  workspaceId: string,
  notificationId: string,
  routing: string,
  planned: readonly DecidedDelivery[],
  contents: readonly (RenderedContent | undefined)[] | undefined,
  now: number,
  dedupeHolders: ReadonlyMap<string, string> | undefined,
  ordinals = true,
): DeliveriesTable[] {
  const stepOf = new Map<string, { channel: string; first: string; previous: string | null }>();
  return planned.map((p, i) => {
    const duplicateOf = dedupeHolders?.get(p.recipientId);
    const [status, reason]: [DeliveryStatus, string | null] =
      p.status === 'skipped' ? ['skipped', p.reason] : duplicateOf ? ['deduplicated', `duplicate_of:${duplicateOf}`] : [p.status, p.reason];
    const terminal = status === 'skipped' || status === 'deduplicated';
    const content = contents?.[i];
    const id = ordinals ? deliveryId(notificationId, i) : deliveryId(notificationId);
    let afterId: string | null = null;
    if (routing === 'first' && !terminal) {
      const step = stepOf.get(p.recipientId);
      if (!step) stepOf.set(p.recipientId, { channel: p.channel, first: id, previous: null });
      else if (step.channel === p.channel) afterId = step.previous;
      else {
        stepOf.set(p.recipientId, { channel: p.channel, first: id, previous: step.first });
        afterId = step.first;
      }
    }
    return {
      id,
      workspace_id: workspaceId,
      notification_id: notificationId,
      recipient_id: p.recipientId,
      channel: p.channel,
      device_id: p.deviceId ?? null,
      status: afterId ? 'standby' : status,
      reason: afterId ? 'routing_first' : reason,
      attempts: 0,
      run_at: p.runAt,
      lease_owner: null,
      error_class: null,
      last_error: null,
      provider_message_id: null,
      created_at: now,
      updated_at: now,
      completed_at: terminal ? now : null,
      after_id: afterId,
      content: content ? JSON.stringify(content) : null,
    };
  });
}

/** The notification.accepted event of a committed notification. */
function acceptedEvent(n: NotificationsTable, deliveries: readonly DeliveriesTable[], at: number): HeraldEvent {
  return {
    type: 'notification.accepted',
    at,
    workspace_id: n.workspace_id,
    notification_id: n.id,
    kind: n.kind,
    deliveries: deliveries.map((d) => ({ delivery_id: d.id, recipient_id: d.recipient_id, channel: d.channel, status: d.status })),
  };
}

/** The deliveries as the 202 body shows them. */
function deliveryViews(deliveries: readonly DeliveriesTable[]): AcceptResponse['deliveries'] {
  return deliveries.map((d) => ({
    id: d.id,
    recipient: d.recipient_id,
    channel: d.channel,
    ...(d.device_id && { device: d.device_id }),
    status: d.status,
    ...(d.reason && { reason: d.reason }),
    ...((d.status === 'scheduled' || d.status === 'throttled') && { scheduled_for: new Date(d.run_at).toISOString() }),
  }));
}

/** The digest a send uses: its own, else its kind's (keyed by the kind's key or name). */
function digestSpec(req: SendRequest, kind: Kind): DigestSpec | undefined {
  if (req.digest) return { key: req.digest.key, windowMs: parseDuration(req.digest.window), template: req.digest.template ?? null };
  if (kind.digest) return { key: kind.digest.key ?? kind.kind, windowMs: kind.digest.window_ms, template: null };
  return undefined;
}
