// The workers of one process: a ChannelWorker per configured channel, one settler shared by all
// (outcomes of every channel are recorded in common group commits), and lease recovery.

import type { Logger } from 'pino';
import { CHANNEL_PROVIDER, type Channel, type ChannelName } from '../channels/channel.ts';
import type { ProviderRegistry } from '../providers/service.ts';
import { CircuitBreaker } from '../domain/circuit-breaker.ts';
import { TokenBucket } from '../domain/token-bucket.ts';
import type { SecretBox } from '../auth/secret-box.ts';
import type { Metrics } from '../metrics.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import { GroupCommitter } from './group-commit.ts';
import type { Events } from '../events/events.ts';
import { settledEvents } from '../events/delivery-events.ts';
import { ChannelWorker, type Outcome, type WorkerOptions } from './worker.ts';
import { hostname } from 'node:os';

export interface PoolOptions {
  store: StoreAdapter;
  channels: Channel[];
  owner: string;
  concurrency: Readonly<Record<string, number>>;
  leaseMs: number;
  pollMs: number;
  retrySchedule: readonly number[];
  secrets: SecretBox;
  metrics: Metrics;
  log: Logger;
  providers: ProviderRegistry;
  callbackUrl: WorkerOptions['callbackUrl'];
  /** Attempts started per second, per channel (absent: unlimited). */
  throughput: Readonly<Record<string, number>>;
  circuit: { threshold: number; cooldownMs: number };
  onAddressGone: WorkerOptions['onAddressGone'];
  onFallback: WorkerOptions['onFallback'];
  onReceipt: WorkerOptions['onReceipt'];
  onChainStep: WorkerOptions['onChainStep'];
  renderDigest: WorkerOptions['renderDigest'];
  onCircuit?: WorkerOptions['onCircuit'];
  /** Where recorded outcomes and circuit changes are announced. */
  events?: Events | undefined;
}

/**
 * Concurrent attempts per channel unless HERALD_CONCURRENCY says otherwise. Pushover asks apps
 * for at most two concurrent connections; Discord webhooks allow about 5 requests per 2 s.
 */
export const DEFAULT_CONCURRENCY: Readonly<Record<ChannelName, number>> = {
  webhook: 128,
  email: 8,
  fcm: 64,
  apns: 64,
  webpush: 64,
  pushover: 2,
  sms: 16,
  kakao: 16,
  slack: 8,
  discord: 4,
  inbox: 32,
};

/**
 * Announces a committed settle group. When the store moved every delivery of the group (the rule)
 * all outcomes are announced as they are; when it moved fewer (a lease had expired and another
 * worker took the delivery over), the deliveries' current statuses are read and only the outcomes
 * the store shows are announced. Never throws: announcing is best effort.
 */
async function announceSettled(opts: PoolOptions, outcomes: readonly Outcome[], moved: number): Promise<void> {
  try {
    let shown = outcomes;
    if (moved < outcomes.length) {
      const rows = await opts.store.db.selectFrom('deliveries').select(['id', 'status', 'lease_owner']).where('id', 'in', outcomes.map((o) => o.item.id)).execute();
      const now = new Map(rows.map((r) => [r.id, r]));
      const seen = new Set<string>();
      shown = outcomes.filter((o) => {
        const r = now.get(o.item.id);
        const first = !seen.has(o.item.id);
        seen.add(o.item.id);
        return first && r !== undefined && r.status === o.item.status && r.lease_owner === null;
      });
    }
    opts.events!.emit(settledEvents(shown));
  } catch (err) {
    opts.log.warn({ err }, 'could not announce delivery outcomes');
  }
}

/** Lease owners of the pools running in this process. */
const LIVE_OWNERS = new Set<string>();

export class WorkerPool {
  readonly #o: PoolOptions;
  readonly #settler: GroupCommitter<Outcome, void>;
  readonly #workers = new Map<string, ChannelWorker>();

  constructor(opts: PoolOptions) {
    this.#o = opts;
    // One settle per group commit, and one announcement of its outcomes (events/delivery-events.ts).
    this.#settler = new GroupCommitter<Outcome, void>(async (outcomes) => {
      const moved = await opts.store.settle(outcomes.map((o) => o.item));
      const events = opts.events;
      if (events && (events.wants('delivery.status') || outcomes.some((o) => o.item.status === 'exhausted'))) void announceSettled(opts, outcomes, moved);
      return outcomes.map(() => undefined);
    });
    for (const channel of opts.channels) {
      const rate = opts.throughput[channel.name];
      const worker = new ChannelWorker({
        ...opts,
        channel,
        concurrency: opts.concurrency[channel.name] ?? DEFAULT_CONCURRENCY[channel.name],
        settler: this.#settler,
        // Lanes to one vendor share its health; a webhook, Slack or Discord URL is one recipient's.
        breaker: CHANNEL_PROVIDER[channel.name] ? new CircuitBreaker({ ...opts.circuit, maxCooldownMs: Math.max(opts.circuit.cooldownMs, 300_000) }) : undefined,
        throughput: rate ? new TokenBucket(rate, Math.max(1, Math.ceil(rate)), Date.now()) : undefined,
      });
      this.#workers.set(channel.name, worker);
    }
  }

  /**
   * Releases leases held by dead processes on this host (their pid no longer exists, or is ours), so a crashed
   * single-node deployment resumes at once instead of waiting for the leases to expire. Leases of
   * other hosts are left to expire: we cannot tell whether those processes are alive.
   */
  async recoverOrphanedLeases(): Promise<number> {
    const host = hostname();
    const dead = (await this.#o.store.leaseOwners()).filter((owner) => {
      const [h, pid] = owner.split(':');
      if (h !== host || owner === this.#o.owner) return false;
      // Our own pid: alive if another pool in this process holds it (several Heralds in one
      // process, as in tests), otherwise an earlier run of this process slot (a container
      // restarts as pid 1): dead.
      if (Number(pid) === process.pid) return !LIVE_OWNERS.has(owner);
      try {
        process.kill(Number(pid), 0);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
    });
    const released = await this.#o.store.releaseLeases(dead, Date.now());
    if (released > 0) this.#o.log.info({ released, owners: dead }, 'released leases of dead workers');
    return released;
  }

  start(): void {
    LIVE_OWNERS.add(this.#o.owner);
    for (const w of this.#workers.values()) w.start();
  }

  /** Circuit state per channel with a breaker. */
  circuits(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, w] of this.#workers) {
      const state = w.circuitState();
      if (state) out[name] = state;
    }
    return out;
  }

  /** A hint that these channels have new due work. */
  wake(channels: Iterable<string>): void {
    for (const c of channels) this.#workers.get(c)?.wake();
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all([...this.#workers.values()].map((w) => w.stop(graceMs)));
    await this.#settler.drain();
    const released = await this.#o.store.releaseLeases([this.#o.owner], Date.now());
    LIVE_OWNERS.delete(this.#o.owner);
    if (released > 0) this.#o.log.info({ released }, 'released leases of unfinished attempts');
  }
}
