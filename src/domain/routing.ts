// Which channels a recipient can be reached on through its own addresses. Pure. (Which of them a
// notification uses is domain/decide.ts; devices are counted there.)

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
