// Vendor callback URLs: where vendors report on a delivery after Herald sent it (Twilio status
// callbacks, Pushover receipt callbacks, Kakao provider reports).
//
// URL: {HERALD_PUBLIC_URL}/v1/callbacks/{provider}?delivery={delivery id}&token={token}, where
// token = SecretBox.token("callback:{provider}:{delivery id}"). The token authenticates vendors
// that do not sign their calls (Pushover), and scopes every call to one delivery; Twilio's
// X-Twilio-Signature is verified in addition. A URL is only ever handed to the vendor of its
// provider, inside an HTTPS request.

import type { SecretBox } from '../auth/secret-box.ts';
import { CHANNEL_PROVIDER, type ChannelName, type ProviderName } from './channel.ts';

/** Providers that call back, and the channel they deliver on. */
export const CALLBACK_PROVIDERS: Readonly<Partial<Record<ProviderName, ChannelName>>> = { twilio: 'sms', pushover: 'pushover', kakao: 'kakao' };

export class CallbackUrls {
  readonly #secrets: SecretBox;
  readonly #base: string | undefined;

  constructor(secrets: SecretBox, publicUrl: URL | undefined) {
    this.#secrets = secrets;
    this.#base = publicUrl?.href.replace(/\/+$/, '');
  }

  /** The callback URL of a delivery on `channel`, or undefined (no public URL, or a channel without callbacks). */
  url(channel: ChannelName, deliveryId: string): string | undefined {
    const provider = CHANNEL_PROVIDER[channel];
    if (!this.#base || !provider || CALLBACK_PROVIDERS[provider] !== channel) return undefined;
    const token = this.#secrets.token(`callback:${provider}:${deliveryId}`);
    return `${this.#base}/v1/callbacks/${provider}?delivery=${encodeURIComponent(deliveryId)}&token=${token}`;
  }

  /** The absolute URL a request to `path` (path and query, as received) was made to. */
  absolute(path: string): string | undefined {
    return this.#base ? this.#base + path : undefined;
  }

  verify(provider: ProviderName, deliveryId: string, token: string): boolean {
    return this.#secrets.verifyToken(`callback:${provider}:${deliveryId}`, token);
  }
}
