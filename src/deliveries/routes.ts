// Vendor callbacks: vendors report on deliveries Herald sent.
//   POST /v1/callbacks/twilio?delivery=&token=    Twilio SMS status callback (form-encoded)
//   POST /v1/callbacks/pushover?delivery=&token=  Pushover emergency-priority receipt callback (form)
// No API key: the URL carries a token that only Herald can make, bound to the provider and the
// delivery (channels/callbacks.ts); Twilio's X-Twilio-Signature over that exact URL and the form is
// verified too (inbound/verifiers/twilio.ts), with the workspace's auth token. A verified report moves the delivery forward
// only (domain/delivery-status.ts advanceAfterSent), so repeated and reordered callbacks are
// harmless; the answer is 204 whether or not it moved. Bad token or signature: 403. Unknown
// delivery: 404. A malformed body: 422.

import { Type } from 'typebox';
import type { ProviderName } from '../channels/channel.ts';
import { parseReceiptCallback } from '../channels/pushover.ts';
import { parseTwilioCallback, TWILIO_SIGNATURE_HEADER, verifyTwilioSignature } from '../inbound/verifiers/twilio.ts';
import { CALLBACK_PROVIDERS } from '../channels/callbacks.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { problems } from '../http/schemas.ts';

const Query = Type.Object({
  // A delivery id (domain/ids.ts): `dlv_` + a ULID, or since migration 0013 `dlv_` + its
  // notification's ULID + a 3-digit ordinal or `_` + a ULID.
  delivery: Type.String({ pattern: '^dlv_[0-9A-Z]{26}([0-9A-Z]{3}|_[0-9A-Z]{26})?$' }),
  token: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' }),
});

const FormBody = Type.Record(Type.String(), Type.String());

function callbackRoutes(app: Api, s: Services): void {
  // Vendors post application/x-www-form-urlencoded; repeated fields keep their last value.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  /** The delivery a callback is about, after checking the URL token. */
  const delivery = async (provider: ProviderName, q: { delivery: string; token: string }) => {
    if (!s.callbacks.verify(provider, q.delivery, q.token)) throw new Problem('invalid_signature', 'The callback token is not valid');
    const d = await s.deliveries.get(q.delivery);
    if (!d || d.channel !== CALLBACK_PROVIDERS[provider]) throw new Problem('not_found', `No ${provider} delivery "${q.delivery}"`);
    return d;
  };

  app.post(
    '/twilio',
    {
      schema: {
        summary: 'Twilio SMS status callback',
        tags: ['callbacks'],
        querystring: Query,
        body: FormBody,
        response: { 204: Type.Null(), ...problems(403, 404, 415, 422) },
      },
    },
    async (request, reply) => {
      const d = await delivery('twilio', request.query);
      const creds = await s.providers.get(d.workspace_id, 'twilio');
      const url = s.callbacks.url('sms', d.id);
      const authToken = creds?.config.auth_token;
      if (typeof authToken !== 'string' || !url || !verifyTwilioSignature(authToken, url, request.body, request.headers[TWILIO_SIGNATURE_HEADER] as string | undefined)) {
        s.metrics.callbacks.inc({ provider: 'twilio', result: 'rejected' });
        throw new Problem('invalid_signature', 'X-Twilio-Signature does not verify');
      }
      const report = parseTwilioCallback(request.body);
      if (!report) throw new Problem('validation_failed', 'Expected MessageSid and MessageStatus', { errors: [{ path: 'body', message: 'MessageSid and MessageStatus are required' }] });
      if (d.provider_message_id && report.messageSid !== d.provider_message_id) throw new Problem('not_found', `Message ${report.messageSid} is not delivery ${d.id}`);
      let moved = false;
      if (report.status) {
        const detail = { twilio_status: report.messageStatus, ...(report.errorCode && { error_code: report.errorCode }) };
        moved = await s.deliveries.report(d.id, report.status, detail, 'callback');
      }
      s.metrics.callbacks.inc({ provider: 'twilio', result: moved ? 'applied' : 'ignored' });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/pushover',
    {
      schema: {
        summary: 'Pushover receipt callback (emergency priority)',
        tags: ['callbacks'],
        querystring: Query,
        body: FormBody,
        response: { 204: Type.Null(), ...problems(403, 404, 415, 422) },
      },
    },
    async (request, reply) => {
      const d = await delivery('pushover', request.query);
      const cb = parseReceiptCallback(request.body);
      if (!cb) throw new Problem('validation_failed', 'Expected a Pushover receipt callback', { errors: [{ path: 'body', message: 'receipt and acknowledged are required' }] });
      if (d.provider_message_id && cb.receipt !== d.provider_message_id) throw new Problem('not_found', `Receipt ${cb.receipt} is not delivery ${d.id}`);
      let moved = false;
      if (cb.acknowledged) {
        const detail = {
          acknowledged_by: cb.acknowledgedBy ?? null,
          acknowledged_by_device: cb.acknowledgedByDevice ?? null,
          acknowledged_at: cb.acknowledgedAt ? new Date(cb.acknowledgedAt).toISOString() : null,
        };
        moved = await s.deliveries.report(d.id, 'acknowledged', detail, 'callback');
        await s.deliveries.forgetReceipt(d.id);
      }
      s.metrics.callbacks.inc({ provider: 'pushover', result: moved ? 'applied' : 'ignored' });
      return reply.code(204).send(null);
    },
  );
}

export const callbacksModule: RouteModule = { name: 'callbacks', prefix: '/v1/callbacks', auth: 'none', apiRole: true, routes: callbackRoutes };
