// Which channels a notification of a kind uses for one recipient, given their preferences. Pure.
//
// decideChannels decides, in this order:
// 1. Candidates, in priority order: the requested channels when the sender named some (duplicates
//    collapsed; they override the kind's channels), else the kind's channels, else every configured
//    channel in configured order but the opt-in ones (OPT_IN_CHANNELS: the in-app inbox, which a
//    send reaches only when it or its kind names it). An empty `requested` list means no candidates.
// 2. Opt-out: a recipient with `allowed: false` for a non-mandatory kind gets every candidate
//    skipped as `opted_out`. A mandatory kind ignores the recipient's preference entirely.
// 3. Channel preference: with `channels` in the preference of a non-mandatory kind, candidates not
//    in that list are skipped as `opted_out`; the rest keep the candidates' order (the preference
//    restricts, it does not reorder). `channels: []` therefore opts out of every channel.
// 4. A remaining candidate Herald has not configured is skipped as `channel_not_configured`; one
//    the recipient has no address on as `no_address`; the others are sendable.
// 5. Routing `all` sends every sendable candidate. Routing `first` sends only the first sendable
//    one and returns the other sendable ones, in order, skipped as `not_first`: the integrator
//    creates the next when the one before ends undelivered or exhausted.
// Every candidate appears once in `channels`, in candidate order, with its decision. `optedOut` is
// true when the recipient's preferences (steps 2–3) skipped every candidate (and there was one):
// nothing is sent because of the recipient's choice, as opposed to unreachable.
//
// validatePreferences refuses what the API must answer 422 for: preferences for a kind the
// workspace does not have, opting out of a mandatory kind, and quiet hours that are not "HH:MM".
// A channel list on a mandatory kind is accepted and ignored (step 3).

import { windowErrors, type DailyWindow } from './quiet-hours.ts';

export type Routing = 'all' | 'first';
export type ChannelSkipReason = 'opted_out' | 'no_address' | 'channel_not_configured' | 'not_first';

export interface ChannelDecision {
  channel: string;
  decision: 'send' | 'skip';
  reason?: ChannelSkipReason;
}

export interface KindPreference {
  allowed?: boolean;
  channels?: string[];
}

/** A recipient's preferences as the API takes them. */
export interface Preferences {
  kinds?: Record<string, KindPreference>;
  quiet_hours?: DailyWindow | null;
}

export interface ChannelInput {
  kind: { mandatory: boolean; channels: readonly string[] | null; routing: Routing };
  requested?: readonly string[] | undefined;
  configured: readonly string[];
  reachable: ReadonlySet<string>;
  preference?: KindPreference | undefined;
}

/** The channels to send a notification on for one recipient (see the decision order above). */
/** Channels that are never default candidates (step 1). */
export const OPT_IN_CHANNELS: readonly string[] = ['inbox'];

export function decideChannels(input: ChannelInput): { channels: ChannelDecision[]; optedOut: boolean } {
  const { kind, preference } = input;
  const candidates = [...new Set(input.requested ?? kind.channels ?? input.configured.filter((c) => !OPT_IN_CHANNELS.includes(c)))];
  const honour = !kind.mandatory && preference !== undefined;
  const kindOff = honour && preference.allowed === false;
  const only = honour && preference.channels ? new Set(preference.channels) : undefined;
  let optedOutCount = 0;
  let sending = false;
  const channels = candidates.map((channel): ChannelDecision => {
    if (kindOff || (only && !only.has(channel))) {
      optedOutCount++;
      return { channel, decision: 'skip', reason: 'opted_out' };
    }
    if (!input.configured.includes(channel)) return { channel, decision: 'skip', reason: 'channel_not_configured' };
    if (!input.reachable.has(channel)) return { channel, decision: 'skip', reason: 'no_address' };
    if (kind.routing === 'first' && sending) return { channel, decision: 'skip', reason: 'not_first' };
    sending = true;
    return { channel, decision: 'send' };
  });
  return { channels, optedOut: candidates.length > 0 && optedOutCount === candidates.length };
}

/** Field errors (paths under `path`) for preferences the API must refuse; [] when acceptable. */
export function validatePreferences(
  kinds: Readonly<Record<string, { mandatory: boolean }>>,
  prefs: Preferences,
  path = 'body',
): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  for (const [name, pref] of Object.entries(prefs.kinds ?? {})) {
    const kind = Object.hasOwn(kinds, name) ? kinds[name] : undefined;
    if (!kind) errors.push({ path: `${path}.kinds.${name}`, message: `"${name}" is not a kind of this workspace` });
    else if (kind.mandatory && pref.allowed === false) {
      errors.push({ path: `${path}.kinds.${name}.allowed`, message: `"${name}" is mandatory: it cannot be turned off` });
    }
  }
  if (prefs.quiet_hours) errors.push(...windowErrors(prefs.quiet_hours, `${path}.quiet_hours`));
  return errors;
}
