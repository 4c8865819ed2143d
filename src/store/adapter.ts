// The storage adapter: everything that differs between SQLite and PostgreSQL lives behind this
// interface (store/sqlite.ts, and store/postgres.ts). Plain CRUD goes through `db` (Kysely) in
// dialect-neutral modules; the queue's hot path (accept, claim, settle) is hand-written SQL per
// dialect, because it is where the time goes and where the locking semantics differ.

import type { Kysely } from 'kysely';
import { CLAIMABLE } from '../domain/delivery-status.ts';
import type { Database, DeliveriesTable, DeliveryAttemptsTable, FanoutsTable, NotificationsTable, RecipientsTable } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

/** What routing needs of a recipient: which channels it has an address on. */
export type RecipientAddresses = Pick<
  RecipientsTable,
  | 'id'
  | 'email'
  | 'phone'
  | 'locale'
  | 'timezone'
  | 'webhook_url'
  | 'webhook_disabled_at'
  | 'pushover_user_key'
  | 'slack_webhook_url'
  | 'discord_webhook_url'
  | 'kakao_phone'
  | 'address_disabled'
>;

/**
 * CLAIMABLE as an SQL list (`'pending', 'failed', …`), for `status IN (${CLAIMABLE_SQL})`: the
 * predicate of the partial index deliveries_due (migration 0007; test/store/claimable.test.ts
 * checks they agree). Written into the statement as literals, not bound, so the planner can prove
 * the index applies.
 */
export const CLAIMABLE_SQL = CLAIMABLE.map((s) => `'${s}'`).join(', ');

/** The columns findRecipients reads, in SQL. */
export const RECIPIENT_ADDRESS_COLUMNS =
  'id, email, phone, locale, timezone, webhook_url, webhook_disabled_at, pushover_user_key, slack_webhook_url, discord_webhook_url, kakao_phone, address_disabled';

/**
 * The columns and joins of a claimed delivery (ClaimedDelivery), the same in both dialects: the
 * claim statement names the claimed deliveries `d`.
 */
export const CLAIMED_JOB_COLUMNS = `d.id, d.workspace_id, d.notification_id, d.recipient_id, d.channel, d.device_id, d.attempts, d.content, d.digest_id,
       n.kind, n.title, n.body, n.data, n.created_at AS notification_created_at, n.delivery_count, n.channel_options, n.fallback, n.routing,
       r.created_at AS recipient_exists, r.name, r.email, r.phone, r.locale, r.timezone, r.webhook_url, r.webhook_secret, r.webhook_disabled_at,
       r.pushover_user_key, r.pushover_device, r.slack_webhook_url, r.discord_webhook_url, r.kakao_phone, r.address_disabled,
       dv.platform AS device_platform, dv.token AS device_token, dv.app AS device_app, dv.disabled_at AS device_disabled_at`;
export const CLAIMED_JOB_JOINS = `JOIN notifications n ON n.id = d.notification_id
  LEFT JOIN recipients r ON r.workspace_id = d.workspace_id AND r.id = d.recipient_id
  LEFT JOIN devices dv ON dv.id = d.device_id`;

export interface AcceptItem {
  notification: NotificationsTable;
  deliveries: DeliveriesTable[];
  idempotency?: { key: string; requestHash: string; response: string; expiresAt: number };
  /** Dedupe keys this notification takes, one per recipient (dedupe_keys rows), held until expiresAt. */
  dedupe?: { key: string; recipients: string[]; expiresAt: number };
  /**
   * A topic send: its fan-out row, written with the notification, and its lease-queue row (kind
   * fanout, key the notification id, free and due at the notification's created_at).
   */
  fanout?: FanoutsTable;
}

/**
 * `ok`: the notification, its deliveries, its idempotency record and its dedupe keys are committed.
 * `idempotency_conflict`: another request committed the same idempotency key first (or it exists
 * unexpired); nothing of this item was written.
 * `dedupe_conflict`: another notification holds one of its dedupe keys (unexpired), or took it
 * first in the same batch; nothing of this item was written (the caller decides again).
 */
export type AcceptOutcome = 'ok' | 'idempotency_conflict' | 'dedupe_conflict';

/**
 * The keys a batch's items claim among themselves, before the store decides against what is
 * already stored: the first item with an idempotency key (per workspace), or with a dedupe key for a
 * recipient, wins it; a later item wanting one that is taken is refused ('idempotency_conflict' or
 * 'dedupe_conflict' in `outcomes`, 'ok' otherwise), and a refused item's dedupe keys are not taken.
 * `idempotency` and `dedupe` map each key taken ("workspace\0key", "workspace\0recipient\0key") to
 * the index of its item. Both adapters' acceptBatch start with this.
 */
