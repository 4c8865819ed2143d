// A fake Twilio Messaging API on 127.0.0.1 (ephemeral port) that checks requests the way Twilio
// does and answers with Twilio's bodies and status codes:
//   POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded
//     HTTP Basic auth must be this account's sid:token, and the sid in the path this account
//       (else 401 {code 20003, message "Authenticate"})
//     To required (21604) and E.164 (21211); From or MessagingServiceSid required (21603); a
//       From must be E.164 (21212) and one of this account's senders (21606); a
//       MessagingServiceSid must be MG + 32 hex (21701) and one of this account's services;
//       Body required (21602) and at most 1600 characters (21617); StatusCallback an http(s)
//       URL (21609)
//     then scripted failures (per To number, or for every request), then 201 with a message
//     resource (sid "SM" + 32 hex; status "queued" with From, "accepted" with a Messaging Service)
//   anything else: 404 {code 20404}
// Every request is recorded. sendStatusCallback() POSTs a status callback to the message's
// StatusCallback as Twilio does: form-encoded, X-Twilio-Signature computed here (independently of
// src/inbound/verifiers/twilio.ts) from the callback URL and the sorted fields.

import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeTwilioOptions {
  accountSid?: string;
  authToken?: string;
  /** Numbers this account may send From. */
  senders?: string[];
  /** Messaging Services of this account. */
  messagingServices?: string[];
}

export interface TwilioRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Basic auth user and password, when the header was a well-formed Basic header. */
  user: string | undefined;
  password: string | undefined;
  rawBody: string;
  form: Record<string, string>;
  /** The status the fake answered. */
  status: number;
  /** The error code it answered, or the sid of the message it created. */
  code?: number;
  sid?: string;
}

export interface ScriptedFailure {
  /** A Twilio error code; its status and message come from TWILIO_ERRORS unless given. */
  code?: number;
  status?: number;
  message?: string;
  /** A Retry-After header value. */
  retryAfter?: string;
  /** How many requests fail before the address works again (default: all). */
  times?: number;
  /** Answer this raw body instead of Twilio's error JSON. */
  rawBody?: string;
}

export interface StoredMessage {
  resource: Record<string, unknown>;
  statusCallback: string | undefined;
}

/** Twilio's HTTP status and message for the error codes the fake produces. */
export const TWILIO_ERRORS: Record<number, { status: number; message: (p: Record<string, string>) => string }> = {
  20003: { status: 401, message: () => 'Authenticate' },
  20404: { status: 404, message: (p) => `The requested resource ${p.path ?? ''} was not found` },
  20429: { status: 429, message: () => 'Too Many Requests' },
  20500: { status: 500, message: () => 'Internal Server Error' },
  20503: { status: 503, message: () => 'Service Unavailable' },
  21211: { status: 400, message: (p) => `The 'To' number ${p.To ?? ''} is not a valid phone number.` },
  21212: { status: 400, message: (p) => `The 'From' number ${p.From ?? ''} is not a valid phone number, shortcode, or alphanumeric sender ID.` },
  21408: { status: 400, message: (p) => `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${p.To ?? ''}.` },
  21602: { status: 400, message: () => 'Message body is required.' },
  21603: { status: 400, message: () => "A 'From' phone number is required." },
  21604: { status: 400, message: () => "A 'To' phone number is required." },
  21606: { status: 400, message: (p) => `The 'From' phone number provided (${p.From ?? ''}) is not a valid message-capable Twilio phone number for this destination.` },
  21609: { status: 400, message: () => 'Invalid StatusCallback url' },
  21610: { status: 400, message: () => 'Attempt to send to unsubscribed recipient' },
  21614: { status: 400, message: (p) => `The 'To' number ${p.To ?? ''} is not a valid mobile number.` },
  21617: { status: 400, message: () => 'The concatenated message body exceeds the 1600 character limit.' },
  21659: { status: 400, message: (p) => `The 'From' number ${p.From ?? ''} is not a Twilio phone number.` },
  21701: { status: 400, message: (p) => `The Messaging Service Sid ${p.MessagingServiceSid ?? ''} is invalid.` },
};

const E164 = /^\+[1-9][0-9]{1,14}$/;

