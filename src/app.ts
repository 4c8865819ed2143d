// Assembles one Herald process from its configuration: store, channels, accept path, workers and
// the HTTP server, and owns their start-up and shutdown order.
//
// Start: open store -> migrate -> bootstrap (default workspace, HERALD_ADMIN_KEY) -> open the bus
//        (Redis connects in the background: a node starts and serves while Redis is down) ->
//        recover orphaned leases -> start workers and DLQ jobs -> listen -> ready.
// Stop:  refuse new requests (503 while closing) and finish in-flight ones -> drain the accept
//        group commit -> stop workers (grace period, then abort and release leases) -> close the
//        bus -> close store.

import { readFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { pino, type Logger } from 'pino';
import { releaseFreedMemory } from './memory.ts';
import { KeyResolver } from './auth/api-keys.ts';
import { InProcessBus, type Bus } from './bus/bus.ts';
import { Events } from './events/events.ts';
import { AlertsService } from './alerts/service.ts';
import { resolveSecretKey, SecretBox } from './auth/secret-box.ts';
import type { ChannelName } from './channels/channel.ts';
import { CallbackUrls } from './channels/callbacks.ts';
import { ProviderRegistry } from './providers/service.ts';
import { ProviderTester } from './providers/test-send.ts';
import { createChannels } from './channels/registry.ts';
import { createRateLimiter } from './ratelimit/index.ts';
import { addressChannels } from './domain/routing.ts';
import type { Config } from './config.ts';
import { buildServer, type Api, type RouteModule } from './http/server.ts';
import { healthModule } from './http/health.ts';
import { dashboardModule } from './http/dashboard.ts';
import { metricsModule } from './http/metrics.ts';
import { recipientsModule } from './recipients/routes.ts';
import { notificationsModule } from './notifications/routes.ts';
import { NotificationService } from './notifications/service.ts';
import { dlqModule } from './dlq/routes.ts';
import { statsModule } from './stats/routes.ts';
import { StatsService } from './stats/service.ts';
import { auditModule } from './audit/routes.ts';
import { keysModule } from './keys/routes.ts';
import { devicesModule } from './devices/routes.ts';
import { providersModule } from './providers/routes.ts';
import { kindsModule } from './kinds/routes.ts';
import { preferencesModule } from './preferences/routes.ts';
import { templatesModule } from './templates/routes.ts';
import { topicsModule } from './topics/routes.ts';
import { subscriptionsModule } from './subscriptions/routes.ts';
import { SubscriptionService } from './subscriptions/service.ts';
import { TopicService } from './topics/service.ts';
import { settingsModule } from './settings/routes.ts';
import { callbacksModule } from './deliveries/routes.ts';
import { DeliveryService } from './deliveries/service.ts';
import { receiptCheckers } from './deliveries/jobs.ts';
import { createMetrics, recordPushoverLimits } from './metrics.ts';
import { SafeHttp } from './net/safe-http.ts';
import { Accepter } from './queue/accept.ts';
import { DlqService } from './dlq/service.ts';
import { AuditService } from './audit/service.ts';
import { AuditRetention } from './audit/jobs.ts';
import { KeyService } from './keys/service.ts';
import { SettingsService } from './settings/service.ts';
import { KindService } from './kinds/service.ts';
import { TemplateService } from './templates/service.ts';
import { AccountService } from './auth/accounts.ts';
import { TokenService } from './auth/tokens.ts';
import { authPublicModule, authSessionModule } from './auth/routes.ts';
import { orgsModule } from './orgs/routes.ts';
import { githubLinkModule, oauthModule } from './auth/oauth/routes.ts';
import { OAuthService } from './auth/oauth/service.ts';
import { OrgService } from './orgs/service.ts';
import { InvitationService } from './orgs/invitations.ts';
import { invitationAcceptModule, invitationsModule } from './orgs/invitation-routes.ts';
import { AccountMailer } from './auth/mailer.ts';
import { TotpService } from './auth/totp.ts';
import { totpModule } from './auth/totp-routes.ts';
import { SelfService } from './auth/self-service.ts';
import { selfModule } from './auth/self-routes.ts';
import { EmailLinkService } from './auth/email-links.ts';
import { emailLinkModule, emailLinkPublicModule } from './auth/email-link-routes.ts';
import { DEFAULT_CONCURRENCY, WorkerPool } from './queue/pool.ts';
import { ReceiptTracker } from './queue/receipts.ts';
import { PolicyCache } from './queue/policy.ts';
import { RecipientCache } from './queue/recipient-cache.ts';
import { FanoutWorker } from './queue/fanout.ts';
import { makeWorkerId } from './queue/worker.ts';
import { ROLES, type Role, type Services } from './services.ts';
import { openStore } from './store/index.ts';
import { bootstrapOwner, bootstrapWorkspaces } from './workspaces/service.ts';
import { startKeyPurges } from './notifications/jobs.ts';
import { RecipientService } from './recipients/service.ts';
import { DeviceService } from './devices/service.ts';
import { PreferenceService } from './preferences/service.ts';
import { inboxModule, meModule, realtimeGatewayModule, realtimeModule } from './realtime/routes.ts';
import { clientScriptModule } from './http/client-script.ts';
import { RealtimeService } from './realtime/service.ts';
import { InboxService } from './realtime/inbox.ts';
import { RealtimeGateway } from './realtime/gateway.ts';
import { InProcessStreams, RedisStreams } from './realtime/streams.ts';
import { InProcessPresence, RedisPresence } from './realtime/presence.ts';
import { MessageService } from './realtime/messages.ts';
import { brokerModule, hooksModule } from './inbound/routes.ts';
import { InboundService } from './inbound/service.ts';
import { RetentionPurger } from './inbound/jobs.ts';


/** The HTTP API's route modules, mounted in this order. */
const ROUTES: readonly RouteModule[] = [
  dashboardModule,
  healthModule,
  metricsModule,
  authPublicModule,
  authSessionModule,
  oauthModule,
  orgsModule,
  githubLinkModule,
  invitationsModule,
  invitationAcceptModule,
  totpModule,
  selfModule,
  emailLinkPublicModule,
  emailLinkModule,
  recipientsModule,
  notificationsModule,
  dlqModule,
  statsModule,
  auditModule,
  keysModule,
  devicesModule,
  providersModule,
  kindsModule,
  preferencesModule,
  templatesModule,
  topicsModule,
  subscriptionsModule,
  settingsModule,
  callbacksModule,
  realtimeModule,
  realtimeGatewayModule,
  clientScriptModule,
  brokerModule,
  hooksModule,
  inboxModule,
  meModule,
];

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface Herald {
  readonly services: Services;
  readonly server: Api;
  /** Listens and starts workers. Resolves with the base URL once serving. */
  start(): Promise<string>;
  /** Graceful shutdown; safe to call more than once. */
  stop(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'herald' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.secret', '*.webhook_secret', '*.password', 'key'], censor: '[redacted]' },
  });
}