export function claimBatchKeys(items: readonly AcceptItem[]): { outcomes: AcceptOutcome[]; idempotency: Map<string, number>; dedupe: Map<string, number> } {
  const idempotency = new Map<string, number>();
  const dedupe = new Map<string, number>();
  const outcomes = items.map((item, i): AcceptOutcome => {
    const ws = item.notification.workspace_id;
    if (item.idempotency) {
      const k = `${ws}\u0000${item.idempotency.key}`;
      if (idempotency.has(k)) return 'idempotency_conflict';
      idempotency.set(k, i);
    }
    if (!item.dedupe) return 'ok';
    const { key, recipients } = item.dedupe;
    const keys = recipients.map((r) => `${ws}\u0000${r}\u0000${key}`);
    if (keys.some((k) => dedupe.has(k))) return 'dedupe_conflict';
    for (const k of keys) dedupe.set(k, i);
    return 'ok';
  });
  return { outcomes, idempotency, dedupe };
}

/** A claimed delivery with what a channel needs, joined from its notification and recipient. */
export interface ClaimedDelivery {
  id: string;
  workspace_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
  device_id: string | null;
  /** The delivery's own rendering (JSON), when it has one. */
  content: string | null;
  /** The digest this delivery carries (its content is rendered from the digest's items when attempted). */
  digest_id: string | null;
  /** Attempts including the one this claim starts. */
  attempts: number;
  kind: string;
  title: string;
  body: string;
  data: string | null;
  notification_created_at: number;
  /** Deliveries of the notification (see SettleItem.deliveryCount). */
  delivery_count: number;
  channel_options: string | null;
  fallback: number;
  routing: string;
  /** Null when the recipient was deleted after the notification was accepted. */
  recipient_exists: number | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  locale: string | null;
  timezone: string | null;
  webhook_url: string | null;
  webhook_secret: string | null;
  webhook_disabled_at: number | null;
  pushover_user_key: string | null;
  pushover_device: string | null;
  slack_webhook_url: string | null;
  discord_webhook_url: string | null;
  kakao_phone: string | null;
  address_disabled: string | null;
  /** The device's columns, null when the delivery has no device or the device was deleted. */
  device_platform: string | null;
  device_token: string | null;
  device_app: string | null;
  device_disabled_at: number | null;
}

/** A lease_queue row claimed by StoreAdapter.claimLeases. */
export interface ClaimedLease {
  kind: string;
  key: string;
  payload: string | null;
  /** Claims including this one. */
  attempts: number;
  /** When this lease expires. */
  lease_until: number;
}

/** The outcome of one attempt, to be recorded by `settle`. */
export interface SettleItem {
  id: string;
  /** The lease owner that claimed it; the write is ignored if the lease has moved on. */
  owner: string;
  status: 'sent' | 'failed' | 'exhausted' | 'skipped';
  /** For `failed`: when the next attempt is due. */
  runAt?: number;
  reason?: string | null;
  errorClass?: string | null;
  error?: string | null;
  providerMessageId?: string | null;
  /**
   * The notification's delivery count, from the claimed row. When it is 1, the notification's
   * status follows from this outcome alone and is set without counting its deliveries.
   */
  deliveryCount?: number;
  /**
   * The attempt this outcome comes from (its workspace_id is the delivery's). A successful one
   * (attemptOnRow) whose outcome moves the delivery is recorded on the delivery row (the
   * success_* columns, in the same write as the move); every other attempt, and a success whose
   * outcome no longer applies, is appended to delivery_attempts. Either way the attempt_log view
   * presents it as the same attempt.
   */
  attempt: Omit<DeliveryAttemptsTable, 'id'>;
}

/**
 * Whether `it`'s attempt goes on the delivery row when its outcome moves the delivery: a success of
 * this delivery with no error fields (what the row can hold; the view presents error_class and
 * error as null). Both adapters' settle decide with this.
 */
export function attemptOnRow(it: SettleItem): boolean {
  const a = it.attempt;
  return a.outcome === 'success' && a.delivery_id === it.id && a.error_class == null && a.error == null;
}

export interface StoreAdapter {
  readonly dialect: Dialect;
  readonly db: Kysely<Database>;

