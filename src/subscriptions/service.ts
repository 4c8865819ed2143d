// Broker subscriptions: turn committed inbound events into actions.
//
// A subscription is {path_pattern, filter?, action}: an event whose source path matches the glob
// (domain/path-pattern.ts) and whose document {payload, headers, path, type, source} passes the
// filter (domain/filter.ts) runs the action:
//   forward  {url, secret?}  the original body to the URL, as a webhook delivery (kind
//                            FORWARD_KIND, domain/forward.ts) to the subscription's reserved
//                            recipient: Standard Webhooks signature, retries, SSRF rules, circuit
//                            breaker, attempt log and DLQ are the webhook channel's;
//   notify   {to | topic | to_path, kind?, template, data?}  a notification through the normal
//                            send (full policy); the template's data is the event document merged
//                            with `data`; deduplicated by event id (and run);
//   realtime {channel}       {type: "inbound.event", event: <document>, run} published to the
//                            organization's real-time room (realtime/service.ts publish).
//
// When it runs. Each committed event gets one job on the lease queue (kind subscription_event,
// key the event id): enqueued when this node hears `inbound.received` from itself, and by
// catchUp() at start and every CATCH_UP_INTERVAL_MS, which asks the inbound service for events
// received since a watermark and enqueues any without a recorded run (this covers events committed
// just before a crash, before their announcement, and announcements lost between nodes). The first
// run of an event acts with the subscriptions created before it was received. A job loads the event, runs every matching subscription not yet recorded
// for (event, run), records each outcome in subscription_runs, and completes. Actions are made
// idempotent by dedupe keys bound to (subscription, event, run): a job retried after a crash
// between an action and its record does not act twice. A replay is a job with a fresh run id.
//
// States of a job row: free (due) --claim--> leased --all subscriptions recorded--> removed;
// leased --failure--> free, due after a back-off; leased, holder died --lease expires--> claimable.

import type { Logger } from 'pino';
import type { SecretBox } from '../auth/secret-box.ts';
import { compileFilter, FilterError, type CompiledFilter } from '../domain/filter.ts';
import { FORWARD_KIND, type ForwardData } from '../domain/forward.ts';
import { idFloor, newId } from '../domain/ids.ts';
import type { EventRow } from '../inbound/service.ts';
import { compilePathPattern, PathPatternError } from '../domain/path-pattern.ts';
import { generateWebhookSecret, isValidWebhookSecret } from '../domain/webhook-signature.ts';
import { Problem, type FieldError } from '../errors.ts';
import type { Events } from '../events/events.ts';
import { enqueueLeases, LeaseQueue, leaseRow, Poller } from '../queue/lease-queue.ts';
import type { AcceptItem, StoreAdapter } from '../store/adapter.ts';
import { reservedWebhookItem } from '../store/reserved-webhook.ts';
import type { SubscriptionRunsTable, SubscriptionsTable } from '../store/schema.ts';
import type { AuditService } from '../audit/service.ts';
import type { SendRequest } from '../queue/accept.ts';
import {
  deleteSubscription,
  eventRuns,
  eventsRun,
  subscribedWorkspaces,
  forwardRecipientId,
  getSubscription,
  insertSubscription,
  listSubscriptions,
  ranSubscriptions,
  recordRun,
  workspaceSubscriptions,
} from './store.ts';

export const SUBSCRIPTION_LEASE_KIND = 'subscription_event';
const LEASE_MS = 60_000;
const BATCH = 16;
/** How far back a start-up catch-up looks for events whose subscriptions never ran. */
export const CATCH_UP_WINDOW_MS = 24 * 3_600_000;
/** How often a node looks again for events whose announcement it did not hear. */
const CATCH_UP_INTERVAL_MS = 5 * 60_000;
/** Dedupe keys hold this long: longer than any retry of a job. */
const DEDUPE_MS = 7 * 24 * 3_600_000;
const RETRY_BACKOFF_MS = [1_000, 5_000, 30_000, 120_000, 600_000];
const MAX_JOB_ATTEMPTS = 20;

/** What subscriptions need from the inbound subsystem (InboundService). */
export interface InboundEvents {
  getEvent(workspaceId: string, id: string): Promise<EventRow | undefined>;
  /** Events of one organization in id (= time) order after the cursor id. */
  listEvents(workspaceId: string, f: { after?: string | undefined; order: 'asc' | 'desc'; limit: number }): Promise<EventRow[]>;
}

