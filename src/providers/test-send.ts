// Test sends of a provider (POST /v1/providers/{provider}/test): one real attempt through the
// provider's channel, answered with the vendor's verdict.

import type { SecretBox } from '../auth/secret-box.ts';
import { CHANNEL_PROVIDER, DeliveryError, type Channel, type ChannelName, type ProviderName } from '../channels/channel.ts';
import type { DeviceService } from '../devices/service.ts';
import { newId } from '../domain/ids.ts';
import { addressChannels } from '../domain/routing.ts';
import { Problem } from '../errors.ts';
import { buildJob } from '../queue/job.ts';
import type { RecipientService } from '../recipients/service.ts';
import type { ClaimedDelivery } from '../store/adapter.ts';
import type { ProviderRegistry } from './service.ts';

/** The channel that delivers through each provider. */
export const PROVIDER_CHANNEL = Object.fromEntries(
  (Object.entries(CHANNEL_PROVIDER) as [ChannelName, ProviderName | null][]).filter(([, p]) => p !== null).map(([c, p]) => [p, c]),
) as Record<ProviderName, ChannelName>;

/** What a test send answers: the vendor's verdict on one attempt. */
export interface TestSendResult {
  ok: boolean;
  provider_message_id?: string;
  outcome?: string;
  error_class?: string;
  error?: string;
  http_status?: number;
}

/**
 * Test sends: one real attempt through a provider's channel to a recipient (its newest active
 * device of the platform, or the one named), straight to the vendor: not queued, not retried, not
 * recorded. 404 when the provider is not configured or the recipient does not exist; 422
 * no_channel when the recipient has no such address or device.
 */
export interface TesterDeps {
  channels: ReadonlyMap<ChannelName, Channel>;
  registry: ProviderRegistry;
  recipients: Pick<RecipientService, 'get'>;
  devices: Pick<DeviceService, 'list'>;
  secrets: SecretBox;
  /** Whether email works without workspace credentials (HERALD_SMTP_URL). */
  smtpConfigured: boolean;
  /** How long the one attempt may take. */
  timeoutMs: number;
}

export class ProviderTester {
  readonly #d: TesterDeps;

  constructor(deps: TesterDeps) {
    this.#d = deps;
  }

  async run(ws: string, provider: ProviderName, input: { to: string; device?: string | undefined; title?: string | undefined; body?: string | undefined }): Promise<TestSendResult> {
    const channelName = PROVIDER_CHANNEL[provider];
    const channel = this.#d.channels.get(channelName)!;
    const stored = await this.#d.registry.get(ws, provider);
    if (!stored && !(provider === 'smtp' && this.#d.smtpConfigured)) throw new Problem('not_found', `${provider} is not configured (PUT /v1/providers/${provider})`);
    const r = await this.#d.recipients.get(ws, input.to);
    if (!r) throw new Problem('not_found', `No recipient "${input.to}"`);
    let device: { id: string; platform: string; token: string; app: string | null } | undefined;
    if (channelName === 'fcm' || channelName === 'apns' || channelName === 'webpush') {
      const devices = (await this.#d.devices.list(ws, r.id)).filter((d) => d.platform === channelName && d.disabled_at === null);
      device = input.device ? devices.find((d) => d.id === input.device) : devices.at(-1);
      if (!device) throw new Problem('no_channel', `Recipient "${r.id}" has no active ${channelName} device${input.device ? ` "${input.device}"` : ''}`);
    } else if (!addressChannels(r).has(channelName)) {
      throw new Problem('no_channel', `Recipient "${r.id}" has no ${channelName} address`);
    }
    const now = Date.now();
    const row: ClaimedDelivery = {
      ...r,
      id: newId('dlv'),
      workspace_id: ws,
      notification_id: newId('ntf'),
      recipient_id: r.id,
      channel: channelName,
      device_id: device?.id ?? null,
      attempts: 1,
      kind: 'test',
      title: input.title ?? 'Herald test',
      body: input.body ?? 'This is a test message from Herald.',
      data: null,
      notification_created_at: now,
      delivery_count: 1,
      channel_options: null,
      fallback: 0,
      routing: 'all',
      content: null,
      digest_id: null,
      recipient_exists: r.created_at,
      device_platform: device?.platform ?? null,
      device_token: device?.token ?? null,
      device_app: device?.app ?? null,
      device_disabled_at: null,
    };
    const job = await buildJob(row, { open: (sealed) => this.#d.secrets.open(sealed), providers: this.#d.registry, callbackUrl: () => undefined });
    const signal = AbortSignal.timeout(this.#d.timeoutMs);
    try {
      const result = await channel.deliver(job, signal);
      return { ok: true, ...(result.providerMessageId && { provider_message_id: result.providerMessageId }), ...(result.httpStatus !== undefined && { http_status: result.httpStatus }) };
    } catch (err) {
      if (!(err instanceof DeliveryError)) throw err;
      return {
        ok: false,
        outcome: err.kind,
        error_class: err.errorClass,
        error: err.message,
        ...(err.detail.httpStatus !== undefined && { http_status: err.detail.httpStatus }),
      };
    }
  }
}