  migrate(): Promise<void>;
  /** The newest applied migration's name, or undefined when none is. */
  appliedMigration(): Promise<string | undefined>;
  /** Resolves if the database answers; rejects within a few seconds otherwise (never hangs). */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Whether `err` (thrown by any method of this adapter or by `db`) means the database cannot be
   * reached or cannot serve right now (a connection refused, dropped or timed out; the server
   * shutting down or busy), as opposed to a fault of the request or a bug. Such an operation did
   * not happen, or it is unknown whether it did: callers answer 503 and retry later.
   */
  isUnavailable(err: unknown): boolean;

  /**
   * Runs `fn` in a transaction. On SQLite this also excludes the hot-path methods below, which
   * share the one connection: calling any of them (or `transaction` again) inside `fn` waits for
   * `fn` to finish, i.e. forever. Inside `fn` use only `trx`.
   */
  transaction<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T>;

  /** The addresses of a workspace's recipients among `ids` (hot path of every send). */
  findRecipients(workspaceId: string, ids: string[]): Promise<RecipientAddresses[]>;

  /**
   * Writes accepted notifications in one durable transaction (group commit). Returns one outcome
   * per item, in order. The promise resolves only after the commit is on stable storage.
   */
  acceptBatch(items: AcceptItem[]): Promise<AcceptOutcome[]>;

  /**
   * How the accept path batches acceptBatch calls (GroupCommitter's options). Where each call is its
   * own commit (PostgreSQL, SQLite without a writer thread): one call at a time, as large as the
   * commit's latency makes it. Where the store merges concurrent calls itself (the SQLite writer
   * thread): small batches handed over as soon as they fill, many at once, so the store starts on
   * the first requests of a burst while the event loop still parses the rest.
   */
  readonly acceptBatching: { maxBatch: number; maxInFlight: number };

  /**
   * Claims up to `limit` due deliveries of `channel` for `owner`, in run_at order: rows in
   * pending/failed/scheduled/throttled with run_at <= now, and rows in sending whose lease (run_at) has expired.
   * Each claimed row becomes `sending`, attempts + 1, lease_owner = owner, run_at = now + leaseMs.
   * One statement: two workers never claim the same row.
   */
  claim(channel: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedDelivery[]>;

  /**
   * Records attempt outcomes in one transaction: moves each delivery (only if it is still
   * `sending` under `owner`; of several items for one delivery only the first can), records its
   * attempt (on the delivery row for a success that moves it, see SettleItem.attempt; else a
   * delivery_attempts row), and refreshes the summarized status of the notifications touched.
   * Returns how many deliveries were moved.
   */
  settle(items: SettleItem[]): Promise<number>;

  /**
   * Gives back deliveries leased by `owners` (still `sending`): status pending (or failed if an
   * earlier attempt had failed), due now, the unfinished attempt not counted.
   */
  releaseLeases(owners: string[], now: number): Promise<number>;

  /** Distinct owners of current leases. */
  leaseOwners(): Promise<string[]>;

  /**
   * Inserts new deliveries (digest, topic fan-out, fallback) through the dialect's one delivery
   * write (store/delivery-write.ts), on `db`: the store's or a transaction's of this adapter.
   */
  insertDeliveries(db: Kysely<Database>, rows: readonly DeliveriesTable[]): Promise<void>;

  /**
   * The lease queue's claim (queue/lease-queue.ts has the contract): up to `limit` rows of `kind`
   * with due_at <= now (free and due, or leased with an expired lease), oldest due_at first, each
   * leased to `owner` until now + leaseMs (owner, due_at = the expiry, attempts + 1) and returned
   * in that order. One statement: two claimers never get the same row.
   */
  claimLeases(kind: string, owner: string, limit: number, now: number, leaseMs: number): Promise<ClaimedLease[]>;

  /**
   * Writes a consistent copy of the whole database to `path` while the store stays online
   * (SQLite's backup API). Undefined where the database has its own tooling (PostgreSQL: pg_dump).
   */
  backup?(path: string): Promise<void>;

  /** Recomputes notifications.status from their deliveries (after operator actions). */
  refreshNotificationStatus(notificationIds: string[]): Promise<void>;

  /**
   * Subscribes to wake-ups: `onWake(channel)` when any process commits deliveries of `channel`
   * that are due now. A hint only: wake-ups can be lost or spurious, so workers keep polling.
   * Resolves once subscribed; the returned function unsubscribes. Absent where a store has no
   * cross-process signal (SQLite: one process, woken in-process by the accept path).
   * PostgreSQL: a dedicated connection doing LISTEN herald_deliveries, reconnecting with backoff
   * if it drops.
   */
  listen?(onWake: (channel: string) => void): Promise<() => Promise<void>>;
}
