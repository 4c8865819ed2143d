// Devices: push addresses of a recipient (FCM registration tokens, APNs device tokens, Web Push
// subscriptions). A notification fans out to every active device on each push channel, one
// delivery per device.
//   POST   /v1/recipients/{id}/devices              register (send scope). 201 when new; 200 when the
//                                                   token was known: it moves to this recipient (the
//                                                   newest owner) and is re-enabled.
//   GET    /v1/recipients/{id}/devices              list (read scope); tokens masked
//   DELETE /v1/recipients/{id}/devices/{device_id}  remove (send scope)
// Tokens are sealed at rest; a device is found again by the sha256 of its token (Web Push: of the
// endpoint), unique per workspace and platform.

import { createHash } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { newId } from '../domain/ids.ts';
import { Problem } from '../errors.ts';
import type { DevicesTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems, RecipientId } from '../http/schemas.ts';

const Base64Url = (bytes: number) => Type.String({ pattern: '^[A-Za-z0-9_-]+={0,2}$', minLength: Math.floor((bytes * 4) / 3), maxLength: Math.ceil(bytes / 3) * 4 });

const Subscription = Type.Object(
  {
    endpoint: Type.String({ maxLength: 2048, description: 'PushSubscription.endpoint (https)' }),
    expirationTime: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    keys: Type.Object(
      {
        p256dh: Base64Url(65),
        auth: Base64Url(16),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, description: 'The browser PushSubscription as JSON (PushSubscription.toJSON())' },
);

const DeviceInput = Type.Object(
  {
    platform: Type.Union([Type.Literal('fcm'), Type.Literal('apns'), Type.Literal('webpush')]),
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'FCM registration token or APNs device token (hex)' })),
    subscription: Type.Optional(Subscription),
    app: Type.Optional(Type.String({ maxLength: 255, description: 'The app: APNs topic (bundle id) or FCM app, when it differs from the provider default' })),
    label: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const Device = Type.Object({
  id: Type.String(),
  recipient: Type.String(),
  platform: Type.String(),
  token: Type.String({ description: 'Masked' }),
  app: Type.Union([Type.String(), Type.Null()]),
  label: Type.Union([Type.String(), Type.Null()]),
  disabled_at: Type.Union([Type.String(), Type.Null()], { description: 'Set when the vendor said the device is gone; register it again to re-enable' }),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const Params = Type.Object({ id: RecipientId });
const DeviceParams = Type.Object({ id: RecipientId, device_id: Type.String({ pattern: '^dev_[0-9A-Z]{26}$' }) });

/** The raw token of a registration, validated per platform; throws a 422 problem. */
function rawToken(input: Static<typeof DeviceInput>): string {
  const fail = (path: string, message: string) => {
    throw new Problem('validation_failed', `${path} ${message}`, { errors: [{ path, message }] });
  };
  if (input.platform === 'webpush') {
    if (!input.subscription) fail('body.subscription', 'is required for webpush');
    if (input.token !== undefined) fail('body.token', 'is not used for webpush (give the subscription)');
    let url: URL | undefined;
    try {
      url = new URL(input.subscription!.endpoint);
    } catch {
      fail('body.subscription.endpoint', 'is not a URL');
    }
    if (url!.protocol !== 'https:' && url!.protocol !== 'http:') fail('body.subscription.endpoint', 'must be an https URL');
    const p256dh = Buffer.from(input.subscription!.keys.p256dh, 'base64url');
    if (p256dh.length !== 65 || p256dh[0] !== 4) fail('body.subscription.keys.p256dh', 'must be an uncompressed P-256 public key (65 bytes, base64url)');
    if (Buffer.from(input.subscription!.keys.auth, 'base64url').length !== 16) fail('body.subscription.keys.auth', 'must be 16 bytes, base64url');
    const { endpoint, keys } = input.subscription!;
    return JSON.stringify({ endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } });
  }
  if (input.subscription !== undefined) fail('body.subscription', `is only for webpush`);
  if (!input.token) fail('body.token', `is required for ${input.platform}`);
  if (input.platform === 'apns' && !/^[0-9a-fA-F]{64,200}$/.test(input.token!)) fail('body.token', 'must be an APNs device token (hex)');
  if (input.platform === 'fcm' && !/^[\x21-\x7e]+$/.test(input.token!)) fail('body.token', 'must be an FCM registration token');
  return input.platform === 'apns' ? input.token!.toLowerCase() : input.token!;
}

/** What identifies a device: the token, or a Web Push subscription's endpoint. */
function identity(platform: string, token: string): string {
  return platform === 'webpush' ? (JSON.parse(token) as { endpoint: string }).endpoint : token;
}

function deviceRoutes(app: Api, s: Services): void {
  const view = (d: DevicesTable): Static<typeof Device> => {
    const id = identity(d.platform, s.secrets.open(d.token));
    return {
      id: d.id,
      recipient: d.recipient_id,
      platform: d.platform,
      token: id.length > 16 ? `${id.slice(0, 12)}…${id.slice(-4)}` : `${id.slice(0, 4)}…`,
      app: d.app,
      label: d.label,
      disabled_at: iso(d.disabled_at),
      disabled_reason: d.disabled_reason,
      created_at: iso(d.created_at)!,
      updated_at: iso(d.updated_at)!,
    };
  };

  app.post(
    '/recipients/:id/devices',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Register a push device',
        tags: ['devices'],
        params: Params,
        body: DeviceInput,
        response: { 200: Device, 201: Device, ...problems(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      const token = rawToken(request.body);
      if (!(await s.recipients.get(ws, request.params.id))) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      const now = Date.now();
      const { device, created, movedFrom } = await s.devices.register({
        id: newId('dev'),
        workspace_id: ws,
        recipient_id: request.params.id,
        platform: request.body.platform,
        token_hash: createHash('sha256').update(identity(request.body.platform, token)).digest('hex'),
        token: s.secrets.seal(token),
        app: request.body.app ?? null,
        label: request.body.label ?? null,
        created_at: now,
        updated_at: now,
        disabled_at: null,
        disabled_reason: null,
      });
      if (movedFrom) request.log.info({ device: device.id, from: movedFrom, to: request.params.id }, 'device moved to its newest owner');
      return reply.code(created ? 201 : 200).send(view(device));
    },
  );

  app.get(
    '/recipients/:id/devices',
    {
      config: { scope: 'read' },
      schema: { summary: "List a recipient's devices", tags: ['devices'], params: Params, response: { 200: Type.Object({ data: Type.Array(Device) }), ...problems(401, 403, 404) } },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      if (!(await s.recipients.get(ws, request.params.id))) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return { data: (await s.devices.list(ws, request.params.id)).map(view) };
    },
  );

  app.delete(
    '/recipients/:id/devices/:device_id',
    {
      config: { scope: 'send' },
      schema: { summary: 'Remove a device', tags: ['devices'], params: DeviceParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      const deleted = await s.devices.delete(request.principal.workspaceId, request.params.id, request.params.device_id);
      if (!deleted) throw new Problem('not_found', `No device "${request.params.device_id}" for recipient "${request.params.id}"`);
      return reply.code(204).send(null);
    },
  );
}

export const devicesModule: RouteModule = { name: 'devices', prefix: '/v1', auth: 'principal', apiRole: true, routes: deviceRoutes };
