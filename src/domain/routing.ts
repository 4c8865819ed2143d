// Which channels a recipient can be reached on through its own addresses, and how a routing
// "first" chain moves on. Pure. (Which channels a notification uses is domain/decide.ts; devices
// are counted there.)

import type { DeliveryStatus } from './delivery-status.ts';

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
  // Every recipient has an in-app inbox.
  out.add('inbox');
  if (r.address_disabled) for (const c of r.address_disabled.split(' ')) out.delete(c);
  return out;
}

/** Statuses by which a step of a "first" routing chain succeeded, and by which it failed. */
const STEP_SUCCEEDED: readonly DeliveryStatus[] = ['sent', 'delivered', 'read', 'acknowledged'];
const STEP_FAILED: readonly DeliveryStatus[] = ['exhausted', 'discarded', 'undelivered', 'skipped', 'deduplicated'];

/**
 * Routing "first": where a chain's step stands, from the statuses of its deliveries (the
 * notification's deliveries to one recipient on one channel):
 *   succeeded  some delivery of the step succeeded: the later steps are not needed
 *   failed     every delivery of the step failed: the next step goes
 *   under_way  otherwise: wait
 */
export function chainStep(statuses: readonly DeliveryStatus[]): 'succeeded' | 'failed' | 'under_way' {
  if (statuses.some((s) => STEP_SUCCEEDED.includes(s))) return 'succeeded';
  return statuses.every((s) => STEP_FAILED.includes(s)) ? 'failed' : 'under_way';
}
