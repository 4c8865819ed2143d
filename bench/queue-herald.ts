// Queue alone, Herald: the PostgreSQL adapter's hot path, called directly (no HTTP, no worker
// loop, no channel). Enqueue = PostgresAdapter.acceptBatch (one notification + one pending webhook
// delivery per job, as the accept path writes them); drain = `consumers` loops, each
// claim(limit = drainBatch) -> no-op -> settle(status 'sent', with its attempt row), exactly the
// statements a worker runs. See bench/queue-lib.ts for the workload and the protocol.

import pg from 'pg';
import { deliveryId, newId } from '../src/domain/ids.ts';
import type { AcceptItem, SettleItem } from '../src/store/adapter.ts';
import { PostgresAdapter } from '../src/store/postgres.ts';
import { analyzeSchema, drainStart, emit, enqueueAll, PAYLOAD, readParams, run, timing, walBytes, type QueueResult } from './queue-lib.ts';

const p = readParams();
const WORKSPACE = 'ws_default';
const CHANNEL = 'webhook';
const OWNER = `bench:${process.pid}:queue`;
const LEASE_MS = 60_000;

let store: PostgresAdapter | undefined;

function item(now: number): AcceptItem {
  const id = newId('ntf');
  return {
    notification: {
      id,
      workspace_id: WORKSPACE,
      kind: 'transactional',
      title: PAYLOAD.title,
      body: PAYLOAD.body,
      data: JSON.stringify(PAYLOAD.data),
      metadata: null,
      status: 'accepted',
      idempotency_key: null,
      delivery_count: 1,
      channel_options: null,
      fallback: 0,
      routing: 'all',
      template: null,
      created_at: now,
    },
    deliveries: [
      {
        id: deliveryId(id, 0),
        workspace_id: WORKSPACE,
        notification_id: id,
        recipient_id: PAYLOAD.to,
        channel: CHANNEL,
        device_id: null,
        after_id: null,
        content: null,
        status: 'pending',
        reason: null,
        attempts: 0,
        run_at: now,
        lease_owner: null,
        error_class: null,
        last_error: null,
        provider_message_id: null,
        created_at: now,
        updated_at: now,
        completed_at: null,
      },
    ],
  };
}

async function main(): Promise<QueueResult> {
  store = new PostgresAdapter(p.databaseUrl, { schema: p.schema, poolSize: p.poolSize });
  await store.migrate();
  const now0 = Date.now();
  await store.db.insertInto('workspaces').values({ id: WORKSPACE, name: 'Default', created_at: now0 }).onConflict((oc) => oc.doNothing()).execute();
  // The recipient the claim joins (a webhook recipient, as in the end-to-end benchmark).
  await store.db
    .insertInto('recipients')
    .values({ workspace_id: WORKSPACE, id: PAYLOAD.to, name: 'Benchmark', email: null, phone: null, locale: null, timezone: null, webhook_url: 'http://127.0.0.1:9/hook', webhook_secret: null, webhook_disabled_at: null, webhook_disabled_reason: null, metadata: null, created_at: now0, updated_at: now0 })
    .execute();
  const s = store;
  emit('ready');

  const wal0 = await walBytes(p);
  const enqueueMs = await enqueueAll(p, async (from, to) => {
    const now = Date.now();
    const items: AcceptItem[] = [];
    for (let i = from; i < to; i++) items.push(item(now));
    const outcomes = await s.acceptBatch(items);
    if (outcomes.some((o) => o !== 'ok')) throw new Error('acceptBatch refused an item');
  });

  const wal1 = await walBytes(p);
  if (p.analyze) await analyzeSchema(p);
  const wal2 = await walBytes(p);
  const t0 = await drainStart();
  let done = 0;
  let batches = 0;
  let empty = 0;
  const consumer = async () => {
    while (done < p.n) {
      const claimedAt = Date.now();
      const rows = await s.claim(CHANNEL, OWNER, p.drainBatch, claimedAt, LEASE_MS);
      if (rows.length === 0) {
        // Another consumer holds the last rows; they will be settled by it.
        empty++;
        if (done >= p.n) break;
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      batches++;
      const startedAt = Date.now();
      // The no-op handler.
      const items: SettleItem[] = rows.map((r) => ({
        id: r.id,
        owner: OWNER,
        status: 'sent',
        providerMessageId: null,
        deliveryCount: r.delivery_count,
        attempt: { delivery_id: r.id, workspace_id: r.workspace_id, attempt: r.attempts, started_at: startedAt, duration_ms: 0, outcome: 'success', error_class: null, error: null, http_status: 200, smtp_reply: null, response: null },
      }));
      const moved = await s.settle(items);
      if (moved !== items.length) throw new Error(`settle moved ${moved} of ${items.length}`);
      done += moved;
    }
  };
  await Promise.all(Array.from({ length: p.consumers }, consumer));
  const drainMs = performance.now() - t0;
  emit('drain-end');
  const wal3 = await walBytes(p);

  // Read back: every job sent once, every notification delivered.
  const counts = await s.db
    .selectFrom('deliveries')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  const notifications = await s.db.selectFrom('notifications').select(['status', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('status').execute();
  const attempts = await s.db.selectFrom('attempt_log').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const sent = Number(counts.find((c) => c.status === 'sent')?.n ?? 0);
  if (sent !== p.n || Number(attempts.n) !== p.n) throw new Error(`after the drain: deliveries ${JSON.stringify(counts)}, attempts ${attempts.n}, expected ${p.n} sent`);

  return {
    library: 'herald',
    version: 'PostgresAdapter (src/store/postgres.ts)',
    enqueue: { ...timing(p.n, enqueueMs), walBytesPerJob: Math.round((wal1 - wal0) / p.n) },
    drain: { ...timing(done, drainMs), batches, meanBatch: Math.round((done / batches) * 10) / 10, walBytesPerJob: Math.round((wal3 - wal2) / p.n) },
    settings: {
      enqueue: `acceptBatch(${p.enqueueBatch} items), ${p.enqueueInFlight} in flight; each item 1 notification + 1 delivery`,
      drain: `${p.consumers} consumers, each: claim('webhook', limit ${p.drainBatch}) -> no-op -> settle(sent + attempt row)`,
      poolSize: p.poolSize,
      analyzedBeforeDrain: p.analyze,
      emptyClaims: empty,
    },
    checks: {
      deliveries: Object.fromEntries(counts.map((c) => [c.status, Number(c.n)])),
      notifications: Object.fromEntries(notifications.map((c) => [c.status, Number(c.n)])),
      attempts: Number(attempts.n),
    },
  };
}

run(main, async () => {
  await store?.close().catch(() => undefined);
  store = undefined;
  const c = new pg.Client({ connectionString: p.databaseUrl });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${p.schema} CASCADE`);
  } finally {
    await c.end();
  }
});
