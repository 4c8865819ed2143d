// Which deliveries a notification makes. Pure.
//
// Candidates are the requested channels, or, when none are requested, every channel Herald has
// configured. For each recipient and candidate: a delivery is `pending` when the channel is
// configured and the recipient has an address on it. A channel that was explicitly requested but
// cannot be used is recorded as a `skipped` delivery with the reason, so the decision is visible.
// A recipient with no pending delivery at all is unreachable (the request is refused).

export type SkipReason = 'no_address' | 'channel_not_configured';

export interface PlannedDelivery<C extends string> {
  recipientId: string;
  channel: C;
  skip?: SkipReason;
}

export function planDeliveries<C extends string>(input: {
  recipients: { id: string; reachable: ReadonlySet<C> }[];
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
      if (!input.configured.includes(channel)) skip = 'channel_not_configured';
      else if (!r.reachable.has(channel)) skip = 'no_address';
      if (!skip) {
        any = true;
        deliveries.push({ recipientId: r.id, channel });
      } else if (explicit) {
        deliveries.push({ recipientId: r.id, channel, skip });
      }
    }
    if (!any) unreachable.push(r.id);
  }
  return { deliveries, unreachable };
}
