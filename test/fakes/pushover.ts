// A fake Pushover API on 127.0.0.1 (ephemeral port): POST /1/messages.json and
// GET /1/receipts/{receipt}.json, validated and answered the way api.pushover.net does.
//   - token and user are 30 characters [A-Za-z0-9] and must be registered (registerApp/registerUser);
//     a bad one answers 400 {token|user: "invalid", errors: [...], status: 0, request}
//   - message is required; message 1024, title 250, url 512, url_title 100 characters at most
//   - priority -2..2; priority 2 needs retry (>= 30) and expire (<= 10800) and gets a receipt
//   - device names must be devices of the user; sound must be a known sound; ttl/timestamp integers
//   - every messages answer carries X-Limit-App-Limit/-Remaining/-Reset; a send with no quota
//     left answers 429
//   - scriptable one-shot failures (failNext), per user key or for any request
//   - receipts: acknowledge()/expire() change their state; acknowledge() POSTs the callback URL

import { randomUUID, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const PUSHOVER_SOUNDS = [
  'pushover', 'bike', 'bugle', 'cashregister', 'classical', 'cosmic', 'falling', 'gamelan', 'incoming',
  'intermission', 'magic', 'mechanical', 'pianobar', 'siren', 'spacealarm', 'tugboat', 'alien', 'climb',
  'persistent', 'echo', 'updown', 'vibrate', 'none',
];

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The parsed form body (empty for GET). */
  form: Record<string, string>;
  /** Form fields given more than once. */
  repeated: string[];
  headers: IncomingHttpHeaders;
  at: number;
}

export interface ScriptedFailure {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** Only for sends to this user key (default: the next request of any user). */
  user?: string;
  /** Leave out the X-Limit-App-* headers (default: false for 4xx/429, true for 5xx). */
  noLimitHeaders?: boolean;
}

export interface FakeReceipt {
  id: string;
  user: string;
  token: string;
  callback: string | null;
  acknowledged: 0 | 1;
  acknowledgedAt: number;
  acknowledgedBy: string;
  acknowledgedByDevice: string;
  lastDeliveredAt: number;
  expiresAt: number;
  calledBack: 0 | 1;
  calledBackAt: number;
  forcedExpired: boolean;
}

export interface FakePushover {
  /** Base URL (no trailing slash), for ProviderCredentials.baseUrl. */
  url: string;
  requests: FakeRequest[];
  /** Successful messages, in order. */
  messages: Array<{ request: string; receipt?: string; form: Record<string, string> }>;
  receipts: Map<string, FakeReceipt>;
  limits: { limit: number; remaining: number; reset: number };
  registerApp(token: string): void;
  registerUser(user: string, devices?: string[]): void;
  failNext(f: ScriptedFailure): void;
  acknowledge(receipt: string, by?: { user?: string; device?: string; at?: number }): Promise<void>;
  expire(receipt: string): void;
  close(): Promise<void>;
}

const KEY = /^[A-Za-z0-9]{30}$/;
const DEVICE = /^[A-Za-z0-9_-]{1,25}$/;

/** A random key in Pushover's format (30 characters [A-Za-z0-9]). */
export function pushoverKey(prefix = ''): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = prefix;
  for (const b of randomBytes(30)) {
    if (s.length >= 30) break;
    s += alphabet[b % alphabet.length];
  }
  return s;
}

function chars(s: string): number {
  return Array.from(s).length;
}

