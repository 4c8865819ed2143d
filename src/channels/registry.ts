// Every channel Herald has, with what the API validates for it: the provider config a workspace
// PUTs (PROVIDERS), and the per-send options of each channel (CHANNEL_OPTIONS). createChannels
// builds one instance of every channel for a process.

import { createPrivateKey } from 'node:crypto';
import type { Logger } from 'pino';
import type { TSchema } from 'typebox';
import type { Cidr } from '../net/address-policy.ts';
import type { SafeHttp } from '../net/safe-http.ts';
import { ApnsChannel, ApnsOptions, ApnsProviderConfig, APNS_SECRET_FIELDS } from './apns.ts';
import type { Channel, ChannelName, ProviderName } from './channel.ts';
import { DiscordChannel, DiscordOptions } from './discord.ts';
import { InboxChannel, InboxOptions, type InboxDelivery } from './inbox.ts';
import { EmailChannel, SmtpProviderConfig, SMTP_SECRET_FIELDS } from './email.ts';
import { FcmChannel, FcmOptions, FcmProviderConfig, FCM_SECRET_FIELDS } from './fcm.ts';
import { KakaoChannel, KakaoOptions, KakaoProviderConfig, KAKAO_SECRET_FIELDS } from './kakao.ts';
import { PushoverChannel, PushoverOptions, PushoverProviderConfig, PUSHOVER_SECRET_FIELDS, type AppLimits } from './pushover.ts';
import { SlackChannel, SlackOptions } from './slack.ts';
import { SmsChannel, SmsOptions, TwilioProviderConfig, TWILIO_SECRET_FIELDS } from './sms.ts';
import { WebhookChannel } from './webhook.ts';
import { WebpushChannel, webpushConfigProblem, WebpushOptions, WebpushProviderConfig, WEBPUSH_SECRET_FIELDS } from './webpush.ts';

export interface ProviderSpec {
  /** The schema of PUT /v1/providers/{provider} `config`. */
  config: TSchema;
  /** Top-level config fields shown masked. */
  secretFields: readonly string[];
  /**
   * What the schema cannot see but would fail every send (a key that does not parse, a VAPID pair
   * that does not match): the problem, or undefined. PUT answers 422 with it.
   */
  check?: (config: Record<string, unknown>) => string | undefined;
}

/** A PEM private key node:crypto can use (of `curve` when given), or the reason it is not. */
function privateKeyProblem(pem: unknown, what: string, curve?: string): string | undefined {
  try {
    const key = createPrivateKey(String(pem).replace(/\\n/g, '\n'));
    if (curve && key.asymmetricKeyDetails?.namedCurve !== curve) return `${what} is not a ${curve} (P-256) key`;
    return undefined;
  } catch (err) {
    return `${what} is not a usable PEM private key (${(err as Error).message})`;
  }
}

export const PROVIDERS: Readonly<Record<ProviderName, ProviderSpec>> = {
  fcm: {
    config: FcmProviderConfig,
    secretFields: FCM_SECRET_FIELDS,
    check: (c) => privateKeyProblem((c.service_account as { private_key?: unknown }).private_key, 'service_account.private_key'),
  },
  apns: { config: ApnsProviderConfig, secretFields: APNS_SECRET_FIELDS, check: (c) => privateKeyProblem(c.private_key, 'private_key', 'prime256v1') },
  webpush: { config: WebpushProviderConfig, secretFields: WEBPUSH_SECRET_FIELDS, check: webpushConfigProblem },
  pushover: { config: PushoverProviderConfig, secretFields: PUSHOVER_SECRET_FIELDS },
  twilio: { config: TwilioProviderConfig, secretFields: TWILIO_SECRET_FIELDS },
  kakao: { config: KakaoProviderConfig, secretFields: KAKAO_SECRET_FIELDS },
  smtp: { config: SmtpProviderConfig, secretFields: SMTP_SECRET_FIELDS },
};

/** The schema of `channel_options.<channel>` on a send, for channels that take options. */
export const CHANNEL_OPTIONS: Readonly<Partial<Record<ChannelName, TSchema>>> = {
  fcm: FcmOptions,
  apns: ApnsOptions,
  webpush: WebpushOptions,
  pushover: PushoverOptions,
  sms: SmsOptions,
  kakao: KakaoOptions,
  slack: SlackOptions,
  discord: DiscordOptions,
  inbox: InboxOptions,
};

export interface ChannelDeps {
  http: SafeHttp;
  allow: readonly Cidr[];
  timeoutMs: number;
  smtp: { url: URL | undefined; from: string; timeoutMs: number; maxConnections: number };
  log: Logger;
  onPushoverLimits: (workspaceId: string, limits: AppLimits) => void;
  /** Stores an inbox item and publishes it (realtime/inbox.ts InboxService.deliver). */
  inbox: (item: InboxDelivery) => Promise<string>;
}

export function createChannels(d: ChannelDeps): Map<ChannelName, Channel> {
  const list: Channel[] = [
    new WebhookChannel(d.http),
    new EmailChannel({ smtpUrl: d.smtp.url, from: d.smtp.from, timeoutMs: d.smtp.timeoutMs, maxConnections: d.smtp.maxConnections }),
    new FcmChannel({ http: d.http }),
    new ApnsChannel({ allow: d.allow, timeoutMs: d.timeoutMs }),
    new WebpushChannel({ http: d.http }),
    new PushoverChannel({ http: d.http, onAppLimits: d.onPushoverLimits }),
    new SmsChannel({ http: d.http }),
    new KakaoChannel({ http: d.http }),
    new SlackChannel({ http: d.http }),
    new DiscordChannel({ http: d.http }),
    new InboxChannel(d.inbox),
  ];
  return new Map(list.map((c) => [c.name, c]));
}