function rfc2822(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

function errorBody(code: number, params: Record<string, string>, message?: string): { status: number; body: Record<string, unknown> } {
  const known = TWILIO_ERRORS[code];
  const status = known?.status ?? 400;
  const body: Record<string, unknown> = { code, message: message ?? known?.message(params) ?? `Error ${code}`, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
  if (code === 20003) body.detail = 'Your AccountSid or AuthToken was incorrect.';
  return { status, body };
}

export class FakeTwilio {
  readonly accountSid: string;
  readonly authToken: string;
  readonly senders: Set<string>;
  readonly messagingServices: Set<string>;
  readonly requests: TwilioRequest[] = [];
  readonly messages = new Map<string, StoredMessage>();
  /** The base URL to configure as the provider's base_url. */
  url = '';
  readonly #byTo = new Map<string, ScriptedFailure>();
  #all: ScriptedFailure | undefined;
  readonly #server: Server;

  constructor(opts: FakeTwilioOptions = {}) {
    this.accountSid = opts.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
    this.authToken = opts.authToken ?? randomBytes(16).toString('hex');
    this.senders = new Set(opts.senders ?? ['+15005550006']);
    this.messagingServices = new Set(opts.messagingServices ?? [`MG${randomBytes(16).toString('hex')}`]);
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        const form: Record<string, string> = {};
        if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
          for (const [k, v] of new URLSearchParams(rawBody)) if (!(k in form)) form[k] = v;
        }
        let user: string | undefined;
        let password: string | undefined;
        const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(String(req.headers.authorization ?? ''));
        if (m) {
          const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
          const i = decoded.indexOf(':');
          if (i >= 0) {
            user = decoded.slice(0, i);
            password = decoded.slice(i + 1);
          }
        }
        const record: TwilioRequest = { method: req.method ?? '', path: req.url ?? '/', headers: req.headers, user, password, rawBody, form, status: 0 };
        this.requests.push(record);
        const answer = this.#handle(record);
        record.status = answer.status;
        const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'twilio-request-id': `RQ${randomBytes(16).toString('hex')}` };
        if (answer.status === 401) headers['www-authenticate'] = 'Basic realm="Twilio API"';
        if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
        res.writeHead(answer.status, headers);
        res.end(answer.raw ?? JSON.stringify(answer.body));
      });
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** The provider config for this account (with `from`, or `messaging_service_sid` when asked). */
  config(extra: Record<string, unknown> = {}, sender: 'from' | 'messaging_service' = 'from'): Record<string, unknown> {
    const base = { account_sid: this.accountSid, auth_token: this.authToken };
    const s = sender === 'from' ? { from: [...this.senders][0] } : { messaging_service_sid: [...this.messagingServices][0] };
    return { ...base, ...s, ...extra };
  }

  /** Requests to `to` answer `failure` (a Twilio error code, a status, or both). */
  failTo(to: string, failure: ScriptedFailure): void {
    this.#byTo.set(to, { ...failure });
  }

  /** Every valid request answers `failure` (until `times` runs out); undefined clears it. */
  failAll(failure: ScriptedFailure | undefined): void {
    this.#all = failure && { ...failure };
  }

  #handle(r: TwilioRequest): { status: number; body?: unknown; raw?: string; retryAfter?: string } {
    const p = { ...r.form, path: r.path.split('?')[0]! };
    const fail = (code: number) => {
      r.code = code;
      return errorBody(code, p);
    };
    const match = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(p.path);
    if (r.method !== 'POST' || !match) return fail(20404);
    if (r.user !== this.accountSid || r.password !== this.authToken || decodeURIComponent(match[1]!) !== this.accountSid) return fail(20003);
    const f = r.form;
    if (!f.To) return fail(21604);
    if (!E164.test(f.To)) return fail(21211);
    if (!f.From && !f.MessagingServiceSid) return fail(21603);
    if (f.From !== undefined) {
      if (!E164.test(f.From)) return fail(21212);
      if (!this.senders.has(f.From)) return fail(21606);
    }
    if (f.MessagingServiceSid !== undefined && (!/^MG[0-9a-f]{32}$/.test(f.MessagingServiceSid) || !this.messagingServices.has(f.MessagingServiceSid))) return fail(21701);
    if (!f.Body) return fail(21602);
    if (f.Body.length > 1600) return fail(21617);
    if (f.StatusCallback !== undefined) {
      let ok = false;
      try {
        ok = ['http:', 'https:'].includes(new URL(f.StatusCallback).protocol);
      } catch {}
      if (!ok) return fail(21609);
    }
    const scripted = this.#take(f.To);
    if (scripted) {
      const code = scripted.code ?? ({ 429: 20429, 500: 20500, 503: 20503 } as Record<number, number>)[scripted.status ?? 500] ?? scripted.status ?? 20500;
      const e = errorBody(code, p, scripted.message);
      const status = scripted.status ?? e.status;
      r.code = code;
      if (scripted.rawBody !== undefined) return { status, raw: scripted.rawBody, retryAfter: scripted.retryAfter };
      return { status, body: { ...e.body, status }, retryAfter: scripted.retryAfter };
    }
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const now = rfc2822(new Date());
    const viaService = f.MessagingServiceSid !== undefined;
    const uri = `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`;
    const resource = {
      account_sid: this.accountSid,
      api_version: '2010-04-01',
      body: f.Body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: f.From ?? null,
      messaging_service_sid: f.MessagingServiceSid ?? null,
      num_media: '0',
      num_segments: viaService ? '0' : String(Math.max(1, Math.ceil(f.Body.length / 153))),
      price: null,
      price_unit: 'USD',
      sid,
      status: viaService ? 'accepted' : 'queued',
      subresource_uris: { media: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}/Media.json` },
      to: f.To,
      uri,
    };
    this.messages.set(sid, { resource, statusCallback: f.StatusCallback });
    r.sid = sid;
    return { status: 201, body: resource };
  }

  #take(to: string): ScriptedFailure | undefined {
    const pick = (f: ScriptedFailure | undefined, clear: () => void) => {
      if (!f) return undefined;
      if (f.times !== undefined) {
        if (f.times <= 0) return undefined;
        f.times--;
        if (f.times === 0) clear();
      }
      return f;
    };
    return pick(this.#byTo.get(to), () => this.#byTo.delete(to)) ?? pick(this.#all, () => (this.#all = undefined));
  }

  /**
   * POSTs a status callback for message `sid` to its StatusCallback (or `opts.url`), signed with
   * X-Twilio-Signature; `opts.token` signs with another token. Returns the receiver's status.
   */
  async sendStatusCallback(sid: string, messageStatus: string, opts: { errorCode?: string; url?: string; token?: string } = {}): Promise<{ status: number; params: Record<string, string>; signature: string }> {
    const msg = this.messages.get(sid);
    if (!msg) throw new Error(`no message ${sid}`);
    const url = opts.url ?? msg.statusCallback;
    if (!url) throw new Error(`message ${sid} has no StatusCallback`);
    const r = msg.resource;
    const params: Record<string, string> = {
      AccountSid: this.accountSid,
      ApiVersion: '2010-04-01',
      From: String(r.from ?? ''),
      MessageSid: sid,
      MessageStatus: messageStatus,
      SmsSid: sid,
      SmsStatus: messageStatus,
      To: String(r.to),
    };
    if (r.messaging_service_sid) params.MessagingServiceSid = String(r.messaging_service_sid);
    if (opts.errorCode) params.ErrorCode = opts.errorCode;
    if (messageStatus === 'delivered' || messageStatus === 'undelivered') params.RawDlrDoneDate = new Date().toISOString().replace(/\D/g, '').slice(2, 12);
    const data = url + Object.keys(params).sort().map((k) => k + params[k]).join('');
    const signature = createHmac('sha1', opts.token ?? this.authToken).update(data, 'utf8').digest('base64');
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signature,
        'i-twilio-idempotency-token': randomBytes(16).toString('hex'),
        'user-agent': 'TwilioProxy/1.1',
      },
      body: new URLSearchParams(params).toString(),
    });
    await res.arrayBuffer();
    return { status: res.status, params, signature };
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }
}

export async function startFakeTwilio(opts: FakeTwilioOptions = {}): Promise<FakeTwilio> {
  return new FakeTwilio(opts).listen();
}
