// Table types for Kysely. Times are integer milliseconds since the epoch in both dialects
// (BIGINT on PostgreSQL, parsed to number by the adapter). JSON is stored as text.

import type { Generated } from 'kysely';
import type { DeliveryStatus, NotificationStatus } from '../domain/delivery-status.ts';

export interface WorkspacesTable {
  id: string;
  name: string;
  created_at: number;
  /** 1: members must have TOTP enabled to act in it (migration 0017). */
  require_totp: Generated<number>;
}

export interface ApiKeysTable {
  id: string;
  workspace_id: string;
  name: string;
  /** Space-separated scopes. */
  scopes: string;
  /** The first characters of the key, for recognising it in listings. */
  prefix: string;
  /** sha256 of the full key, hex. */
  hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  /** "user:<id>" or "key:<id>" that created it; null: configuration or the CLI (migration 0017). */
  created_by: string | null;
  /** After this the key is refused; null: never. */
  expires_at: number | null;
}

export interface RecipientsTable {
  workspace_id: string;
  id: string;
  name: string | null;
  email: string | null;
  phone: string | null;
  locale: string | null;
  timezone: string | null;
  webhook_url: string | null;
  /** Encrypted with the secret key (see auth/secret-box.ts). */
  webhook_secret: string | null;
  /** Set when the receiver answered 410 Gone; routing then treats the webhook as absent. */
  webhook_disabled_at: number | null;
  webhook_disabled_reason: string | null;
  pushover_user_key: string | null;
  pushover_device: string | null;
  /** Sealed (the URL is the credential). */
  slack_webhook_url: string | null;
  /** Sealed (the URL is the credential). */
  discord_webhook_url: string | null;
  kakao_phone: string | null;
  /** Space-separated channels whose address the vendor reported gone (slack, discord, pushover…). */
  address_disabled: string | null;
  metadata: string | null;
  created_at: number;
  updated_at: number;
}

export interface NotificationsTable {
  id: string;
  workspace_id: string;
  kind: string;
  title: string;
  body: string;
  data: string | null;
  metadata: string | null;
  status: NotificationStatus;
  idempotency_key: string | null;
  /** How many deliveries the notification has (set at accept; grows only by a fallback delivery). */
  delivery_count: number;
  /** JSON: per-channel options of the send ({pushover: {...}, apns: {...}}). */
  channel_options: string | null;
  /** 1 when a channel may hand the notification to its fallback channel (kakao -> sms). */
  fallback: number;
  /** 'all': every allowed channel at once; 'first': one channel at a time (deliveries.after_id). */
  routing: string;
  /** "key@version" when sent with a template. */
  template: string | null;
  created_at: number;
  /**
   * The one recipient of all its deliveries, when it was accepted with deliveries to exactly one
   * (set by the store when it writes them; migration 0013); null otherwise, and then its
   * recipients are rows of notification_recipients. See store/delivery-keys.ts.
   */
  recipient_id?: string | null;
}

/**
 * The recipients a notification has deliveries to, for notifications without a recipient_id
 * (migration 0013): written with the deliveries, never updated.
 */
export interface NotificationRecipientsTable {
  workspace_id: string;
  recipient_id: string;
  notification_id: string;
}

export interface DeliveriesTable {
  id: string;
  workspace_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
  /** The device a push delivery goes to (devices.id). */
  device_id: string | null;
  /** JSON: what the vendor reported after `sent` (acknowledged_by, error_code…); not set at accept. */
  status_detail?: string | null;
  /** Routing "first": this `standby` delivery goes only if the step of delivery after_id fails. */
  after_id: string | null;
  /** JSON {title, body, html?, subject?}: this delivery's rendering of a template; null: the notification's. */
  content: string | null;
  /** The digest (digests.id) this delivery carries, or that this notification joined (`digested`). */
  digest_id?: string | null;
  status: DeliveryStatus;
  /** Why a delivery is skipped or discarded. */
  reason: string | null;
  attempts: number;
  /** When the delivery is next due; while `sending`, when its lease expires. */
  run_at: number;
  lease_owner: string | null;
  error_class: string | null;
  last_error: string | null;
  provider_message_id: string | null;
  created_at: number;
  updated_at: number;
  /** When it reached a terminal status (sent, exhausted, discarded, skipped). */
  completed_at: number | null;
  /**
   * The delivery's successful attempt (migration 0012), written by settle instead of a
   * delivery_attempts row: its attempt id (null when the row holds none), number, start, duration
   * and the provider's answer. Read them through the attempt_log view.
   */
  success_attempt_id?: string | null;
  success_attempt?: number | null;
  success_started_at?: number | null;
  success_duration_ms?: number | null;
  success_http_status?: number | null;
  success_smtp_reply?: string | null;
  success_response?: string | null;
}