export async function createHerald(config: Config, opts: { roles?: readonly Role[]; log?: Logger } = {}): Promise<Herald> {
  const roles = opts.roles ?? ROLES;
  const log = opts.log ?? createLogger(config);
  const workerId = makeWorkerId();
  const secretKey = resolveSecretKey(config.secretKey, config.dataPath, (path) =>
    log.warn({ path }, 'HERALD_SECRET_KEY is not set: generated a new secret key; back it up with the database'),
  );
  const secrets = new SecretBox(secretKey);

  const store = await openStore(config);
  await store.migrate();
  await bootstrapWorkspaces(store.db, { adminKey: config.adminKey });

  let bus: Bus;
  if (config.redisUrl) {
    const { RedisBus } = await import('./bus/redis.ts');
    bus = new RedisBus(config.redisUrl.href, { log, prefix: config.redisPrefix });
  } else {
    bus = new InProcessBus({ log });
  }
  const keys = new KeyResolver(store.db, { bus });
  const events = new Events({ node: workerId, bus, log });

  const metrics = createMetrics({ version: VERSION, role: roles.join(','), workerId });
  const http = new SafeHttp({ allow: config.allowNetworks, timeoutMs: config.webhookTimeout, connections: config.concurrency.webhook ?? DEFAULT_CONCURRENCY.webhook });
  const channels = createChannels({
    http,
    allow: config.allowNetworks,
    timeoutMs: config.webhookTimeout,
    smtp: { url: config.smtpUrl, from: config.emailFrom, timeoutMs: config.smtpTimeout, maxConnections: config.concurrency.email ?? DEFAULT_CONCURRENCY.email },
    log,
    onPushoverLimits: recordPushoverLimits(metrics),
    inbox: (item) => inbox.deliver(item),
  });
  const rateLimiter = createRateLimiter(config, { log, metrics });
  const policy = new PolicyCache(store.db, { bus });
  const recipientCache = new RecipientCache(store, { bus });
  const recipients = new RecipientService(store, { cache: recipientCache, events });
  const devices = new DeviceService(store.db);
  const providers = new ProviderRegistry(store.db, secrets, { bus, globalChannels: config.smtpUrl ? ['email'] : [] });
  const callbacks = new CallbackUrls(secrets, config.publicUrl);

  let pool: WorkerPool | undefined;
  const wake = (c: Iterable<string>) => pool?.wake(c);
  const deliveries = new DeliveryService(store, { recipients, devices, configured: (ws) => providers.channels(ws), policy, events, wake, log });
  pool = roles.includes('worker')
    ? new WorkerPool({
        store,
        channels: [...channels.values()],
        owner: workerId,
        concurrency: config.concurrency,
        throughput: config.throughput,
        circuit: { threshold: config.circuitThreshold, cooldownMs: config.circuitCooldown },
        leaseMs: config.leaseTime,
        pollMs: config.pollInterval,
        retrySchedule: config.retrySchedule,
        secrets,
        metrics,
        log,
        providers,
        callbackUrl: (channel, id) => callbacks.url(channel, id),
        onCircuit: (channel, state) => metrics.circuitState.set({ channel }, state === 'open' ? 2 : state === 'half_open' ? 1 : 0),
        events,
        ...deliveries.afterSend(),
      })
    : undefined;
  const receipts = pool
    ? new ReceiptTracker({
        store,
        providers,
        intervalMs: config.receiptPollInterval,
        owner: workerId,
        log,
        wake,
        events,
        checkers: receiptCheckers(http),
      })
    : undefined;

  const accepter = new Accepter({
    store,
    reachable: (r) => addressChannels(r) as Set<ChannelName>,
    configured: (ws) => providers.channels(ws),
    metrics,
    idempotencyTtlMs: config.idempotencyTtl,
    onCommitted: wake,
    policy,
    recipients: recipientCache,
    rateLimiter,
    onFanout: () => fanout?.wake(),
    events,
  });
  const fanout = roles.includes('worker')
    ? new FanoutWorker({ store, accepter, owner: workerId, leaseMs: config.leaseTime, pollMs: config.pollInterval, log, wake })
    : undefined;
  const dlq = new DlqService({ store, log, onReplayed: wake, events, owner: workerId, leaseMs: config.leaseTime });
  const audit = new AuditService(store.db);
  const auditRetention = config.auditRetention === undefined ? undefined : new AuditRetention({ store, retentionMs: config.auditRetention, owner: workerId, log });
  const apiKeys = new KeyService(store.db, { resolver: keys, audit });
  const settings = new SettingsService(store.db, { policy, audit });
  const kinds = new KindService(store.db, { policy, audit });
  const templates = new TemplateService(store, { policy, audit });
  const preferences = new PreferenceService(store, { policy });
  const alerts = new AlertsService({ store, secrets, log, wake, channels: (ws) => providers.channels(ws) });
  const notifications = new NotificationService(store, { accepter, events });
  const orgs = new OrgService(store.db, { audit, keysChanged: () => keys.invalidate() });
  const mailer = new AccountMailer({ email: channels.get('email'), smtpConfigured: Boolean(config.smtpUrl), publicUrl: config.publicUrl });
  const invitations = new InvitationService(store.db, { audit, mailer, signup: config.signup });
  const totp = new TotpService(store.db, { secrets, audit });
  const self = new SelfService(store.db, { audit });
  const emailLinks = new EmailLinkService(store.db, { audit, mailer, limiter: rateLimiter, log });
  const accounts = new AccountService(store.db, { tokens: new TokenService(store.db, secrets, config.jwtKey), audit, limiter: rateLimiter, signup: config.signup, log, secondFactor: totp });
  const oauth = new OAuthService(store.db, { config, secrets, accounts, invitations, audit, limiter: rateLimiter, log });
  await bootstrapOwner(accounts, { email: config.adminEmail, password: config.adminPassword }, log).catch((err: unknown) => bus.close().then(() => Promise.reject(err as Error)));
  const providerTests = new ProviderTester({
    channels,
    registry: providers,
    recipients,
    devices,
    secrets,
    smtpConfigured: Boolean(config.smtpUrl),
    timeoutMs: Math.max(config.webhookTimeout, config.smtpTimeout) * 2,
  });
  const topics = new TopicService(store);
  const historyLimits = { size: config.realtimeHistorySize, ageMs: config.realtimeHistoryAge };
  const realtime = new RealtimeService({
    db: store.db,
    secrets,
    audit,
    http: new SafeHttp({ allow: config.allowNetworks, timeoutMs: 5_000, excerptBytes: 65_536 }),
    log,
    bus,
    users: accounts,
    streams: config.redisUrl ? new RedisStreams(config.redisUrl.href, { prefix: config.redisPrefix, limits: historyLimits, bus, log }) : new InProcessStreams(historyLimits),
  });
  const inbound = new InboundService({
    store, secrets, events, metrics, config, orgs, log, owner: workerId,
    github: { linkedOrg: (ws) => oauth.linkedGithubOrg(ws), canReadRepo: (user, owner, repo) => oauth.canReadGithubRepo(user, owner, repo) },
  });
  const retention = roles.includes('worker') ? new RetentionPurger({ store, inbound, owner: workerId, log }) : undefined;
  const subscriptions = new SubscriptionService({
    store,
    secrets,
    log,
    audit,
    send: (ws, req) => notifications.send(ws, req),
    wake,
    inbound,
    realtime: (ws, channel, data) => realtime.publish(ws, channel, data),
    owner: workerId,
    pollMs: config.pollInterval,
  });
  const inbox = new InboxService({ db: store.db, realtime, report: (id) => deliveries.report(id, 'read', {}, 'inbox_read'), log });
  const state = { started: false, stopping: false };
  const presence = config.redisUrl ? new RedisPresence(config.redisUrl.href, { prefix: config.redisPrefix, ttlMs: config.realtimePresenceTtl, log }) : new InProcessPresence(config.realtimePresenceTtl);
  const messages = new MessageService({
    db: store.db,
    log,
    // A direct message to a recipient with no live session: a push through the normal pipeline
    // (data key `sender`: FCM reserves `from`).
    push: (ws, m) => notifications.send(ws, { to: m.target_id, kind: 'message', title: m.sender_id, body: m.body, data: { message_id: m.id, sender: m.sender_id }, channels: ['fcm', 'apns', 'webpush'] }),
  });
  const gateway = new RealtimeGateway({ service: realtime, inbox, log, metrics, heartbeatMs: config.realtimeHeartbeat, sendBufferBytes: config.realtimeSendBuffer, frameRate: config.realtimeFrameRate, bus, presence, messages, state });
  const services: Services = { config, version: VERSION, roles, workerId, log, store, secrets, keys, bus, events, metrics, channels, providers, callbacks, pool, rateLimiter, policyCache: policy, recipientCache, accepter, dlq, audit, stats: new StatsService(store.db), apiKeys, settings, kinds, templates, recipients, devices, preferences, alerts, deliveries, notifications, accounts, oauth, orgs, invitations, totp, self, emailLinks, providerTests, topics, inbound, realtime, inbox, gateway, messages, subscriptions, state };
  // A server that cannot be built closes the bus it would have used, and fails the start.
  const server = await buildServer(services, ROUTES).catch((err: unknown) => bus.close().then(() => Promise.reject(err as Error)));

  let stopPurges: (() => void) | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let stopping: Promise<void> | undefined;

  return {
    services,
    server,
    async start() {
      alerts.listen(events);
      if (pool) {
        await pool.recoverOrphanedLeases();
        pool.start();
        receipts?.start();
        fanout?.start();
        // Other processes' commits wake this node's workers (PostgreSQL LISTEN/NOTIFY); a hint only.
        if (store.listen) {
          unlisten = await store.listen((channel) => pool.wake([channel])).catch((err: unknown) => {
            log.warn({ err }, 'wake-up subscription failed; workers rely on polling');
            return undefined;
          });
        }
      }
      // Any node resumes DLQ bulk jobs a crashed process left running (they are database work).
      await dlq.start();
      inbound.start();
      await retention?.start();
      if (pool) await subscriptions.start(events);
      stopPurges = startKeyPurges(store, log);
      await auditRetention?.start();
      if (roles.includes('api')) gateway.attach(server.server);
      const url = await server.listen({ host: config.host, port: config.port });
      state.started = true;
      // Everything start-up compiles is compiled now: write it to the compile cache (when the
      // launcher enabled one, bin/runtime.js) so that the next start finds it even if this process
      // never exits cleanly.
      flushCompileCache();
      releaseFreedMemory();
      log.info({ url, roles, workerId, store: store.dialect, bus: bus.kind, version: VERSION }, 'herald started');
      return url;
    },
    stop() {
      stopping ??= (async () => {
        state.stopping = true;
        stopPurges?.();
        await gateway.close();
        inbound.endLongPolls();
        await server.close();
        await rateLimiter.close();
        await accepter.drain();
        await inbound.stop();
        await retention?.stop();
        await dlq.stop();
        await auditRetention?.stop();
        await unlisten?.();
        await receipts?.stop();
        await fanout?.stop();
        await subscriptions.stop();
        if (pool) await pool.stop(config.shutdownGrace);
        await alerts.stop();
        await Promise.all([...channels.values()].map((c) => c.close()));
        await http.close();
        keys.close();
        providers.close();
        policy.close();
        recipientCache.close();
        events.close();
        realtime.close();
        await realtime.streams.close();
        await presence.close();
        await bus.close();
        await store.close();
        log.info('herald stopped');
      })();
      return stopping;
    },
  };
}
