// Turns a claimed delivery (store row joined with its notification, recipient and device) into
// the DeliveryJob a channel receives: secrets opened, the send's options for this channel, the
// workspace's provider credentials and the vendor callback URL.

import { CHANNEL_PROVIDER, PermanentError, type ChannelName, type DeliveryJob, type DevicePlatform } from '../channels/channel.ts';
import type { ProviderRegistry } from '../providers/service.ts';
import type { ClaimedDelivery } from '../store/adapter.ts';

export interface JobDeps {
  /** Opens a sealed secret (SecretBox.open, possibly cached). */
  open: (sealed: string) => string;
  providers: Pick<ProviderRegistry, 'get'>;
  callbackUrl: (channel: ChannelName, deliveryId: string) => string | undefined;
  /** The rendering of a digest this delivery carries (closes the digest: its items are then fixed). */
  digest?: (row: ClaimedDelivery) => Promise<{ title: string; body: string; html?: string; subject?: string }>;
}

/**
 * Throws PermanentError 'provider_not_configured' when the channel needs workspace credentials
 * that are not there (removed after the notification was accepted). Email without credentials uses
 * the deployment's server.
 */
export async function buildJob(row: ClaimedDelivery, deps: JobDeps): Promise<DeliveryJob> {
  const name = row.channel as ChannelName;
  const data: unknown = row.data === null ? null : JSON.parse(row.data);
  const options = row.channel_options === null ? {} : ((JSON.parse(row.channel_options) as Record<string, Record<string, unknown>>)[name] ?? {});
  // A template's rendering for this delivery replaces the notification's title and body.
  const content =
    row.digest_id !== null && deps.digest
      ? await deps.digest(row)
      : row.content === null
        ? undefined
        : (JSON.parse(row.content) as { title: string; body: string; html?: string; subject?: string });
  const job: DeliveryJob = {
    deliveryId: row.id,
    notificationId: row.notification_id,
    workspaceId: row.workspace_id,
    channel: name,
    attempt: row.attempts,
    notification: {
      kind: row.kind,
      title: content?.title ?? row.title,
      body: content?.body ?? row.body,
      data,
      createdAt: row.notification_created_at,
      options,
      fallback: row.fallback === 1,
      ...(content?.html !== undefined && { html: content.html }),
      ...(content?.subject !== undefined && { subject: content.subject }),
    },
    recipient: {
      id: row.recipient_id,
      name: row.name,
      email: row.email,
      phone: row.phone,
      locale: row.locale,
      timezone: row.timezone,
      webhookUrl: row.webhook_disabled_at === null ? row.webhook_url : null,
      webhookSecret: row.webhook_secret ? deps.open(row.webhook_secret) : null,
      pushover: row.pushover_user_key ? { userKey: row.pushover_user_key, device: row.pushover_device } : null,
      slackWebhookUrl: row.slack_webhook_url ? deps.open(row.slack_webhook_url) : null,
      discordWebhookUrl: row.discord_webhook_url ? deps.open(row.discord_webhook_url) : null,
      kakaoPhone: row.kakao_phone,
    },
  };
  if (row.device_id !== null && row.device_token !== null) {
    const platform = row.device_platform as DevicePlatform;
    const token = deps.open(row.device_token);
    if (platform === 'webpush') {
      const subscription = JSON.parse(token) as { endpoint: string; keys: { p256dh: string; auth: string } };
      job.device = { id: row.device_id, platform, token: subscription.endpoint, subscription, app: row.device_app };
    } else {
      job.device = { id: row.device_id, platform, token, app: row.device_app };
    }
  }
  const provider = CHANNEL_PROVIDER[name];
  if (provider) {
    const creds = await deps.providers.get(row.workspace_id, provider);
    if (!creds && name !== 'email') throw new PermanentError('provider_not_configured', `the workspace has no ${provider} credentials (PUT /v1/providers/${provider})`);
    if (creds) job.provider = creds;
  }
  const callbackUrl = deps.callbackUrl(name, row.id);
  if (callbackUrl) job.callbackUrl = callbackUrl;
  return job;
}
