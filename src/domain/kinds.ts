// Notification kinds: what a kind of notification means for delivery (its policy), and the kinds
// every workspace has. Pure data; the store keeps each workspace's kinds (kinds/store.ts).

export interface RateLimit {
  limit: number;
  per_ms: number;
}

export interface DigestPolicy {
  window_ms: number;
  key?: string;
}

/** A kind's policy as stored; the row's JSON parsed. */
export interface KindPolicy {
  mandatory: boolean;
  /** Channels in priority order; null: every channel the recipient has, in the default order. */
  channels: string[] | null;
  quiet_hours: 'defer' | 'drop' | 'ignore';
  routing: 'all' | 'first';
  /** Per channel, or "*" for each channel without its own entry. */
  rate_limits: Record<string, RateLimit> | null;
  throttle: 'defer' | 'drop';
  digest: DigestPolicy | null;
  blackout: 'defer' | 'fallback';
}

export interface Kind extends KindPolicy {
  workspace_id: string;
  kind: string;
  created_at: number;
  updated_at: number;
}

const DAY_MS = 86_400_000;

/**
 * The kinds every workspace starts with:
 *   security       mandatory (no opt-out), sent through quiet hours; in a channel blackout it falls
 *                  back to another channel rather than wait.
 *   transactional  the default kind of a send; may be opted out of; sent through quiet hours
 *                  (receipts, password resets are expected at once); blackout falls back.
 *   marketing      may be opted out of; deferred to the end of quiet hours; at most 3 per
 *                  recipient and channel per day, the excess dropped (not piled up for later).
 */
export const DEFAULT_KINDS: Readonly<Record<string, KindPolicy>> = {
  security: { mandatory: true, channels: null, quiet_hours: 'ignore', routing: 'all', rate_limits: null, throttle: 'defer', digest: null, blackout: 'fallback' },
  transactional: { mandatory: false, channels: null, quiet_hours: 'ignore', routing: 'all', rate_limits: null, throttle: 'defer', digest: null, blackout: 'fallback' },
  marketing: {
    mandatory: false,
    channels: null,
    quiet_hours: 'defer',
    routing: 'all',
    rate_limits: { '*': { limit: 3, per_ms: DAY_MS } },
    throttle: 'drop',
    digest: null,
    blackout: 'defer',
  },
};

export const DEFAULT_KIND_NAMES: readonly string[] = Object.keys(DEFAULT_KINDS);

/** Kinds whose `mandatory` can never be turned off. */
export const ALWAYS_MANDATORY: readonly string[] = ['security'];
