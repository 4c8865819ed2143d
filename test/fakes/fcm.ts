// A fake Firebase Cloud Messaging backend on 127.0.0.1: Google's OAuth 2.0 token endpoint for
// service accounts and the FCM HTTP v1 messages:send endpoint, validating requests the way Google
// does and answering with Google's success and error bodies.
//   POST /token                                  form-encoded JWT-bearer grant; the RS256 assertion is
//                                                verified against the service account's public key
//                                                (node:crypto, independently of jose), with its iss, aud,
//                                                scope, iat and exp; answers {access_token, expires_in, token_type}
//   POST /v1/projects/{project}/messages:send    needs a Bearer token this fake issued and has not revoked
//                                                or seen expire, the project, a well-formed message (exactly one
//                                                of token/topic/condition, string data values, no reserved data
//                                                keys, known fields), payload <= 4096 bytes (2048 for topics);
//                                                answers 200 {name} or a scripted error per registration token.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify, type KeyObject } from 'node:crypto';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

const fcmError = (code: number, status: string, message: string, errorCode?: string, extra: unknown[] = []): Answer => ({
  status: code,
  body: {
    error: {
      code,
      message,
      status,
      ...(errorCode || extra.length ? { details: [...(errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : []), ...extra] } : {}),
    },
  },
});

const QUOTA_MESSAGE = "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com' for consumer 'project_number:1234'.";

const badRequest = (field: string, description: string) => ({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description }] });

