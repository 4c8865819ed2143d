// Delivery workers. Each channel has its own worker with its own concurrency, so a slow or failing
// channel never holds up another.
//
// A worker loops: claim up to (free slots) due deliveries of its channel, start an attempt for each,
// and when an attempt ends, free its slot and hand its outcome to the shared settler (group
// commit); the lease keeps the row ours until the outcome is recorded. Claims are batched: with
// attempts running, the worker waits until a quarter of its slots (at most 32) are free, because a
// claim costs about the same for one row as for dozens. Outcomes awaiting their commit are bounded
// by the concurrency, so a worker holds at most 2 x concurrency leases: what a crash can re-send. When a claim comes back short there is no more due work: it sleeps until the
// poll interval passes, a wake-up hint arrives (a commit made work for its channel), or a retry it
// scheduled itself falls due.
// Wake-ups are hints only; polling always runs, so work made by another process is found too.
//
// Stop: no new claims; in-flight attempts get `graceMs` to finish and are settled normally; any
// still running then are aborted and their leases released (the attempt is not counted).

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { DeliveryError, PermanentError, type Channel, type ChannelName, type DeliveryJob, type DeliveryResult } from '../channels/channel.ts';
import { buildJob, type JobDeps } from './job.ts';
import type { ProviderRegistry } from '../providers/service.ts';
import type { CircuitBreaker } from '../domain/circuit-breaker.ts';
import { decideRetry } from '../domain/retry.ts';
import { addressChannels } from '../domain/routing.ts';
import type { TokenBucket } from '../domain/token-bucket.ts';
import type { SecretBox } from '../auth/secret-box.ts';
import type { Metrics } from '../metrics.ts';
import type { ClaimedDelivery, SettleItem, StoreAdapter } from '../store/adapter.ts';
import { GroupCommitter } from './group-commit.ts';
import type { Events } from '../events/events.ts';
import { circuitEvent } from '../events/delivery-events.ts';

/** An attempt's outcome on its way to the store, with the claimed delivery it is about (for events). */
export interface Outcome {
  item: SettleItem;
  row: ClaimedDelivery;
}

/** This process's lease-owner id: host, pid and a random part (pids are reused). */
export function makeWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

const SETTLE_RETRY_MIN_MS = 250;
const SETTLE_RETRY_MAX_MS = 5_000;

/** Resolves after `ms`, or as soon as `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface WorkerOptions {
  store: StoreAdapter;
  channel: Channel;
  owner: string;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  retrySchedule: readonly number[];
  secrets: SecretBox;
  metrics: Metrics;
  log: Logger;
  settler: GroupCommitter<Outcome, void>;
  providers: ProviderRegistry;
  /** The vendor callback URL of a delivery, when HERALD_PUBLIC_URL is set. */
  callbackUrl: (channel: ChannelName, deliveryId: string) => string | undefined;
  /** The lane's circuit breaker (vendor channels); none for per-recipient endpoints. */
  breaker?: CircuitBreaker | undefined;
  /** The lane's throughput limit (attempts started per second), when configured. */
  throughput?: TokenBucket | undefined;
  /** Disables an address a channel reported gone for good (DeliveryError.addressGone). */
  onAddressGone: (delivery: ClaimedDelivery, err: DeliveryError) => Promise<void>;
  /**
   * Creates the delivery of the notification to the same recipient on `channel` (a channel's
   * PermanentError.fallback, when the send allowed it). Resolves true if it was created.
   */
  onFallback: (delivery: ClaimedDelivery, channel: ChannelName) => Promise<boolean>;
  /** Records a receipt to follow (DeliveryResult.receipt) before the delivery is settled as sent. */
  onReceipt: (delivery: ClaimedDelivery, receipt: NonNullable<DeliveryResult['receipt']>) => Promise<void>;
  /**
   * Called once an outcome of a routing "first" notification is recorded, so its chain moves on
   * (store/deliveries.ts advanceChain).
   */
  onChainStep: (delivery: ClaimedDelivery) => Promise<void>;
  /** Renders the digest a delivery carries (queue/job.ts JobDeps.digest). */
  renderDigest: JobDeps['digest'];
  /** Called when the breaker changes state (metrics). */
  onCircuit?: (channel: string, state: string) => void;
  /** Where circuit changes are announced (circuit.opened, circuit.closed). */
  events?: Events | undefined;
}