export type ForwardAction = { forward: { url: string; secret?: string | undefined } };
export type NotifyAction = {
  notify: {
    to?: string | string[] | undefined;
    topic?: string | undefined;
    to_path?: string | undefined;
    kind?: string | undefined;
    template: string;
    data?: Record<string, unknown> | undefined;
  };
};
export type RealtimeAction = { realtime: { channel: string } };
export type SubscriptionAction = ForwardAction | NotifyAction | RealtimeAction;

export interface SubscriptionInput {
  path_pattern: string;
  filter?: Record<string, unknown> | undefined;
  action: SubscriptionAction;
}

export interface SubscriptionView {
  id: string;
  path_pattern: string;
  filter: Record<string, unknown> | null;
  /** A forward's secret only whole in the answer to the POST that created it; never stored in the action. */
  action: SubscriptionAction;
  created_by: string;
  created_at: number;
}

interface Compiled {
  row: SubscriptionsTable;
  path: (p: string) => boolean;
  filter: CompiledFilter | undefined;
  action: SubscriptionAction;
}

export class SubscriptionService {
  readonly #store: StoreAdapter;
  readonly #secrets: SecretBox;
  readonly #log: Logger;
  readonly #audit: AuditService;
  readonly #send: (workspaceId: string, req: SendRequest) => Promise<unknown>;
  readonly #wake: (channels: string[]) => void;
  readonly #inbound: InboundEvents;
  readonly #publish: (workspaceId: string, channel: string, data: unknown) => Promise<unknown>;
  readonly #leases: LeaseQueue;
  readonly #poller: Poller;
  #unlisten: (() => void) | undefined;
  #catchUpFrom: number;
  #nextCatchUp = Date.now() + CATCH_UP_INTERVAL_MS;

  constructor(opts: {
    store: StoreAdapter;
    secrets: SecretBox;
    log: Logger;
    audit: AuditService;
    /** The normal send (NotificationService.send): full policy. */
    send: (workspaceId: string, req: SendRequest) => Promise<unknown>;
    /** Wakes the workers of these channels (a forward was committed). */
    wake: (channels: string[]) => void;
    /** The inbound subsystem's events. */
    inbound: InboundEvents;
    /** Publishes to a real-time channel (RealtimeService.publish). */
    realtime: (workspaceId: string, channel: string, data: unknown) => Promise<unknown>;
    owner: string;
    pollMs: number;
  }) {
    this.#store = opts.store;
    this.#secrets = opts.secrets;
    this.#log = opts.log;
    this.#audit = opts.audit;
    this.#send = opts.send;
    this.#wake = opts.wake;
    this.#inbound = opts.inbound;
    this.#publish = opts.realtime;
    this.#leases = new LeaseQueue(opts.store, `${opts.owner}:subscriptions`);
    this.#poller = new Poller({ tick: () => this.#tick(), intervalMs: opts.pollMs, onError: (err) => this.#log.warn({ err }, 'subscription job failed') });
    this.#catchUpFrom = Date.now() - CATCH_UP_WINDOW_MS;
  }

  // ---- management ----