export async function startFakePushover(): Promise<FakePushover> {
  const apps = new Set<string>();
  const users = new Map<string, string[]>();
  const failures: ScriptedFailure[] = [];
  const now = () => Math.floor(Date.now() / 1000);
  const nextMonth = () => {
    const d = new Date();
    return Math.floor(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000);
  };

  const fake: FakePushover = {
    url: '',
    requests: [],
    messages: [],
    receipts: new Map(),
    limits: { limit: 10_000, remaining: 10_000, reset: nextMonth() },
    registerApp: (token) => void apps.add(token),
    registerUser: (user, devices = ['iphone', 'pixel']) => void users.set(user, devices),
    failNext: (f) => void failures.push(f),
    async acknowledge(id, by = {}) {
      const r = fake.receipts.get(id);
      if (!r) throw new Error(`no receipt ${id}`);
      r.acknowledged = 1;
      r.acknowledgedAt = by.at ?? now();
      r.acknowledgedBy = by.user ?? r.user;
      r.acknowledgedByDevice = by.device ?? users.get(r.user)?.[0] ?? '';
      if (r.callback) {
        const body = new URLSearchParams({
          receipt: r.id,
          acknowledged: '1',
          acknowledged_at: String(r.acknowledgedAt),
          acknowledged_by: r.acknowledgedBy,
          acknowledged_by_device: r.acknowledgedByDevice,
        });
        const res = await fetch(r.callback, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
        await res.arrayBuffer();
        if (res.ok) {
          r.calledBack = 1;
          r.calledBackAt = now();
        }
      }
    },
    expire(id) {
      const r = fake.receipts.get(id);
      if (!r) throw new Error(`no receipt ${id}`);
      r.forcedExpired = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  const limitHeaders = (): Record<string, string> => ({
    'X-Limit-App-Limit': String(fake.limits.limit),
    'X-Limit-App-Remaining': String(fake.limits.remaining),
    'X-Limit-App-Reset': String(fake.limits.reset),
  });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const ctype = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const params = ctype === 'application/x-www-form-urlencoded' ? new URLSearchParams(raw) : new URLSearchParams();
      const form: Record<string, string> = {};
      const repeated: string[] = [];
      for (const [k, v] of params) {
        if (k in form) repeated.push(k);
        form[k] = v;
      }
      const r: FakeRequest = { method: req.method ?? 'GET', path: u.pathname, query: Object.fromEntries(u.searchParams), form, repeated, headers: req.headers, at: Date.now() };
      fake.requests.push(r);
      const request = randomUUID();
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': request, ...headers });
        res.end(text);
      };
      const invalid = (field: string, value: string, error: string, headers: Record<string, string> = {}) =>
        send(400, { [field]: value, errors: [error], status: 0, request }, headers);

      if (r.method === 'POST' && u.pathname === '/1/messages.json') {
        const i = failures.findIndex((f) => f.user === undefined || f.user === form.user);
        if (i >= 0) {
          const f = failures.splice(i, 1)[0]!;
          const withLimits = !(f.noLimitHeaders ?? f.status >= 500);
          const body = f.body ?? (f.status >= 500 ? '<html><body><h1>Service Unavailable</h1></body></html>' : { errors: ['scripted failure'], status: 0, request });
          const headers = { ...(withLimits ? limitHeaders() : {}), ...(f.headers ?? {}) };
          if (typeof body === 'string' && f.status >= 500) {
            res.writeHead(f.status, { 'content-type': 'text/html', ...headers });
            res.end(body);
            return;
          }
          send(f.status, body, headers);
          return;
        }
        const lh = limitHeaders();
        const token = form.token ?? '';
        if (!KEY.test(token) || !apps.has(token)) return invalid('token', 'invalid', 'application token is invalid, see https://pushover.net/api', lh);
        const user = form.user ?? '';
        if (!KEY.test(user) || !users.has(user)) {
          return invalid('user', 'invalid', 'user identifier is not a valid user, group, or subscribed user key, see https://pushover.net/api#identifiers', lh);
        }
        const message = form.message ?? '';
        if (!message.trim()) return invalid('message', 'cannot be blank', 'message cannot be blank', lh);
        if (chars(message) > 1024) return invalid('message', 'is too long', 'message cannot be longer than 1024 characters', lh);
        if (form.title !== undefined && chars(form.title) > 250) return invalid('title', 'is too long', 'title cannot be longer than 250 characters', lh);
        if (form.url !== undefined && chars(form.url) > 512) return invalid('url', 'is too long', 'url cannot be longer than 512 characters', lh);
        if (form.url_title !== undefined && chars(form.url_title) > 100) return invalid('url_title', 'is too long', 'url_title cannot be longer than 100 characters', lh);
        const priority = form.priority === undefined ? 0 : Number(form.priority);
        if (!/^-?\d+$/.test(form.priority ?? '0') || priority < -2 || priority > 2) return invalid('priority', 'is invalid', 'priority is invalid', lh);
        if (form.device !== undefined) {
          const devices = users.get(user)!;
          const names = form.device.split(',');
          if (names.some((d) => !DEVICE.test(d) || !devices.includes(d))) return invalid('device', 'invalid for this user', 'device name is not valid for user', lh);
        }
        if (form.sound !== undefined && !PUSHOVER_SOUNDS.includes(form.sound)) return invalid('sound', 'is invalid', 'sound is not a valid sound for this application', lh);
        if (form.html !== undefined && form.html !== '0' && form.html !== '1') return invalid('html', 'is invalid', 'html must be 0 or 1', lh);
        if (form.ttl !== undefined && !/^[1-9]\d*$/.test(form.ttl)) return invalid('ttl', 'is invalid', 'ttl must be a positive integer', lh);
        if (form.timestamp !== undefined && !/^\d+$/.test(form.timestamp)) return invalid('timestamp', 'is invalid', 'timestamp is invalid', lh);
        let receipt: string | undefined;
        if (priority === 2) {
          if (form.retry === undefined) return invalid('retry', 'must be supplied with priority=2', 'retry must be supplied with priority=2', lh);
          if (form.expire === undefined) return invalid('expire', 'must be supplied with priority=2', 'expire must be supplied with priority=2', lh);
          const retry = Number(form.retry);
          const expire = Number(form.expire);
          if (!/^\d+$/.test(form.retry) || retry < 30) return invalid('retry', 'is too small', 'retry must be at least 30 seconds', lh);
          if (!/^\d+$/.test(form.expire) || expire > 10800) return invalid('expire', 'is too large', 'expire must be at most 10800 seconds', lh);
          if (form.callback !== undefined && !/^https?:\/\/\S+$/.test(form.callback)) return invalid('callback', 'is invalid', 'callback must be an http or https URL', lh);
          receipt = pushoverKey();
          fake.receipts.set(receipt, {
            id: receipt,
            user,
            token,
            callback: form.callback ?? null,
            acknowledged: 0,
            acknowledgedAt: 0,
            acknowledgedBy: '',
            acknowledgedByDevice: '',
            lastDeliveredAt: now(),
            expiresAt: now() + expire,
            calledBack: 0,
            calledBackAt: 0,
            forcedExpired: false,
          });
        }
        if (fake.limits.remaining <= 0) {
          return send(429, { errors: ['application is over its message limit, see https://pushover.net/api#limits'], status: 0, request }, lh);
        }
        fake.limits.remaining -= 1;
        fake.messages.push({ request, ...(receipt ? { receipt } : {}), form });
        return send(200, receipt ? { status: 1, request, receipt } : { status: 1, request }, limitHeaders());
      }

      const m = /^\/1\/receipts\/([^/]+)\.json$/.exec(u.pathname);
      if (r.method === 'GET' && m) {
        const token = u.searchParams.get('token') ?? '';
        if (!KEY.test(token) || !apps.has(token)) return invalid('token', 'invalid', 'application token is invalid, see https://pushover.net/api');
        const rc = fake.receipts.get(m[1]!);
        if (!rc || rc.token !== token) return invalid('receipt', 'not found', 'receipt not found; may be invalid or expired');
        const expired = rc.forcedExpired || now() >= rc.expiresAt ? 1 : 0;
        return send(200, {
          status: 1,
          acknowledged: rc.acknowledged,
          acknowledged_at: rc.acknowledgedAt,
          acknowledged_by: rc.acknowledgedBy,
          acknowledged_by_device: rc.acknowledgedByDevice,
          last_delivered_at: rc.lastDeliveredAt,
          expired,
          expires_at: rc.forcedExpired ? Math.min(rc.expiresAt, now()) : rc.expiresAt,
          called_back: rc.calledBack,
          called_back_at: rc.calledBackAt,
          request,
        });
      }
      send(404, { errors: ['not found'], status: 0, request });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