export class ChannelWorker {
  readonly #o: WorkerOptions;
  readonly #abort = new AbortController();
  #inFlight = 0;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #slotFreed: (() => void) | undefined;
  #idle: Promise<void> | undefined;
  #nextKnownDue = Infinity;
  readonly #running = new Set<Promise<void>>();

  constructor(opts: WorkerOptions) {
    this.#o = opts;
  }

  get channel(): string {
    return this.#o.channel.name;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** The lane's circuit state, when it has a breaker. */
  circuitState(): string | undefined {
    return this.#o.breaker?.state(Date.now());
  }

  /** A hint that due work may exist now. */
  wake(): void {
    this.#wakeUp?.();
  }

  async #run(): Promise<void> {
    const { store, channel, owner, leaseMs, log } = this.#o;
    let failures = 0;
    const { concurrency } = this.#o;
    const minBatch = Math.min(32, Math.max(1, Math.floor(concurrency / 4)));
    while (!this.#stopping) {
      const free = concurrency - this.#inFlight;
      const unsettled = this.#running.size - this.#inFlight;
      if (free <= 0 || (this.#inFlight > 0 && free < minBatch) || unsettled >= concurrency) {
        await new Promise<void>((r) => (this.#slotFreed = r));
        continue;
      }
      const claimedAt = Date.now();
      let want = free;
      const { breaker, throughput } = this.#o;
      if (breaker) {
        const before = breaker.state(claimedAt);
        want = breaker.admit(claimedAt, want);
        this.#circuitChanged(before, breaker.state(claimedAt));
        if (want === 0) {
          await this.#sleep(before === 'open' ? Math.max(1, Math.min(this.#o.pollMs * 10, breaker.openUntil - claimedAt)) : this.#o.pollMs);
          continue;
        }
      }
      if (throughput) {
        const taken = throughput.take(claimedAt, want);
        if (taken === 0) {
          if (breaker?.state(claimedAt) === 'half_open') breaker.cancelProbe();
          await this.#sleep(throughput.msUntilNext(claimedAt));
          continue;
        }
        want = taken;
      }
      let claimed: ClaimedDelivery[];
      try {
        claimed = await store.claim(channel.name, owner, want, claimedAt, leaseMs);
        failures = 0;
      } catch (err) {
        throughput?.giveBack(want);
        if (breaker?.state(claimedAt) === 'half_open') breaker.cancelProbe();
        failures++;
        const backoff = Math.min(this.#o.pollMs * 2 ** Math.min(failures, 6), 30_000);
        log.error({ err, channel: channel.name, backoff }, 'claim failed; backing off');
        await this.#sleep(backoff);
        continue;
      }
      throughput?.giveBack(want - claimed.length);
      if (claimed.length === 0 && breaker?.state(claimedAt) === 'half_open') breaker.cancelProbe();
      for (const row of claimed) {
        // The loop counts unsettled outcomes from #running, so it is woken only after removal.
        const p = this.#attempt(row, claimedAt + leaseMs).finally(() => {
          this.#running.delete(p);
          this.#freeSlot();
        });
        this.#running.add(p);
      }
      if (claimed.length < want) {
        const untilDue = this.#nextKnownDue - Date.now();
        this.#nextKnownDue = Infinity;
        await this.#sleep(Math.max(0, Math.min(this.#o.pollMs, untilDue)));
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    this.#idle = new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wakeUp = () => {
        this.#wakeUp = undefined;
        done();
      };
    });
    return this.#idle;
  }

  async #attempt(row: ClaimedDelivery, leaseUntil: number): Promise<void> {
    const { channel, metrics, owner } = this.#o;
    this.#inFlight++;
    const startedAt = Date.now();
    let item: SettleItem;
    const base = { id: row.id, owner, deliveryCount: row.delivery_count };
    const attemptBase = { delivery_id: row.id, workspace_id: row.workspace_id, attempt: row.attempts, started_at: startedAt };
    const skip = this.#skipReason(row);
    try {
      if (skip) {
        item = { ...base, status: 'skipped', reason: skip.reason, attempt: { ...attemptBase, duration_ms: 0, outcome: 'permanent', error_class: skip.reason, error: skip.message, http_status: null, smtp_reply: null, response: null } };
      } else {
        const result = await channel.deliver(await this.#job(row), this.#abort.signal);
        const duration = Date.now() - startedAt;
        this.#vendorAnswered(true);
        if (result.receipt) await this.#o.onReceipt(row, result.receipt);
        metrics.attemptDuration.observe({ channel: channel.name }, duration / 1000);
        metrics.deliveryOutcomes.inc({ channel: channel.name, outcome: 'success' });
        item = {
          ...base,
          status: 'sent',
          providerMessageId: result.providerMessageId ?? null,
          attempt: { ...attemptBase, duration_ms: duration, outcome: 'success', error_class: null, error: null, http_status: result.httpStatus ?? null, smtp_reply: result.smtpReply ?? null, response: result.response ?? null },
        };
      }
    } catch (err) {
      if (this.#abort.signal.aborted) {
        // Shut down mid-attempt: not settled; the lease is released in stop().
        this.#inFlight--;
        return;
      }
      item = this.#failure(row, err, startedAt);
      const fallback = err instanceof PermanentError ? err.fallback : undefined;
      if (fallback && row.fallback === 1 && item.status === 'exhausted') {
        const created = await this.#o.onFallback(row, fallback).catch((err2: unknown) => {
          this.#o.log.error({ err: err2, delivery: row.id, fallback }, 'could not create the fallback delivery');
          return false;
        });
        // The notification gained a delivery: its status must be counted, not inferred.
        if (created) item = { ...item, status: 'skipped', reason: `fallback:${fallback}`, deliveryCount: undefined };
      }
    }
    metrics.deliveriesFinished.inc({ channel: channel.name, status: item.status });
    this.#inFlight--;
    const outcome: Outcome = { item, row };
    const settled = this.#o.settler.submit(outcome);
    this.#freeSlot();
    const recorded = await this.#record(outcome, settled, leaseUntil);
    if (recorded && row.routing === 'first' && item.status !== 'failed') {
      await this.#o.onChainStep(row).catch((err: unknown) => this.#o.log.error({ err, delivery: row.id }, 'could not move the routing chain on'));
    }
  }

  /** Why a claimed delivery cannot be attempted at all, if it cannot. */
  #skipReason(row: ClaimedDelivery): { reason: string; message: string } | undefined {
    if (row.recipient_exists === null) return { reason: 'recipient_deleted', message: 'the recipient was deleted' };
    if (row.device_id !== null) {
      if (row.device_platform === null) return { reason: 'device_removed', message: 'the device was removed' };
      if (row.device_disabled_at !== null) return { reason: 'device_disabled', message: 'the device was disabled' };
      return undefined;
    }
    if (!addressChannels(row).has(row.channel)) return { reason: 'no_address', message: `the recipient has no usable ${row.channel} address` };
    return undefined;
  }

  /** Tells the breaker that the vendor answered (or failed to) and reports state changes. */
  #vendorAnswered(answered: boolean, retryable = false): void {
    const breaker = this.#o.breaker;
    if (!breaker) return;
    const now = Date.now();
    const before = breaker.state(now);
    if (retryable) breaker.failure(now);
    else if (answered) breaker.success();
    else if (before === 'half_open') breaker.cancelProbe();
    this.#circuitChanged(before, breaker.state(now));
  }

  #circuitChanged(before: string, after: string): void {
    if (before === after) return;
    this.#o.onCircuit?.(this.#o.channel.name, after);
    const event = circuitEvent(this.#o.channel.name, this.#o.owner, before, after, Date.now());
    if (event) this.#o.events?.emit([event]);
    const level = after === 'open' ? 'warn' : 'info';
    this.#o.log[level]({ channel: this.#o.channel.name, from: before, to: after }, `circuit ${after}`);
  }

  #freeSlot(): void {
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
  }

  /**
   * Waits until `item` (submitted as `submitted`) is recorded. While the store is unavailable the
   * write is retried with backoff, for as long as the delivery's lease lasts. An outcome that still
   * cannot be recorded then (or fails otherwise, or at shutdown abort) is given up and logged as
   * an error, never dropped silently: the delivery stays `sending` until its lease expires, then
   * it is claimed and attempted again (at-least-once: its webhook-id may reach the receiver twice).
   */
  async #record(outcome: Outcome, submitted: Promise<void>, leaseUntil: number): Promise<boolean> {
    const { item } = outcome;
    let pending = submitted;
    for (let failures = 1; ; failures++) {
      try {
        await pending;
        return true;
      } catch (err) {
        const delay = Math.min(SETTLE_RETRY_MIN_MS * 2 ** (failures - 1), SETTLE_RETRY_MAX_MS);
        if (!this.#o.store.isUnavailable(err) || this.#abort.signal.aborted || Date.now() + delay >= leaseUntil) {
          this.#o.log.error({ err, delivery: item.id, failures }, 'could not record delivery outcome; it will be attempted again when its lease expires');
          return false;
        }
        if (failures === 1) this.#o.log.warn({ err, delivery: item.id }, 'could not record delivery outcome yet; retrying while the lease lasts');
        await abortableDelay(delay, this.#abort.signal);
        pending = this.#o.settler.submit(outcome);
      }
    }
  }

  #failure(row: ClaimedDelivery, err: unknown, startedAt: number): SettleItem {
    const { channel, metrics, owner, retrySchedule } = this.#o;
    const duration = Date.now() - startedAt;
    const e = err instanceof DeliveryError ? err : undefined;
    const kind = e?.kind ?? 'retryable';
    const errorClass = e?.errorClass ?? 'internal';
    const message = (err as Error)?.message?.slice(0, 1000) ?? String(err);
    // Retryable failures count against the vendor's health; a permanent one with an HTTP status is
    // the vendor answering; one without (no credentials, bad address) says nothing about it.
    this.#vendorAnswered(kind === 'permanent' && e?.detail.httpStatus !== undefined, kind !== 'permanent');
    if (!e) this.#o.log.warn({ err, delivery: row.id, channel: channel.name }, 'channel threw an unclassified error; retrying');
    if (e?.addressGone) {
      this.#o.onAddressGone(row, e).catch((err2: unknown) => this.#o.log.error({ err: err2, delivery: row.id }, 'could not disable a gone address'));
    }
    metrics.attemptDuration.observe({ channel: channel.name }, duration / 1000);
    metrics.deliveryOutcomes.inc({ channel: channel.name, outcome: kind });
    const attempt = {
      delivery_id: row.id,
      workspace_id: row.workspace_id,
      attempt: row.attempts,
      started_at: startedAt,
      duration_ms: duration,
      outcome: kind,
      error_class: errorClass,
      error: message,
      http_status: e?.detail.httpStatus ?? null,
      smtp_reply: e?.detail.smtpReply ?? null,
      response: e?.detail.response ?? null,
    };
    if (errorClass === 'no_address') {
      return { id: row.id, owner, deliveryCount: row.delivery_count, status: 'skipped', reason: 'no_address', errorClass, error: message, attempt };
    }
    const decision = decideRetry({ attempts: row.attempts, schedule: retrySchedule, kind, retryAfterMs: e?.retryAfterMs });
    if (decision.outcome === 'exhausted') {
      return { id: row.id, owner, deliveryCount: row.delivery_count, status: 'exhausted', errorClass, error: message, attempt };
    }
    const runAt = Date.now() + decision.delayMs;
    this.#nextKnownDue = Math.min(this.#nextKnownDue, runAt);
    return { id: row.id, owner, deliveryCount: row.delivery_count, status: 'failed', runAt, errorClass, error: message, attempt };
  }

  async #job(row: ClaimedDelivery): Promise<DeliveryJob> {
    return buildJob(row, { open: (sealed) => this.#openSecret(sealed), providers: this.#o.providers, callbackUrl: this.#o.callbackUrl, digest: this.#o.renderDigest });
  }

  /** Decrypted secrets by sealed value: decrypting on every delivery costs more than the send. */
  readonly #secrets = new Map<string, string>();

  #openSecret(sealed: string): string {
    let plain = this.#secrets.get(sealed);
    if (plain === undefined) {
      if (this.#secrets.size >= 10_000) this.#secrets.clear();
      plain = this.#o.secrets.open(sealed);
      this.#secrets.set(sealed, plain);
    }
    return plain;
  }

  /** Stops claiming, lets in-flight attempts finish within `graceMs`, then aborts the rest. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#wakeUp?.();
    this.#slotFreed?.();
    await this.#loop;
    const all = Promise.allSettled([...this.#running]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.#abort.abort();
      await all;
    }
  }
}