export interface DeliveryAttemptsTable {
  id: string;
  delivery_id: string;
  workspace_id: string;
  attempt: number;
  started_at: number;
  duration_ms: number;
  outcome: 'success' | 'retryable' | 'permanent' | 'rate_limited';
  error_class: string | null;
  error: string | null;
  http_status: number | null;
  smtp_reply: string | null;
  response: string | null;
}

export interface IdempotencyKeysTable {
  workspace_id: string;
  key: string;
  request_hash: string;
  notification_id: string;
  /** The original response body (JSON). */
  response: string;
  created_at: number;
  expires_at: number;
}

export interface AuditLogTable {
  id: string;
  workspace_id: string;
  /** Who: "key:<id>" or "system". */
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  details: string | null;
  created_at: number;
}

export interface DlqJobsTable {
  id: string;
  workspace_id: string;
  action: 'replay' | 'discard';
  filters: string;
  reason: string | null;
  status: 'running' | 'completed' | 'failed';
  total: number;
  processed: number;
  actor: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface DevicesTable {
  id: string;
  workspace_id: string;
  recipient_id: string;
  platform: 'fcm' | 'apns' | 'webpush';
  /** sha256 of the raw token (Web Push: of the endpoint), hex: unique per workspace and platform. */
  token_hash: string;
  /** Sealed: the raw token, or for Web Push the subscription JSON. */
  token: string;
  app: string | null;
  label: string | null;
  created_at: number;
  updated_at: number;
  disabled_at: number | null;
  disabled_reason: string | null;
}

export interface ProvidersTable {
  workspace_id: string;
  provider: string;
  /** Sealed JSON of the provider's config. */
  config: string;
  base_url: string | null;
  created_at: number;
  updated_at: number;
}

export interface ReceiptsTable {
  delivery_id: string;
  workspace_id: string;
  channel: string;
  receipt: string;
  expires_at: number;
  created_at: number;
}

export interface KindsTable {
  workspace_id: string;
  kind: string;
  /** 1: bypasses opt-out and quiet hours. */
  mandatory: number;
  /** JSON array of channels in priority order; null: every configured channel in default order. */
  channels: string | null;
  quiet_hours: 'defer' | 'drop' | 'ignore';
  routing: 'all' | 'first';
  /** JSON {<channel or "*">: {limit, per_ms}}. */
  rate_limits: string | null;
  /** What happens to deliveries beyond the rate limit. */
  throttle: 'defer' | 'drop';
  /** JSON {window_ms, key?}. */
  digest: string | null;
  /** During a channel blackout window: wait for its end, or fall back to another channel. */
  blackout: 'defer' | 'fallback';
  created_at: number;
  updated_at: number;
}

export interface PreferencesTable {
  workspace_id: string;
  recipient_id: string;
  /** JSON {<kind>: {allowed?, channels?}}. */
  kinds: string;
  /** JSON {start: "HH:MM", end: "HH:MM"}, in the recipient's time zone (UTC without one). */
  quiet_hours: string | null;
  updated_at: number;
}

export interface TemplatesTable {
  workspace_id: string;
  key: string;
  /** 1, 2, …; the latest is the highest. */
  version: number;
  /** JSON array of {locale, channel, title, body, html?, subject?}. */
  variants: string;
  created_at: number;
}

export interface TopicsTable {
  workspace_id: string;
  key: string;
  name: string | null;
  created_at: number;
  updated_at: number;
}

export interface TopicMembersTable {
  workspace_id: string;
  topic_key: string;
  recipient_id: string;
  added_at: number;
}

export interface WorkspaceSettingsTable {
  workspace_id: string;
  default_locale: string;
  /** JSON {<channel>: {start: "HH:MM", end: "HH:MM", timezone}}. */
  channel_blackouts: string | null;
  updated_at: number;
}

export interface DedupeKeysTable {
  workspace_id: string;
  recipient_id: string;
  key: string;
  notification_id: string;
  created_at: number;
  expires_at: number;
}

export interface FanoutsTable {
  notification_id: string;
  workspace_id: string;
  topic: string;
  request: string;
  template_version: number | null;
  /** The last member id expanded (members go in recipient id order). */
  after: string | null;
  state: 'pending' | 'done';
  /** Members expanded so far. */
  recipients: number;
  created_at: number;
  updated_at: number;
}

/** The lease queue (migration 0015, queue/lease-queue.ts). */
export interface LeaseQueueTable {
  kind: string;
  key: string;
  /** While free: when it is due. While leased: when the lease expires. Claimable once <= now either way. */
  due_at: number;
  /** The worker holding the lease; null while free. */
  owner: string | null;
  /** Claims so far. */
  attempts: number;
  payload: string | null;
  created_at: number;
  updated_at: number;
}

/** Keys that verify recipient connection tokens (migration 0019, src/realtime). */
export interface RealtimeKeysTable {
  kid: string;
  workspace_id: string;
  alg: 'HS256' | 'ES256' | 'RS256';
  /** HS256: the secret, sealed. */
  secret: string | null;
  /** ES256/RS256: SPKI PEM. */
  public_key: string | null;
  created_at: number;
  /** Null while current; a rotated secret verifies until then. */
  expires_at: number | null;
}

export interface RealtimeSettingsTable {
  workspace_id: string;
  jwks_url: string | null;
  /** 1: recipients may message each other. */
  direct_messages: number;
  updated_at: number;
}

export interface InboxItemsTable {
  id: string;
  workspace_id: string;
  recipient_id: string;
  notification_id: string | null;
  delivery_id: string | null;
  kind: string | null;
  title: string | null;
  body: string | null;
  /** JSON text. */
  data: string | null;
  action_url: string | null;
  created_at: number;
  seen_at: number | null;
  read_at: number | null;
  archived_at: number | null;
}

export interface RealtimeMessagesTable {
  id: string;
  workspace_id: string;
  sender_id: string;
  target_id: string;
  client_id: string;
  body: string;
  created_at: number;
}

export interface DigestsTable {
  id: string;
  workspace_id: string;
  recipient_id: string;
  channel: string;
  key: string;
  status: 'open' | 'closed';
  closes_at: number;
  delivery_id: string;
  count: number;
  template: string | null;
  created_at: number;
}

export interface DigestItemsTable {
  digest_id: string;
  notification_id: string;
  title: string;
  body: string;
  data: string | null;
  created_at: number;
}

/** Broker subscriptions (migration 0020, src/subscriptions). */
export interface SubscriptionsTable {
  workspace_id: string;
  id: string;
  path_pattern: string;
  /** JSON filter (domain/filter.ts), or null: every event on a matching path. */
  filter: string | null;
  /** JSON action without secrets: {forward: {url}} | {notify: {…}} | {realtime: {channel}}. */
  action: string;
  created_by: string;
  created_at: number;
}

/** What a subscription did with an event (migration 0020): one row per (event, subscription, run). */
export interface SubscriptionRunsTable {
  workspace_id: string;
  event_id: string;
  subscription_id: string;
  /** "event" for the run when the event arrived; the replay's id for a replay. */
  run: string;
  /** forwarded | notified | skipped | failed */
  outcome: string;
  /** A notification id, or why it was skipped or failed. */
  detail: string | null;
  created_at: number;
}

export interface Database {
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  recipients: RecipientsTable;
  notifications: NotificationsTable;
  deliveries: DeliveriesTable;
  delivery_attempts: DeliveryAttemptsTable;
  notification_recipients: NotificationRecipientsTable;
  /**
   * A view (migration 0012): every attempt, the rows of delivery_attempts plus each delivery's
   * successful attempt held on its row. Read the attempt log here, never in delivery_attempts.
   */
  attempt_log: DeliveryAttemptsTable;
  idempotency_keys: IdempotencyKeysTable;
  audit_log: AuditLogTable;
  dlq_jobs: DlqJobsTable;
  devices: DevicesTable;
  providers: ProvidersTable;
  receipts: ReceiptsTable;
  dedupe_keys: DedupeKeysTable;
  fanouts: FanoutsTable;
  lease_queue: LeaseQueueTable;
  realtime_keys: RealtimeKeysTable;
  realtime_settings: RealtimeSettingsTable;
  inbox_items: InboxItemsTable;
  realtime_messages: RealtimeMessagesTable;
  subscriptions: SubscriptionsTable;
  subscription_runs: SubscriptionRunsTable;
  digests: DigestsTable;
  digest_items: DigestItemsTable;
  kinds: KindsTable;
  preferences: PreferencesTable;
  templates: TemplatesTable;
  topics: TopicsTable;
  topic_members: TopicMembersTable;
  workspace_settings: WorkspaceSettingsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  session_rotated_tokens: SessionRotatedTokensTable;
  signing_keys: SigningKeysTable;
  invitations: InvitationsTable;
  user_tokens: UserTokensTable;
  recovery_codes: RecoveryCodesTable;
  oauth_states: OauthStatesTable;
  identities: IdentitiesTable;
  github_org_links: GithubOrgLinksTable;
  inbound_sources: InboundSourcesTable;
  inbound_events: InboundEventsTable;
  inbound_consumers: InboundConsumersTable;
  inbound_consumer_events: InboundConsumerEventsTable;
}

/** An invitation to an organization (migration 0017); the token only as its sha256. */
export interface InvitationsTable {
  id: string;
  workspace_id: string;
  email: string;
  email_key: string;
  role: string;
  hash: string;
  invited_by: string;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: string | null;
  revoked_at: number | null;
}

/** A single-use emailed link of a user (verify_email | reset_password), as sha256 (migration 0017). */
export interface UserTokensTable {
  hash: string;
  user_id: string;
  kind: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A single-use TOTP recovery code, as sha256 (migration 0017). */
export interface RecoveryCodesTable {
  user_id: string;
  hash: string;
  created_at: number;
  used_at: number | null;
}

/** A person who signs in (migration 0014). */
export interface UsersTable {
  id: string;
  email: string;
  /** email lowercased: unique. */
  email_key: string;
  name: string;
  /** scrypt$N$r$p$salt$hash (auth/passwords.ts); null: no password sign-in. */
  password_hash: string | null;
  created_at: number;
  updated_at: number;
  /** Migration 0017: when a verification link proved the address. */
  email_verified_at: number | null;
  /** The TOTP secret sealed with the secret key; null: never enrolled. */
  totp_secret: string | null;
  /** When a code confirmed the enrolment; null: TOTP not enabled. */
  totp_enabled_at: number | null;
  /** The time step of the last accepted code (each code is accepted once). */
  totp_last_step: number | null;
}

/** A user's role in an organization (a `workspaces` row). */
export interface MembershipsTable {
  user_id: string;
  workspace_id: string;
  role: string;
  created_at: number;
  updated_at: number;
}

/** A refresh-token family acting in one organization. */
export interface SessionsTable {
  id: string;
  user_id: string;
  workspace_id: string;
  /** sha256 (hex) of the current refresh token. */
  refresh_hash: string;
  created_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

/** Refresh tokens a session has rotated away from: presenting one again revokes the session. */
export interface SessionRotatedTokensTable {
  hash: string;
  session_id: string;
  rotated_at: number;
}

/** JWT signing keys, shared by every node: the private JWK sealed with the secret key. */
export interface SigningKeysTable {
  kid: string;
  alg: string;
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
}

/** A sign-in with an external provider in progress (migration 0016); single use. */
export interface OauthStatesTable {
  /** sha256 (hex) of the `state` sent to the provider. */
  state_hash: string;
  provider: string;
  /** sha256 (hex) of the browser's herald_oauth cookie. */
  binding_hash: string;
  /** PKCE code verifier, sealed with the secret key. */
  code_verifier: string;
  /** OpenID Connect nonce; null for GitHub. */
  nonce: string | null;
  created_at: number;
  expires_at: number;
}

/** An external account linked to a user. */
export interface IdentitiesTable {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  /** The provider's user name (GitHub login). */
  login: string | null;
  /** The provider's access token sealed with the secret key (GitHub), else null. */
  token: string | null;
  created_at: number;
  updated_at: number;
}

/** An organization linked to a GitHub organization (its login, lowercased). */
export interface GithubOrgLinksTable {
  workspace_id: string;
  github_org: string;
  default_role: string;
  created_at: number;
  updated_at: number;
}

/** A webhook source (migration 0018): where a provider's webhooks are received. */
export interface InboundSourcesTable {
  workspace_id: string;
  id: string;
  path: string;
  provider: string;
  /** Sealed JSON list of secrets (auth/secret-box.ts); null for provider none. */
  secrets: string | null;
  /** The provider's options as JSON (generic hmac: header, algorithm, encoding, prefix). */
  options: string | null;
  visibility: string;
  owner_id: string | null;
  /** Null: HERALD_EVENT_RETENTION. */
  retention_ms: number | null;
  event_type_path: string | null;
  /** "owner/repo" whose GitHub readers read the source's events (migration 0025); null: no grant. */
  github_repo: string | null;
  created_at: number;
  updated_at: number;
}

/** A received webhook delivery (migration 0018). */
export interface InboundEventsTable {
  id: string;
  workspace_id: string;
  source_id: string;
  path: string;
  provider: string;
  event_type: string | null;
  delivery_id: string | null;
  owner_id: string | null;
  visibility: string;
  content_type: string | null;
  /** JSON object of the headers, credentials removed. */
  headers: string;
  body: string;
  body_encoding: 'utf8' | 'base64';
  /** JSON of the parsed body (JSON or form), else null. */
  payload: string | null;
  size: number;
  received_at: number;
}

/** A named pull consumer (migration 0018). */
export interface InboundConsumersTable {
  workspace_id: string;
  name: string;
  filter: string;
  ack_timeout_ms: number;
  max_deliveries: number;
  owner_id: string | null;
  scanned_to: string;
  created_at: number;
  updated_at: number;
}

/** A consumer's state for one event (migration 0018). */
export interface InboundConsumerEventsTable {
  workspace_id: string;
  consumer: string;
  event_id: string;
  state: 'pending' | 'leased' | 'acked' | 'dead' | 'skipped';
  due_at: number;
  deliveries: number;
  owner: string | null;
  updated_at: number;
}