  /** Validates and stores a subscription; throws a 422 Problem naming the field at fault. */
  async create(workspaceId: string, input: SubscriptionInput, actor: string): Promise<SubscriptionView> {
    validate(input);
    const now = Date.now();
    const id = newId('sub');
    let action = input.action;
    let forward: { url: string; sealedSecret: string } | undefined;
    let secret: string | undefined;
    if ('forward' in action) {
      secret = action.forward.secret ?? generateWebhookSecret();
      forward = { url: action.forward.url, sealedSecret: this.#secrets.seal(secret) };
      action = { forward: { url: action.forward.url } };
    }
    const row: SubscriptionsTable = {
      workspace_id: workspaceId,
      id,
      path_pattern: input.path_pattern,
      filter: input.filter === undefined ? null : JSON.stringify(input.filter),
      action: JSON.stringify(action),
      created_by: actor,
      created_at: now,
    };
    await insertSubscription(this.#store.db, row, forward);
    await this.#audit.record({ workspaceId, actor, action: 'subscription.create', target: id, details: { path_pattern: input.path_pattern, action: Object.keys(action)[0] } });
    const view = toView(row);
    if (secret !== undefined && 'forward' in view.action) view.action = { forward: { url: view.action.forward.url, secret } };
    return view;
  }

  async get(workspaceId: string, id: string): Promise<SubscriptionView | undefined> {
    const row = await getSubscription(this.#store.db, workspaceId, id);
    return row && toView(row);
  }

  async list(workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<SubscriptionView[]> {
    return (await listSubscriptions(this.#store.db, workspaceId, q)).map(toView);
  }

  async delete(workspaceId: string, id: string, actor: string): Promise<boolean> {
    const deleted = await deleteSubscription(this.#store.db, workspaceId, id);
    if (deleted) await this.#audit.record({ workspaceId, actor, action: 'subscription.delete', target: id });
    return deleted;
  }

  /** What the subscriptions did with an event, oldest first; undefined when the event is not in the workspace. */
  async runs(workspaceId: string, eventId: string): Promise<SubscriptionRunsTable[] | undefined> {
    if (!(await this.#inbound.getEvent(workspaceId, eventId))) return undefined;
    return eventRuns(this.#store.db, workspaceId, eventId);
  }

  /**
   * Runs an event's subscriptions again (a new run: actions are not deduplicated against earlier
   * runs), audited. Undefined when the event is not in the workspace.
   */
  async replay(workspaceId: string, eventId: string, actor: string, reason: string | undefined): Promise<{ run: string } | undefined> {
    const event = await this.#inbound.getEvent(workspaceId, eventId);
    if (!event) return undefined;
    const run = newId('run');
    const now = Date.now();
    await enqueueLeases(this.#store.db, [leaseRow(SUBSCRIPTION_LEASE_KIND, `${eventId}:${run}`, now, now, { payload: JSON.stringify({ workspace_id: workspaceId, event_id: eventId, run }) })]);
    await this.#audit.record({ workspaceId, actor, action: 'event.replay', target: eventId, reason: reason ?? null, details: { run } });
    this.#poller.wake();
    return { run };
  }

  // ---- running ----

  /** Listens for events this node commits, catches up on missed ones, and starts the job worker. */
  async start(events: Events): Promise<void> {
    this.#unlisten ??= events.listen({
      types: ['inbound.received'],
      onEvent: (e) => {
        // Any node's event: the enqueue is idempotent, and a worker node may not be the ingesting one.
        if (e.type !== 'inbound.received') return;
        const eventId = e.event_id;
        this.enqueue([{ id: eventId, workspaceId: e.workspace_id }]).catch((err: unknown) => this.#log.warn({ err, eventId }, 'could not enqueue subscriptions of an event; the catch-up will'));
      },
    });
    this.#poller.start();
    await this.catchUp().catch((err: unknown) => this.#log.warn({ err }, 'subscription catch-up failed'));
  }

  async stop(): Promise<void> {
    this.#unlisten?.();
    this.#unlisten = undefined;
    await this.#poller.stop();
    await this.#leases.release(SUBSCRIPTION_LEASE_KIND).catch(() => 0);
  }

  /** Enqueues the first run of these events' subscriptions (kept as it is when already queued). */
  async enqueue(events: readonly { id: string; workspaceId: string }[]): Promise<void> {
    const now = Date.now();
    await enqueueLeases(
      this.#store.db,
      events.map((e) => leaseRow(SUBSCRIPTION_LEASE_KIND, e.id, now, now, { payload: JSON.stringify({ workspace_id: e.workspaceId, event_id: e.id, run: 'event' }) })),
      { ifAbsent: true },
    );
    this.#poller.wake();
  }

  /**
   * Enqueues events received since the watermark whose first run is not recorded for every
   * matching subscription (cheap to over-enqueue: a job skips what is recorded). Called at start;
   * covers events committed before a crash and never announced.
   */
  async catchUp(): Promise<number> {
    const started = Date.now();
    let n = 0;
    for (const ws of await subscribedWorkspaces(this.#store.db)) {
      let after: string | undefined = idFloor('evt', this.#catchUpFrom);
      for (;;) {
        const page = await this.#inbound.listEvents(ws, { after, order: 'asc', limit: 500 });
        if (page.length === 0) break;
        const ran = await eventsRun(this.#store.db, page.map((e) => e.id));
        const missing = page.filter((e) => !ran.has(e.id)).map((e) => ({ id: e.id, workspaceId: ws }));
        if (missing.length > 0) await this.enqueue(missing);
        n += missing.length;
        after = page.at(-1)!.id;
      }
    }
    this.#catchUpFrom = started - LEASE_MS;
    return n;
  }

  async #tick(): Promise<boolean> {
    if (Date.now() >= this.#nextCatchUp) {
      this.#nextCatchUp = Date.now() + CATCH_UP_INTERVAL_MS;
      await this.catchUp();
    }
    const claimed = await this.#leases.claim(SUBSCRIPTION_LEASE_KIND, BATCH, LEASE_MS);
    for (const lease of claimed) {
      if (this.#poller.stopping) break;
      let job: { workspace_id: string; event_id: string; run: string };
      try {
        job = JSON.parse(lease.payload ?? '') as typeof job;
      } catch {
        await this.#leases.complete(SUBSCRIPTION_LEASE_KIND, lease.key);
        continue;
      }
      try {
        const done = await this.#runJob(job.workspace_id, job.event_id, job.run);
        if (done) await this.#leases.complete(SUBSCRIPTION_LEASE_KIND, lease.key);
        else await this.#leases.fail(SUBSCRIPTION_LEASE_KIND, lease.key, Date.now() + 1_000);
      } catch (err) {
        this.#log.warn({ err, event: job.event_id }, 'subscriptions of an event failed; retrying');
        if (lease.attempts >= MAX_JOB_ATTEMPTS) await this.#leases.complete(SUBSCRIPTION_LEASE_KIND, lease.key);
        else await this.#leases.fail(SUBSCRIPTION_LEASE_KIND, lease.key, Date.now() + RETRY_BACKOFF_MS[Math.min(lease.attempts - 1, RETRY_BACKOFF_MS.length - 1)]!);
      }
    }
    return claimed.length === BATCH;
  }

  /** Runs the event's matching subscriptions not yet recorded for `run`; false: try again later. */
  async #runJob(workspaceId: string, eventId: string, run: string): Promise<boolean> {
    const row = await this.#inbound.getEvent(workspaceId, eventId);
    if (!row) return true; // purged or deleted: nothing to do
    const event = subscribedEvent(row);
    const done = await ranSubscriptions(this.#store.db, eventId, run);
    // The first run acts with subscriptions that existed when the event arrived; a replay with all.
    const subs = (await workspaceSubscriptions(this.#store.db, workspaceId))
      .filter((s) => !done.has(s.id) && (run !== 'event' || s.created_at <= row.received_at))
      .map(compiled);
    const doc = eventDocument(event);
    for (const sub of subs) {
      if (!sub.path(event.path) || (sub.filter && !sub.filter.matches(doc))) continue;
      const outcome = await this.#act(sub, event, doc, run);
      await recordRun(this.#store.db, { workspace_id: workspaceId, event_id: eventId, subscription_id: sub.row.id, run, outcome: outcome.outcome, detail: outcome.detail, created_at: Date.now() });
    }
    return true;
  }

  async #act(sub: Compiled, event: SubscribedEvent, doc: Record<string, unknown>, run: string): Promise<{ outcome: string; detail: string | null }> {
    const dedupeKey = `sub:${sub.row.id}:${event.id}:${run}`;
    const a = sub.action;
    if ('forward' in a) {
      const now = Date.now();
      const id = newId('ntf');
      const recipient = forwardRecipientId(sub.row.id);
      const data: ForwardData = { event_id: event.id, subscription_id: sub.row.id, event_type: event.type, path: event.path, content_type: event.contentType, body: event.body, encoding: event.encoding };
      const item = forwardItem(event.workspaceId, id, recipient, data, now, { key: dedupeKey, expiresAt: now + DEDUPE_MS });
      const [outcome] = await this.#store.acceptBatch([item]);
      if (outcome === 'ok') this.#wake(['webhook']);
      return { outcome: 'forwarded', detail: outcome === 'ok' ? id : 'already forwarded' };
    }
    if ('notify' in a) {
      const n = a.notify;
      const to = n.topic !== undefined ? { topic: n.topic } : n.to_path !== undefined ? recipientsAt(doc, n.to_path) : n.to!;
      if (Array.isArray(to) && to.length === 0) return { outcome: 'skipped', detail: `no recipient id at ${n.to_path}` };
      const data = { ...doc, ...n.data };
      try {
        const res = (await this.#send(event.workspaceId, { to, ...(n.kind !== undefined && { kind: n.kind }), template: n.template, data, dedupe_key: dedupeKey, dedupe_window: '7d' })) as { response?: { id?: string } };
        return { outcome: 'notified', detail: res.response?.id ?? null };
      } catch (err) {
        if (err instanceof Problem && err.status < 500) return { outcome: 'failed', detail: `${err.code}: ${err.message}`.slice(0, 1000) };
        throw err;
      }
    }
    const published = await this.#publish(event.workspaceId, a.realtime.channel, { type: 'inbound.event', event: doc, run });
    return { outcome: 'published', detail: JSON.stringify(published) };
  }
}

/** An inbound event as subscriptions use it. */
export interface SubscribedEvent {
  id: string;
  workspaceId: string;
  source: string;
  path: string;
  type: string | null;
  headers: Record<string, string>;
  /** Parsed JSON or form body; null for other bodies. */
  payload: unknown;
  contentType: string;
  body: string;
  encoding: 'utf8' | 'base64';
  receivedAt: number;
}

function subscribedEvent(r: EventRow): SubscribedEvent {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    source: r.source_id,
    path: r.path,
    type: r.event_type,
    headers: JSON.parse(r.headers) as Record<string, string>,
    payload: r.payload === null ? null : (JSON.parse(r.payload) as unknown),
    contentType: r.content_type ?? 'application/octet-stream',
    body: r.body,
    encoding: r.body_encoding,
    receivedAt: r.received_at,
  };
}

/** The document filters and templates see for an inbound event. */
export function eventDocument(e: SubscribedEvent): Record<string, unknown> {
  return { payload: e.payload, headers: e.headers, path: e.path, type: e.type, source: e.source, id: e.id, received_at: new Date(e.receivedAt).toISOString() };
}

/** Recipient ids at a dotted path: a string, or the strings of an array. */
function recipientsAt(doc: unknown, path: string): string[] {
  let v: unknown = doc;
  for (const seg of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, seg)) return [];
    v = (v as Record<string, unknown>)[seg];
  }
  const ids = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$/.test(x));
  return [...new Set(ids)].slice(0, 1000);
}

function compiled(row: SubscriptionsTable): Compiled {
  return {
    row,
    path: compilePathPattern(row.path_pattern),
    filter: row.filter === null ? undefined : compileFilter(JSON.parse(row.filter)),
    action: JSON.parse(row.action) as SubscriptionAction,
  };
}

function toView(row: SubscriptionsTable): SubscriptionView {
  return {
    id: row.id,
    path_pattern: row.path_pattern,
    filter: row.filter === null ? null : (JSON.parse(row.filter) as Record<string, unknown>),
    action: JSON.parse(row.action) as SubscriptionAction,
    created_by: row.created_by,
    created_at: row.created_at,
  };
}

/** Validation the schema cannot express: the glob, the filter, one notify target, the forward URL. */
function validate(input: SubscriptionInput): void {
  const errors: FieldError[] = [];
  try {
    compilePathPattern(input.path_pattern);
  } catch (e) {
    if (!(e instanceof PathPatternError)) throw e;
    errors.push({ path: 'body.path_pattern', message: e.message });
  }
  if (input.filter !== undefined) {
    try {
      compileFilter(input.filter);
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      errors.push({ path: e.path === '' ? 'body.filter' : `body.filter.${e.path}`, message: e.reason });
    }
  }
  const a = input.action;
  if ('forward' in a) {
    errors.push(...checkUrl('body.action.forward.url', a.forward.url));
    if (a.forward.secret !== undefined && !isValidWebhookSecret(a.forward.secret)) {
      errors.push({ path: 'body.action.forward.secret', message: 'must be "whsec_" followed by base64 of 24 to 64 bytes' });
    }
  }
  if ('notify' in a) {
    const targets = (['to', 'topic', 'to_path'] as const).filter((k) => a.notify[k] !== undefined);
    if (targets.length !== 1) errors.push({ path: 'body.action.notify', message: 'give exactly one of to, topic or to_path' });
  }
  if (errors.length > 0) throw new Problem('validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}

function checkUrl(path: string, text: string): FieldError[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [{ path, message: 'is not a URL' }];
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return [{ path, message: 'must be an http or https URL' }];
  if (url.username || url.password) return [{ path, message: 'must not contain credentials' }];
  return [];
}

/** A forward: the notification and its one webhook delivery to the subscription's reserved recipient. */
function forwardItem(workspaceId: string, id: string, recipient: string, data: ForwardData, now: number, dedupe: { key: string; expiresAt: number }): AcceptItem {
  return reservedWebhookItem({ workspaceId, id, recipient, kind: FORWARD_KIND, title: `Forward of ${data.event_id}`, body: '', data, now, dedupe });
}
