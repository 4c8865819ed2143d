// Which deliveries a notification makes. Pure.
//
// Candidates are the requested channels, or, when none are requested, every channel Herald has
// configured. For each recipient and candidate: a delivery is `pending` when the channel is
// configured and the recipient has an address on it. A channel that was explicitly requested but
// cannot be used is recorded as a `skipped` delivery with the reason, so the decision is visible.
// A recipient with no pending delivery at all is unreachable (the request is refused).
// A device channel (push) makes one delivery per active device of the recipient on it; the
// recipient is reachable on it when it has at least one.

export type SkipReason = 'no_address' | 'channel_not_configured';

export interface PlannedDelivery<C extends string> {
  recipientId: string;
  channel: C;
  deviceId?: string;
  skip?: SkipReason;
}

export function planDeliveries<C extends string>(input: {
  recipients: { id: string; reachable: ReadonlySet<C>; devices?: ReadonlyMap<C, readonly string[]> }[];
  requested?: readonly C[] | undefined;
  configured: readonly C[];
}): { deliveries: PlannedDelivery<C>[]; unreachable: string[] } {
  const explicit = input.requested !== undefined;
  const candidates = explicit ? [...new Set(input.requested)] : input.configured;
  const deliveries: PlannedDelivery<C>[] = [];
  const unreachable: string[] = [];
  for (const r of input.recipients) {
    let any = false;
    for (const channel of candidates) {
      let skip: SkipReason | undefined;
      const devices = r.devices?.get(channel);
      if (!input.configured.includes(channel)) skip = 'channel_not_configured';
      else if (devices ? devices.length === 0 : !r.reachable.has(channel)) skip = 'no_address';
      if (!skip) {
        any = true;
        if (devices) for (const deviceId of devices) deliveries.push({ recipientId: r.id, channel, deviceId });
        else deliveries.push({ recipientId: r.id, channel });
      } else if (explicit) {
        deliveries.push({ recipientId: r.id, channel, skip });
      }
    }
    if (!any) unreachable.push(r.id);
  }
  return { deliveries, unreachable };
}

/** A recipient's address columns (store/adapter.ts RecipientAddresses). */
export interface AddressColumns {
  email: string | null;
  phone: string | null;
  webhook_url: string | null;
  webhook_disabled_at: number | null;
  pushover_user_key: string | null;
  slack_webhook_url: string | null;
  discord_webhook_url: string | null;
  kakao_phone: string | null;
  /** Space-separated channels whose address the vendor reported gone. */
  address_disabled: string | null;
}

/**
 * The non-device channels a recipient has a usable address on. A webhook answered 410 Gone, and
 * an address a vendor reported gone (address_disabled), do not count until they are PUT again.
 */
export function addressChannels(r: AddressColumns): Set<string> {
  const out = new Set<string>();
  if (r.webhook_url && r.webhook_disabled_at === null) out.add('webhook');
  if (r.email) out.add('email');
  if (r.phone) out.add('sms');
  if (r.kakao_phone) out.add('kakao');
  if (r.pushover_user_key) out.add('pushover');
  if (r.slack_webhook_url) out.add('slack');
  if (r.discord_webhook_url) out.add('discord');
  if (r.address_disabled) for (const c of r.address_disabled.split(' ')) out.delete(c);
  return out;
}
