// What a notification does for one recipient at accept time, before rate limits. Pure.
//
// Decision order (docs/policy.md):
// 1. Channels (preferences.ts decideChannels, routing `all` here: "first" chains are built after):
//    the requested channels, else the kind's, else every configured one; the recipient's opt-out
//    and channel preference (not for a mandatory kind); configured; reachable. Skips are recorded
//    when the candidates were an explicit list (the request's channels or the kind's); from the
//    default candidates only opt-outs of channels the recipient could be reached on), sends expand
//    to one delivery per active device on device channels.
// 2. When: `send_at` (reason send_at) or now.
// 3. Quiet hours: unless the kind is mandatory or its policy is `ignore`, a send time inside the
//    recipient's quiet hours (their IANA zone, UTC without one) is moved to the window's end
//    (`defer`: status scheduled, reason quiet_hours) or dropped (`drop`: skipped, quiet_hours).
// 4. Channel blackout windows (workspace settings): a send time inside the channel's window waits
//    for its end (kind blackout `defer`: scheduled, reason blackout), or the channel is skipped
//    (`fallback`: skipped, reason blackout) when the recipient gets the notification on another
//    channel now; with no other channel it waits instead of being lost.
// The outcome per delivery: pending (due now), scheduled (due at runAt) or skipped (terminal).

import { blackoutEnd, inBlackout, type BlackoutWindow } from './blackout.ts';
import { decideChannels, type KindPreference } from './preferences.ts';
import { inWindow, windowEnd, type DailyWindow } from './quiet-hours.ts';

export interface KindRules {
  mandatory: boolean;
  channels: readonly string[] | null;
  quietHours: 'defer' | 'drop' | 'ignore';
  blackout: 'defer' | 'fallback';
}

export interface RecipientInput {
  id: string;
  reachable: ReadonlySet<string>;
  /** Active devices per device channel (an entry for every configured device channel). */
  devices?: ReadonlyMap<string, readonly string[]>;
  preference?: KindPreference | undefined;
  quietHours?: DailyWindow | null | undefined;
  timeZone?: string | null | undefined;
}

export interface DecidedDelivery {
  recipientId: string;
  channel: string;
  deviceId?: string;
  status: 'pending' | 'scheduled' | 'skipped';
  reason: string | null;
  runAt: number;
}

export interface DecideInput {
  kind: KindRules;
  requested?: readonly string[] | undefined;
  configured: readonly string[];
  now: number;
  /** Defaults to now; later means scheduled (send_at). */
  sendAt?: number | undefined;
  blackouts?: Readonly<Record<string, BlackoutWindow>> | null | undefined;
}

/**
 * The deliveries of one recipient. `reachable` is false when nothing can be sent to the recipient
 * for want of an address (not because of its own preferences): the API refuses such a send.
 */
export function decideRecipient(input: DecideInput, r: RecipientInput): { deliveries: DecidedDelivery[]; reachable: boolean } {
  const { kind, now } = input;
  const explicit = input.requested !== undefined || kind.channels !== null;
  // A device channel is reachable when the recipient has an active device on it.
  const reachable = new Set(r.reachable);
  for (const [channel, ids] of r.devices ?? []) if (ids.length > 0) reachable.add(channel);
  const { channels, optedOut } = decideChannels({
    kind: { mandatory: kind.mandatory, channels: kind.channels, routing: 'all' },
    requested: input.requested,
    configured: input.configured,
    reachable,
    preference: r.preference,
  });
  const sendAt = Math.max(now, input.sendAt ?? now);
  const out: DecidedDelivery[] = [];
  const skip = (channel: string, reason: string) => out.push({ recipientId: r.id, channel, status: 'skipped', reason, runAt: now });

  let at = sendAt;
  let timing: { status: 'pending' | 'scheduled'; reason: string | null } = sendAt > now ? { status: 'scheduled', reason: 'send_at' } : { status: 'pending', reason: null };
  let quietDrop = false;
  if (!kind.mandatory && kind.quietHours !== 'ignore' && r.quietHours && inWindow(at, r.quietHours, r.timeZone ?? 'UTC')) {
    if (kind.quietHours === 'drop') quietDrop = true;
    else {
      at = windowEnd(at, r.quietHours, r.timeZone ?? 'UTC');
      timing = { status: 'scheduled', reason: 'quiet_hours' };
    }
  }

  const sending = channels.filter((c) => c.decision === 'send').map((c) => c.channel);
  const blacked = new Set(sending.filter((c) => input.blackouts?.[c] && inBlackout(at, input.blackouts[c]!)));
  // `fallback` skips a blacked-out channel only when another one carries the notification.
  const fallbackSkips = kind.blackout === 'fallback' && sending.some((c) => !blacked.has(c));

  for (const c of channels) {
    if (c.decision === 'skip') {
      // Default candidates: an opt-out is shown only where it made a difference (reachable).
      const shown = explicit || (c.reason === 'opted_out' && reachable.has(c.channel) && input.configured.includes(c.channel));
      if (shown) skip(c.channel, c.reason!);
      continue;
    }
    if (quietDrop) {
      skip(c.channel, 'quiet_hours');
      continue;
    }
    let runAt = at;
    let { status, reason } = timing;
    if (blacked.has(c.channel)) {
      if (fallbackSkips) {
        skip(c.channel, 'blackout');
        continue;
      }
      runAt = blackoutEnd(at, input.blackouts![c.channel]!);
      status = 'scheduled';
      reason = 'blackout';
    }
    const devices = r.devices?.get(c.channel);
    if (devices) for (const deviceId of devices) out.push({ recipientId: r.id, channel: c.channel, deviceId, status, reason, runAt });
    else out.push({ recipientId: r.id, channel: c.channel, status, reason, runAt });
  }
  return { deliveries: out, reachable: sending.length > 0 || optedOut };
}
