// Prometheus metrics. One registry per Herald instance (not prom-client's global one), so several
// instances in one process (tests) do not collide.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics(opts: { version: string; role: string; workerId: string }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'herald_' });
  const m = {
    registry,
    info: new Gauge({ name: 'herald_info', help: 'Herald build and node information', labelNames: ['version', 'role', 'worker_id'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'herald_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    notificationsAccepted: new Counter({ name: 'herald_notifications_accepted_total', help: 'Notifications accepted (202)', registers: [registry] }),
    deliveriesCreated: new Counter({ name: 'herald_deliveries_created_total', help: 'Deliveries created', labelNames: ['channel'], registers: [registry] }),
    deliveryOutcomes: new Counter({
      name: 'herald_delivery_attempts_total',
      help: 'Delivery attempts by channel and outcome (success, retryable, rate_limited, permanent)',
      labelNames: ['channel', 'outcome'],
      registers: [registry],
    }),
    deliveriesFinished: new Counter({
      name: 'herald_deliveries_finished_total',
      help: 'Deliveries reaching a terminal or retry status, by channel and status',
      labelNames: ['channel', 'status'],
      registers: [registry],
    }),
    attemptDuration: new Histogram({
      name: 'herald_delivery_attempt_duration_seconds',
      help: 'Latency of one delivery attempt',
      labelNames: ['channel'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    circuitState: new Gauge({
      name: 'herald_circuit_state',
      help: "A vendor channel's circuit on this node: 0 closed, 1 half-open, 2 open",
      labelNames: ['channel'],
      registers: [registry],
    }),
    callbacks: new Counter({
      name: 'herald_vendor_callbacks_total',
      help: 'Vendor callbacks received, by provider and result (applied, ignored, rejected)',
      labelNames: ['provider', 'result'],
      registers: [registry],
    }),
    pushoverAppLimit: new Gauge({ name: 'herald_pushover_app_limit', help: "Pushover app's monthly message limit (X-Limit-App-Limit)", labelNames: ['workspace'], registers: [registry] }),
    pushoverAppRemaining: new Gauge({ name: 'herald_pushover_app_remaining', help: 'Pushover messages left this month (X-Limit-App-Remaining)', labelNames: ['workspace'], registers: [registry] }),
    pushoverAppReset: new Gauge({ name: 'herald_pushover_app_reset_timestamp_seconds', help: 'When the Pushover quota resets, unix seconds (X-Limit-App-Reset)', labelNames: ['workspace'], registers: [registry] }),
    storeUp: new Gauge({ name: 'herald_store_up', help: 'Whether the database answered at the last scrape (1) or not (0)', registers: [registry] }),
    inboundReceived: new Counter({ name: 'herald_inbound_received_total', help: 'Webhooks received and stored, by source (replays of a stored delivery not counted)', labelNames: ['source'], registers: [registry] }),
    inboundRejected: new Counter({
      name: 'herald_inbound_rejected_total',
      help: 'Webhooks refused (nothing stored), by source and reason (missing, malformed, stale, mismatch, unsigned)',
      labelNames: ['source', 'reason'],
      registers: [registry],
    }),
    inboundStoredBytes: new Gauge({ name: 'herald_inbound_stored_bytes', help: 'Bytes of received webhook bodies stored, by organization (sampled at scrape)', labelNames: ['workspace'], registers: [registry] }),
    inboundStoredEvents: new Gauge({ name: 'herald_inbound_stored_events', help: 'Received webhook events stored, by organization (sampled at scrape)', labelNames: ['workspace'], registers: [registry] }),
    inboundPurged: new Counter({ name: 'herald_inbound_purged_total', help: 'Received webhook events purged by retention', registers: [registry] }),
    consumerLag: new Gauge({ name: 'herald_inbound_consumer_unacked', help: "Events a consumer has not acknowledged yet (sampled at scrape)", labelNames: ['workspace', 'consumer'], registers: [registry] }),
    consumerOldest: new Gauge({ name: 'herald_inbound_consumer_oldest_unacked_seconds', help: "Age of a consumer's oldest unacknowledged event (sampled at scrape)", labelNames: ['workspace', 'consumer'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'herald_queue_depth', help: 'Deliveries by channel and status (sampled at scrape)', labelNames: ['channel', 'status'], registers: [registry] }),
    realtimeConnections: new Gauge({ name: 'herald_realtime_connections', help: 'Open real-time connections on this node (authenticated or not)', registers: [registry] }),
    realtimeSubscriptions: new Gauge({ name: 'herald_realtime_subscriptions', help: 'Channel subscriptions of this node\'s connections', registers: [registry] }),
    realtimePublications: new Counter({ name: 'herald_realtime_publications_total', help: 'Publications delivered to subscribers on this node (one per publication and subscriber)', registers: [registry] }),
    realtimeRecoveries: new Counter({ name: 'herald_realtime_recoveries_total', help: 'Subscriptions with a `since` position, by outcome (recovered or not)', labelNames: ['outcome'], registers: [registry] }),
    realtimeSlowConsumers: new Counter({ name: 'herald_realtime_slow_consumers_total', help: 'Connections closed because their send buffer was full', registers: [registry] }),
    realtimePresenceOnline: new Gauge({ name: 'herald_realtime_presence_online', help: 'Recipients with at least one real-time session on this node', registers: [registry] }),
    realtimeDeadPeers: new Counter({ name: 'herald_realtime_dead_peers_total', help: 'Connections dropped because they did not answer the previous heartbeat ping', registers: [registry] }),
    realtimeRefused: new Counter({ name: 'herald_realtime_refused_total', help: 'Connections closed for their token, by close code', labelNames: ['code'], registers: [registry] }),
  };
  m.info.set({ version: opts.version, role: opts.role, worker_id: opts.workerId }, 1);
  return m;
}

/** Records a Pushover app's quota, as the Pushover channel reports it (X-Limit-App-*), per workspace. */
export function recordPushoverLimits(m: Metrics): (workspaceId: string, limits: { limit: number; remaining: number; resetAt: number }) => void {
  return (ws, l) => {
    m.pushoverAppLimit.set({ workspace: ws }, l.limit);
    m.pushoverAppRemaining.set({ workspace: ws }, l.remaining);
    m.pushoverAppReset.set({ workspace: ws }, l.resetAt);
  };
}
