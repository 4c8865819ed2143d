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
import { pino, type Logger } from 'pino';
import { ensureAdminKey, KeyResolver } from './auth/api-keys.ts';
import { InProcessBus, type Bus } from './bus/bus.ts';
import { resolveSecretKey, SecretBox } from './auth/secret-box.ts';
import type { Channel, ChannelName } from './channels/channel.ts';
import { EmailChannel } from './channels/email.ts';
import { WebhookChannel } from './channels/webhook.ts';
import type { Config } from './config.ts';
import { buildServer, type Api } from './http/server.ts';
import { createMetrics } from './metrics.ts';
import { SafeHttp } from './net/safe-http.ts';
import { Accepter } from './queue/accept.ts';
import { DlqService } from './queue/dlq.ts';
import { WorkerPool } from './queue/pool.ts';
import { makeWorkerId } from './queue/worker.ts';
import { ROLES, type Role, type Services } from './services.ts';
import { purgeExpiredIdempotency } from './store/idempotency.ts';
import { openStore } from './store/index.ts';
import type { RecipientAddresses } from './store/adapter.ts';
import { ensureDefaultWorkspace } from './store/workspaces.ts';
import { disableRecipientWebhook } from './store/recipients.ts';

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
  await ensureDefaultWorkspace(store.db);
  if (config.adminKey) await ensureAdminKey(store.db, config.adminKey);

  let bus: Bus;
  if (config.redisUrl) {
    const { RedisBus } = await import('./bus/redis.ts');
    bus = new RedisBus(config.redisUrl.href, { log });
  } else {
    bus = new InProcessBus({ log });
  }
  const keys = new KeyResolver(store.db, { bus });

  const metrics = createMetrics({ version: VERSION, role: roles.join(','), workerId });
  const http = new SafeHttp({ allow: config.allowNetworks, timeoutMs: config.webhookTimeout, connections: config.concurrency.webhook ?? 128 });
  const channels = new Map<ChannelName, Channel>();
  channels.set('webhook', new WebhookChannel(http));
  if (config.smtpUrl) {
    channels.set('email', new EmailChannel({ smtpUrl: config.smtpUrl, from: config.emailFrom, timeoutMs: config.smtpTimeout, maxConnections: config.concurrency.email ?? 8 }));
  }

  const pool = roles.includes('worker')
    ? new WorkerPool({
        store,
        channels: [...channels.values()],
        owner: workerId,
        concurrency: config.concurrency,
        leaseMs: config.leaseTime,
        pollMs: config.pollInterval,
        retrySchedule: config.retrySchedule,
        secrets,
        metrics,
        log,
        onAddressGone: async (delivery, err) => {
          if (delivery.channel !== 'webhook') return;
          await disableRecipientWebhook(store.db, delivery.workspace_id, delivery.recipient_id, err.message, Date.now());
          log.warn({ recipient: delivery.recipient_id, delivery: delivery.id }, 'webhook disabled: the receiver answered 410 Gone');
        },
      })
    : undefined;
  const wake = (c: Set<string>) => pool?.wake(c);

  const reachable = (r: RecipientAddresses) => {
    const out = new Set<ChannelName>();
    const addresses = { email: r.email, webhookUrl: r.webhook_disabled_at === null ? r.webhook_url : null };
    for (const [name, ch] of channels) if (ch.canReach(addresses)) out.add(name);
    return out;
  };
  const accepter = new Accepter({
    store,
    reachable,
    configured: () => [...channels.keys()],
    metrics,
    idempotencyTtlMs: config.idempotencyTtl,
    onCommitted: wake,
  });
  const dlq = new DlqService({ store, log, onReplayed: wake });
  const state = { started: false, stopping: false };
  const services: Services = { config, version: VERSION, roles, workerId, log, store, secrets, keys, bus, metrics, channels, accepter, dlq, state };
  const server = await buildServer(services).catch(async (err: unknown) => {
    await bus.close();
    throw err;
  });

  let purgeTimer: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let stopping: Promise<void> | undefined;

  return {
    services,
    server,
    async start() {
      if (pool) {
        await pool.recoverOrphanedLeases();
        pool.start();
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
      purgeTimer = setInterval(() => void purgeExpiredIdempotency(store.db, Date.now()).catch((err) => log.warn({ err }, 'idempotency purge failed')), 3_600_000);
      purgeTimer.unref();
      const url = await server.listen({ host: config.host, port: config.port });
      state.started = true;
      log.info({ url, roles, workerId, store: store.dialect, bus: bus.kind, channels: [...channels.keys()], version: VERSION }, 'herald started');
      return url;
    },
    stop() {
      stopping ??= (async () => {
        state.stopping = true;
        clearInterval(purgeTimer);
        await server.close();
        await accepter.drain();
        await dlq.stop();
        await unlisten?.();
        if (pool) await pool.stop(config.shutdownGrace);
        await Promise.all([...channels.values()].map((c) => c.close()));
        await http.close();
        keys.close();
        await bus.close();
        await store.close();
        log.info('herald stopped');
      })();
      return stopping;
    },
  };
}
