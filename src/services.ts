// What the HTTP layer, the CLI and the workers share in one Herald process.

import type { Logger } from 'pino';
import type { KeyResolver } from './auth/api-keys.ts';
import type { Bus } from './bus/bus.ts';
import type { Events } from './events/events.ts';
import type { AlertsService } from './alerts/service.ts';
import type { SecretBox } from './auth/secret-box.ts';
import type { CallbackUrls } from './channels/callbacks.ts';
import type { Channel, ChannelName } from './channels/channel.ts';
import type { ProviderRegistry } from './providers/service.ts';
import type { WorkerPool } from './queue/pool.ts';
import type { RateLimiter } from './ratelimit/limiter.ts';
import type { PolicyCache } from './queue/policy.ts';
import type { RecipientCache } from './queue/recipient-cache.ts';
import type { Config } from './config.ts';
import type { Metrics } from './metrics.ts';
import type { Accepter } from './queue/accept.ts';
import type { StoreAdapter } from './store/adapter.ts';
import type { DlqService } from './dlq/service.ts';
import type { AuditService } from './audit/service.ts';
import type { StatsService } from './stats/service.ts';
import type { KeyService } from './keys/service.ts';
import type { SettingsService } from './settings/service.ts';
import type { KindService } from './kinds/service.ts';
import type { TemplateService } from './templates/service.ts';
import type { RecipientService } from './recipients/service.ts';
import type { DeviceService } from './devices/service.ts';
import type { PreferenceService } from './preferences/service.ts';
import type { DeliveryService } from './deliveries/service.ts';
import type { NotificationService } from './notifications/service.ts';
import type { AccountService } from './auth/accounts.ts';
import type { OAuthService } from './auth/oauth/service.ts';
import type { ProviderTester } from './providers/test-send.ts';
import type { OrgService } from './orgs/service.ts';
import type { InvitationService } from './orgs/invitations.ts';
import type { TotpService } from './auth/totp.ts';
import type { SelfService } from './auth/self-service.ts';
import type { EmailLinkService } from './auth/email-links.ts';
import type { TopicService } from './topics/service.ts';
import type { RealtimeService } from './realtime/service.ts';
import type { InboundService } from './inbound/service.ts';
import type { SubscriptionService } from './subscriptions/service.ts';
import type { InboxService } from './realtime/inbox.ts';
import type { RealtimeGateway } from './realtime/gateway.ts';
import type { MessageService } from './realtime/messages.ts';

export const ROLES = ['api', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export interface Services {
  readonly config: Config;
  readonly version: string;
  readonly roles: readonly Role[];
  /** This process's lease-owner id. */
  readonly workerId: string;
  readonly log: Logger;
  readonly store: StoreAdapter;
  readonly secrets: SecretBox;
  readonly keys: KeyResolver;
  /** Messages between the processes of the deployment (Redis when REDIS_URL is set). */
  readonly bus: Bus;
  /** What happened, announced in-process and (with Redis) across nodes; best effort. */
  readonly events: Events;
  readonly metrics: Metrics;
  readonly channels: ReadonlyMap<ChannelName, Channel>;
  /** Workspace provider credentials. */
  readonly providers: ProviderRegistry;
  readonly callbacks: CallbackUrls;
  /** This node's workers (worker role only). */
  readonly pool: WorkerPool | undefined;
  /** Atomic counters: in Redis when REDIS_URL is set, else in-process. */
  readonly rateLimiter: RateLimiter;
  /** Cached kinds, settings and templates; `invalidate` after changing them. */
  readonly policyCache: PolicyCache;
  /** Cached recipient addresses of the accept path; `invalidate` after changing a recipient. */
  readonly recipientCache: RecipientCache;
  readonly accepter: Accepter;
  readonly dlq: DlqService;
  readonly audit: AuditService;
  /** Operational counts for the dashboard's overview (GET /v1/stats). */
  readonly stats: StatsService;
  /** API key management (resolving keys is `keys`). */
  readonly apiKeys: KeyService;
  readonly settings: SettingsService;
  readonly kinds: KindService;
  readonly templates: TemplateService;
  readonly recipients: RecipientService;
  readonly devices: DeviceService;
  readonly preferences: PreferenceService;
  /** Operator alerts: the operator_webhook setting, and alerts raised from this node's events. */
  readonly alerts: AlertsService;
  readonly deliveries: DeliveryService;
  readonly notifications: NotificationService;
  /** Users, sign-in and sessions; resolves access tokens. */
  readonly accounts: AccountService;
  /** Sign-in with GitHub, Google and OpenID Connect providers; GitHub organization links and checks. */
  readonly oauth: OAuthService;
  readonly providerTests: ProviderTester;
  /** Organizations and their members. */
  readonly orgs: OrgService;
  /** Invitations to organizations, emailed as single-use links. */
  readonly invitations: InvitationService;
  /** Users' TOTP second factor and recovery codes. */
  readonly totp: TotpService;
  /** A user's own account: password change, erasure. */
  readonly self: SelfService;
  /** Emailed single-use links: address verification, password reset. */
  readonly emailLinks: EmailLinkService;
  readonly topics: TopicService;
  /** Real-time keys, connection tokens and channel publishing. */
  readonly realtime: RealtimeService;
  /** The webhook broker: sources, ingest, events, consumers. */
  readonly inbound: InboundService;
  /** Broker subscriptions: actions on inbound events. */
  readonly subscriptions: SubscriptionService;
  /** In-app inbox items of recipients. */
  readonly inbox: InboxService;
  /** The real-time connections of this node (WebSocket and SSE). */
  readonly gateway: RealtimeGateway;
  /** Direct messages between recipients (their history). */
  readonly messages: MessageService;
  readonly state: { started: boolean; stopping: boolean };
}