/** FCM's error answers (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode). */
export const fcmErrors = {
  unregistered: () => fcmError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'),
  /** An invalid token, as a BadRequest field violation on message.token. */
  invalidTokenField: () =>
    fcmError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', 'INVALID_ARGUMENT', [badRequest('message.token', 'Invalid registration token')]),
  /** An invalid token, said only in the message (the documented example). */
  invalidTokenMessage: () => fcmError(400, 'INVALID_ARGUMENT', 'The registration token is not a valid FCM registration token', 'INVALID_ARGUMENT'),
  invalidArgument: (field: string, description: string) => fcmError(400, 'INVALID_ARGUMENT', description, 'INVALID_ARGUMENT', [badRequest(field, description)]),
  senderIdMismatch: () => fcmError(403, 'PERMISSION_DENIED', 'SenderId mismatch', 'SENDER_ID_MISMATCH'),
  thirdPartyAuth: () => fcmError(401, 'UNAUTHENTICATED', 'Auth error from APNS or Web Push Service', 'THIRD_PARTY_AUTH_ERROR'),
  quotaExceeded: (retryAfter?: string): Answer => ({
    ...fcmError(429, 'RESOURCE_EXHAUSTED', QUOTA_MESSAGE, 'QUOTA_EXCEEDED'),
    ...(retryAfter ? { headers: { 'retry-after': retryAfter } } : {}),
  }),
  /** The project quota as observed (firebase/firebase-admin-go#719): an ErrorInfo, no FcmError. */
  rateLimitExceeded: (): Answer =>
    fcmError(429, 'RESOURCE_EXHAUSTED', QUOTA_MESSAGE, undefined, [
      { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'RATE_LIMIT_EXCEEDED', domain: 'googleapis.com', metadata: { quota_metric: 'fcm.googleapis.com/send_requests', quota_limit: 'SendsPerMinutePerProject' } },
    ]),
  unavailable: (retryAfter?: string): Answer => ({
    ...fcmError(503, 'UNAVAILABLE', 'The service is currently unavailable.', 'UNAVAILABLE'),
    ...(retryAfter ? { headers: { 'retry-after': retryAfter } } : {}),
  }),
  internal: (retryAfter?: string): Answer => ({
    ...fcmError(500, 'INTERNAL', 'Internal error encountered.', 'INTERNAL'),
    ...(retryAfter ? { headers: { 'retry-after': retryAfter } } : {}),
  }),
  unauthenticated: () =>
    fcmError(
      401,
      'UNAUTHENTICATED',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    ),
  permissionDenied: (project: string) =>
    fcmError(403, 'PERMISSION_DENIED', `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`),
  payloadTooLarge: () => fcmError(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.'),
};

const tokenError = (error: string, description: string, status = 400): Answer => ({ status, body: { error, error_description: description } });

export interface ReceivedSend {
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** What the fake answered. */
  status: number;
}

export interface FakeFcmOptions {
  projectId: string;
  clientEmail: string;
  /** The service account's public key: only assertions it verifies get a token. */
  publicKey: KeyObject;
  /** Seconds in each token answer (Google answers 3599). */
  expiresIn?: number;
  /** Milliseconds since the epoch; share it with the channel under test to move time. */
  now?: () => number;
}

export interface FakeFcm {
  url: string;
  tokenUri: string;
  /** Token requests received, valid or not. */
  tokenRequests: number;
  /** Access tokens issued, in order. */
  issued: string[];
  /** The claims of every verified assertion. */
  assertions: Record<string, unknown>[];
  /** Every messages:send request, accepted or not. */
  sends: ReceivedSend[];
  /** Answers sends to `registrationToken` with `answer` (a function receives the 1-based count of sends to it). */
  script(registrationToken: string, answer: Answer | ((n: number) => Answer)): void;
  /** Answers the next token requests with `answer` instead of checking them, until called with null. */
  scriptToken(answer: Answer | null): void;
  /** Holds token answers until the returned function is called. */
  holdTokens(): () => void;
  /** Makes FCM refuse an issued access token (401 UNAUTHENTICATED). */
  revoke(accessToken: string): void;
  /** The payload size FCM limits, computed the way FCM counts it. */
  payloadBytes(message: any): number;
  close(): Promise<void>;
}

const MESSAGE_FIELDS = new Set(['name', 'token', 'topic', 'condition', 'data', 'notification', 'android', 'apns', 'webpush', 'fcm_options']);
const NOTIFICATION_FIELDS = new Set(['title', 'body', 'image']);
const ANDROID_FIELDS = new Set(['collapse_key', 'priority', 'ttl', 'restricted_package_name', 'data', 'notification', 'fcm_options', 'direct_boot_ok']);
const ANDROID_NOTIFICATION_FIELDS = new Set(['title', 'body', 'icon', 'color', 'sound', 'tag', 'click_action', 'channel_id', 'image', 'notification_priority', 'visibility', 'notification_count']);

export async function startFakeFcm(opts: FakeFcmOptions): Promise<FakeFcm> {
  const now = opts.now ?? Date.now;
  const expiresIn = opts.expiresIn ?? 3599;
  const tokens = new Map<string, { expiresAt: number; revoked: boolean }>();
  const scripts = new Map<string, Answer | ((n: number) => Answer)>();
  const sendCounts = new Map<string, number>();
  let tokenScript: Answer | null = null;
  let hold: Promise<void> | null = null;
  let seq = 0;

  const fake: FakeFcm = {
    url: '',
    tokenUri: '',
    tokenRequests: 0,
    issued: [],
    assertions: [],
    sends: [],
    script: (t, a) => void scripts.set(t, a),
    scriptToken: (a) => void (tokenScript = a),
    holdTokens() {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return () => {
        hold = null;
        release();
      };
    },
    revoke(t) {
      const entry = tokens.get(t);
      if (entry) entry.revoked = true;
    },
    payloadBytes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };

  async function onToken(req: IncomingMessage, raw: string): Promise<Answer> {
    fake.tokenRequests++;
    if (hold) await hold;
    if (tokenScript) return tokenScript;
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return tokenError('invalid_request', 'Invalid Content-Type');
    const form = new URLSearchParams(raw);
    if (form.get('grant_type') !== JWT_BEARER) return tokenError('unsupported_grant_type', `Invalid grant_type: ${form.get('grant_type') ?? ''}`);
    const assertion = form.get('assertion') ?? '';
    const parts = assertion.split('.');
    if (parts.length !== 3) return tokenError('invalid_grant', 'Invalid JWT: not a JWT');
    const [h, p, s] = parts as [string, string, string];
    let header: any;
    let claims: any;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    } catch {
      return tokenError('invalid_grant', 'Invalid JWT: unparseable');
    }
    if (header.alg !== 'RS256') return tokenError('invalid_grant', 'Invalid JWT: alg must be RS256');
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), opts.publicKey, Buffer.from(s, 'base64url'))) return tokenError('invalid_grant', 'Invalid JWT Signature.');
    if (claims.iss !== opts.clientEmail) return tokenError('invalid_grant', 'Invalid grant: account not found');
    if (claims.aud !== fake.tokenUri) return tokenError('invalid_grant', 'Invalid JWT: Failed audience check.');
    const nowSec = Math.floor(now() / 1000);
    const short = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
    if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp)) return tokenError('invalid_grant', short);
    if (claims.exp - claims.iat > 3600 || claims.exp <= nowSec || claims.iat > nowSec + 60 || claims.exp <= claims.iat) return tokenError('invalid_grant', short);
    if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(FCM_SCOPE)) return tokenError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    fake.assertions.push(claims);
    const accessToken = `ya29.fake-${++seq}-${Math.random().toString(36).slice(2)}`;
    tokens.set(accessToken, { expiresAt: now() + expiresIn * 1000, revoked: false });
    fake.issued.push(accessToken);
    return { status: 200, body: { access_token: accessToken, expires_in: expiresIn, token_type: 'Bearer' } };
  }

  function onSend(req: IncomingMessage, project: string, raw: string): Answer {
    const auth = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const entry = auth ? tokens.get(auth) : undefined;
    if (!entry || entry.revoked || entry.expiresAt <= now()) return fcmErrors.unauthenticated();
    if (project !== opts.projectId) return fcmErrors.permissionDenied(project);
    if (!String(req.headers['content-type']).startsWith('application/json')) return fcmErrors.invalidArgument('', 'Invalid JSON payload received.');
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      return fcmErrors.invalidArgument('', 'Invalid JSON payload received. Unexpected token.');
    }
    const unknown = (where: string, obj: any, allowed: Set<string>) => Object.keys(obj).find((k) => !allowed.has(k)) && `Invalid JSON payload received. Unknown name "${Object.keys(obj).find((k) => !allowed.has(k))}" at '${where}': Cannot find field.`;
    if (typeof body !== 'object' || body === null) return fcmErrors.invalidArgument('', 'Invalid JSON payload received.');
    const topUnknown = unknown('', body, new Set(['message', 'validate_only']));
    if (topUnknown) return fcmErrors.invalidArgument('', topUnknown);
    const m = body.message;
    if (typeof m !== 'object' || m === null) return fcmErrors.invalidArgument('message', 'Recipient of the message is not set.');
    const bad =
      unknown('message', m, MESSAGE_FIELDS) ||
      (m.notification && unknown('message.notification', m.notification, NOTIFICATION_FIELDS)) ||
      (m.android && unknown('message.android', m.android, ANDROID_FIELDS)) ||
      (m.android?.notification && unknown('message.android.notification', m.android.notification, ANDROID_NOTIFICATION_FIELDS));
    if (bad) return fcmErrors.invalidArgument('message', bad);
    const targets = ['token', 'topic', 'condition'].filter((k) => m[k] !== undefined);
    if (targets.length === 0) return fcmErrors.invalidArgument('message', 'Recipient of the message is not set.');
    if (targets.length > 1) return fcmErrors.invalidArgument('message', `Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set '${targets[1]}'`);
    for (const [where, obj] of [['message.data', m.data], ['message.android.data', m.android?.data]] as const) {
      if (obj === undefined) continue;
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fcmErrors.invalidArgument(where, `Invalid value at '${where}' (type.googleapis.com/google.protobuf.Struct)`);
      const entries = Object.entries(obj);
      const i = entries.findIndex(([, v]) => typeof v !== 'string');
      if (i >= 0) return fcmErrors.invalidArgument(`${where}[${i}].value`, `Invalid value at '${where}[${i}].value' (TYPE_STRING), ${JSON.stringify(entries[i]![1])}`);
      const reserved = entries.find(([k]) => /^(?:from|message_type)$/.test(k) || /^(?:google|gcm)/i.test(k));
      if (reserved) return fcmErrors.invalidArgument(where, `Invalid data payload key: ${reserved[0]}`);
    }
    for (const k of ['title', 'body', 'image']) {
      if (m.notification?.[k] !== undefined && typeof m.notification[k] !== 'string') return fcmErrors.invalidArgument(`message.notification.${k}`, `Invalid value at 'message.notification.${k}' (TYPE_STRING)`);
    }
    if (m.android?.priority !== undefined && !['high', 'normal', 'HIGH', 'NORMAL'].includes(m.android.priority)) {
      return fcmErrors.invalidArgument('message.android.priority', `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "${m.android.priority}"`);
    }
    if (m.android?.ttl !== undefined && !(typeof m.android.ttl === 'string' && /^\d+(\.\d{1,9})?s$/.test(m.android.ttl))) {
      return fcmErrors.invalidArgument('message.android.ttl', `Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(m.android.ttl)}`);
    }
    for (const [where, headers] of [['message.apns.headers', m.apns?.headers], ['message.webpush.headers', m.webpush?.headers]] as const) {
      if (headers !== undefined && Object.values(headers).some((v) => typeof v !== 'string')) return fcmErrors.invalidArgument(where, `Invalid value at '${where}' (TYPE_STRING)`);
    }
    if (payloadBytes(m) > (m.topic !== undefined ? 2048 : 4096)) return fcmErrors.payloadTooLarge();
    if (m.token !== undefined) {
      const token = String(m.token);
      const n = (sendCounts.get(token) ?? 0) + 1;
      sendCounts.set(token, n);
      const scripted = scripts.get(token);
      if (scripted) return typeof scripted === 'function' ? scripted(n) : scripted;
    }
    return { status: 200, body: { name: `projects/${opts.projectId}/messages/0:${now()}%${(++seq).toString(16)}` } };
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0]!;
      const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path);
      const answered = (a: Answer, record?: (status: number) => void) => {
        record?.(a.status);
        const json = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
        res.writeHead(a.status, { 'content-type': 'application/json; charset=UTF-8', ...a.headers });
        res.end(json);
      };
      if (req.method === 'POST' && path === '/token') {
        onToken(req, raw).then((a) => answered(a), () => answered({ status: 500, body: { error: 'internal_failure' } }));
        return;
      }
      if (req.method === 'POST' && send) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          parsed = raw;
        }
        const project = decodeURIComponent(send[1]!);
        answered(onSend(req, project, raw), (status) => fake.sends.push({ path, headers: req.headers, body: parsed, status }));
        return;
      }
      answered({ status: 404, body: { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.tokenUri = `${fake.url}/token`;
  return fake;
}

/**
 * FCM's payload measure: data keys and values, plus each notification field counted as
 * "gcm.notification.<key>" and its value (android.notification.channel_id as android_channel_id).
 */
function payloadBytes(m: any): number {
  const b = (s: string) => Buffer.byteLength(s, 'utf8');
  let n = 0;
  for (const [k, v] of Object.entries(m.data ?? {})) n += b(k) + b(String(v));
  for (const [k, v] of Object.entries(m.notification ?? {})) n += b(`gcm.notification.${k}`) + b(String(v));
  if (m.android?.notification?.channel_id !== undefined) n += b('gcm.notification.android_channel_id') + b(String(m.android.notification.channel_id));
  return n;
}
