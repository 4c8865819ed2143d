// Fake Slack incoming-webhook and Discord Execute Webhook servers: real HTTP servers on 127.0.0.1
// (ephemeral port) that check requests the way the vendors do and answer with their bodies and codes.
//
// Slack   POST /services/{T…}/{B…}/{secret}, application/json. Needs text or blocks (else 400
//         no_text); bad JSON or content type 400 invalid_payload; Block Kit limits (header plain_text
//         1..150, section text 1..3000, button text 1..75 and url <= 3000, <= 50 blocks) 400
//         invalid_blocks. Success: 200 "ok" (text/html). Paths not of that shape: 404 no_service.
// Discord POST /api[/v{n}]/webhooks/{id}/{token}[?wait=true&thread_id=]. Unknown id: 404 {code 10015};
//         wrong token: 401 {code 50027}; not JSON: 400 {code 50006} (Discord then sees no content);
//         bad JSON: 400 {code 50109}; neither content nor embeds: 400 {code 50006}; field limits
//         (content 2000, 10 embeds, title 256, description 4096, embed total 6000, url, timestamp,
//         color, username 1..80 without "discord"/"clyde", allowed_mentions.parse values): 400
//         {code 50035, "Invalid Form Body", errors: {…{_errors: [{code, message}]}}}.
//         Success: 200 with the message object when wait=true, else 204.
// Both: per-webhook persistent states (archived channel, revoked token, deleted webhook…) and one-shot
// scripted replies (429 with Retry-After / retry_after, 500, a reply that never comes); every request
// is recorded with the status it got.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeReply {
  status: number;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (until the server closes): for timeouts without timing luck. */
  hang?: boolean;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  raw: string;
  /** The parsed JSON body, or undefined when it is not JSON. */
  json: any;
  /** The status the fake answered (0 for a hang). */
  status: number;
}

abstract class FakeServer {
  readonly received: ReceivedRequest[] = [];
  base = '';
  protected readonly scripted = new Map<string, FakeReply[]>();
  #server: Server | undefined;

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const raw = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch {
          json = undefined;
        }
        const r: ReceivedRequest = { method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, raw, json, status: 0 };
        this.received.push(r);
        const queue = this.scripted.get(url.pathname.replace(/\/$/, ''));
        const reply = queue?.shift() ?? this.handle(r);
        if (reply.hang) return;
        r.status = reply.status;
        send(res, reply, this.contentType);
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Replies used, in order, for the next requests to this webhook (before any validation). */
  script(webhookUrl: string, ...replies: FakeReply[]): void {
    const path = new URL(webhookUrl).pathname.replace(/\/$/, '');
    this.scripted.set(path, [...(this.scripted.get(path) ?? []), ...replies]);
  }

  /** Requests received for one webhook. */
  requestsTo(webhookUrl: string): ReceivedRequest[] {
    const path = new URL(webhookUrl).pathname.replace(/\/$/, '');
    return this.received.filter((r) => r.path.replace(/\/$/, '') === path);
  }

  close(): Promise<void> {
    const server = this.#server;
    if (!server) return Promise.resolve();
    return new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  }

  protected abstract readonly contentType: string;
  protected abstract handle(r: ReceivedRequest): FakeReply;
}

function send(res: ServerResponse, reply: FakeReply, contentType: string): void {
  const body = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  const headers: Record<string, string> = { ...reply.headers };
  if (body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = typeof reply.body === 'string' ? contentType : 'application/json';
  res.writeHead(reply.status, headers);
  res.end(body);
}

const isObject = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v);
const isHttpUrl = (v: unknown): boolean => {
  if (typeof v !== 'string') return false;
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------- Slack

/** Slack's incoming-webhook error strings and the status each comes with. */
export const SLACK_ERRORS = {
  invalid_payload: 400,
  no_text: 400,
  invalid_blocks: 400,
  user_not_found: 400,
  too_many_attachments: 400,
  no_service_id: 400,
  action_prohibited: 403,
  posting_to_general_channel_denied: 403,
  invalid_token: 403,
  team_disabled: 403,
  no_team: 404,
  channel_not_found: 404,
  no_service: 404,
  channel_is_archived: 410,
  rollup_error: 500,
} as const;
export type SlackError = keyof typeof SLACK_ERRORS;

const SLACK_PATH = /^\/services\/(T[A-Z0-9]+)\/(B[A-Z0-9]+)\/([A-Za-z0-9]+)$/;

export class FakeSlack extends FakeServer {
  protected readonly contentType = 'text/html';
  readonly #state = new Map<string, SlackError>();
  #n = 0;

  /** A new webhook URL that works until given a state. */
  newWebhook(): string {
    this.#n++;
    return `${this.base}/services/T0${this.#n}HERALD/B0${this.#n}HOOK/${randomBytes(12).toString('hex')}`;
  }

  /** From now on this webhook answers Slack's `error` (e.g. channel_is_archived, invalid_token). */
  setState(webhookUrl: string, error: SlackError): void {
    this.#state.set(new URL(webhookUrl).pathname, error);
  }

  /** The next request to this webhook gets 429 with Retry-After: `seconds`. */
  rateLimit(webhookUrl: string, seconds: number): void {
    this.script(webhookUrl, { status: 429, headers: { 'retry-after': String(seconds) }, body: 'rate_limited' });
  }

  protected handle(r: ReceivedRequest): FakeReply {
    const err = (e: SlackError): FakeReply => ({ status: SLACK_ERRORS[e], body: e });
    if (!SLACK_PATH.test(r.path)) return err('no_service');
    if (r.method !== 'POST') return { status: 405, body: 'invalid_method' };
    const state = this.#state.get(r.path);
    if (state) return err(state);
    if (!String(r.headers['content-type'] ?? '').startsWith('application/json') || !isObject(r.json)) return err('invalid_payload');
    const { text, blocks, attachments } = r.json;
    if (text !== undefined && typeof text !== 'string') return err('invalid_payload');
    if (blocks !== undefined && (!Array.isArray(blocks) || !blocks.every(validSlackBlock) || blocks.length > 50)) return err('invalid_blocks');
    if (!text && !(Array.isArray(blocks) && blocks.length) && !(Array.isArray(attachments) && attachments.length)) return err('no_text');
    if (text && text.length > 40_000) return err('invalid_payload');
    return { status: 200, body: 'ok' };
  }
}

function validText(t: unknown, types: string[], max: number): boolean {
  return isObject(t) && types.includes(t.type) && typeof t.text === 'string' && t.text.length >= 1 && t.text.length <= max;
}

function validSlackBlock(b: unknown): boolean {
  if (!isObject(b)) return false;
  if (b.block_id !== undefined && (typeof b.block_id !== 'string' || b.block_id.length > 255)) return false;
  switch (b.type) {
    case 'header':
      return validText(b.text, ['plain_text'], 150);
    case 'section':
      return validText(b.text, ['plain_text', 'mrkdwn'], 3000) || (Array.isArray(b.fields) && b.fields.length <= 10 && b.fields.every((f: unknown) => validText(f, ['plain_text', 'mrkdwn'], 2000)));
    case 'divider':
      return true;
    case 'context':
      return Array.isArray(b.elements) && b.elements.length >= 1 && b.elements.length <= 10;
    case 'actions':
      return (
        Array.isArray(b.elements) &&
        b.elements.length >= 1 &&
        b.elements.length <= 25 &&
        b.elements.every(
          (e: unknown) =>
            isObject(e) &&
            e.type === 'button' &&
            validText(e.text, ['plain_text'], 75) &&
            (e.url === undefined || (isHttpUrl(e.url) && e.url.length <= 3000)) &&
            (e.action_id === undefined || (typeof e.action_id === 'string' && e.action_id.length <= 255)),
        )
      );
    default:
      return false;
  }
}

export async function startFakeSlack(): Promise<FakeSlack> {
  return new FakeSlack().start();
}

// -------------------------------------------------------------------------------------------- Discord

export interface FakeDiscordWebhook {
  id: string;
  token: string;
  channelId: string;
  url: string;
}

const DISCORD_PATH = /^\/api(?:\/v\d+)?\/webhooks\/([^/]+)\/([^/]+)\/?$/;

let snowflakeSeq = 0;
function snowflake(): string {
  return String(((BigInt(Date.now()) - 1420070400000n) << 22n) | BigInt(snowflakeSeq++ & 0xfff));
}

export class FakeDiscord extends FakeServer {
  protected readonly contentType = 'application/json';
  readonly #hooks = new Map<string, FakeDiscordWebhook>();

  createWebhook(): FakeDiscordWebhook {
    const id = snowflake();
    const hook = { id, token: randomBytes(34).toString('base64url'), channelId: snowflake(), url: '' };
    hook.url = `${this.base}/api/webhooks/${id}/${hook.token}`;
    this.#hooks.set(id, hook);
    return hook;
  }

  deleteWebhook(id: string): void {
    this.#hooks.delete(id);
  }

  /** The next request to this webhook gets Discord's 429. */
  rateLimit(webhookUrl: string, retryAfterSeconds: number, opts: { global?: boolean } = {}): void {
    this.script(webhookUrl, {
      status: 429,
      headers: {
        'retry-after': String(Math.ceil(retryAfterSeconds)),
        'x-ratelimit-limit': '5',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset-after': String(retryAfterSeconds),
        'x-ratelimit-scope': opts.global ? 'global' : 'shared',
        ...(opts.global ? { 'x-ratelimit-global': 'true' } : {}),
      },
      body: { message: 'You are being rate limited.', retry_after: retryAfterSeconds, global: !!opts.global },
    });
  }

  protected handle(r: ReceivedRequest): FakeReply {
    const m = DISCORD_PATH.exec(r.path);
    if (!m) return { status: 404, body: { message: '404: Not Found', code: 0 } };
    if (r.method !== 'POST') return { status: 405, body: { message: '405: Method Not Allowed', code: 0 } };
    const hook = this.#hooks.get(m[1]!);
    if (!hook) return { status: 404, body: { message: 'Unknown Webhook', code: 10015 } };
    if (hook.token !== m[2]) return { status: 401, body: { message: 'Invalid Webhook Token', code: 50027 } };
    const empty: FakeReply = { status: 400, body: { message: 'Cannot send an empty message', code: 50006 } };
    if (!String(r.headers['content-type'] ?? '').startsWith('application/json')) return empty;
    if (r.json === undefined) return { status: 400, body: { message: 'The request body contains invalid JSON.', code: 50109 } };
    if (!isObject(r.json)) return formError({ _errors: [{ code: 'DICT_TYPE_CONVERT', message: 'Only dictionaries may be used in a DictType' }] });
    const errors = validateDiscordMessage(r.json);
    if (errors) return formError(errors);
    const p = r.json;
    const hasContent = typeof p.content === 'string' && p.content.trim() !== '';
    const embeds: Record<string, any>[] = Array.isArray(p.embeds) ? p.embeds : [];
    if (!hasContent && !embeds.some((e) => e.title || e.description || e.fields?.length || e.image || e.author || e.footer)) return empty;
    if (r.query.wait !== 'true') return { status: 204 };
    const id = snowflake();
    return {
      status: 200,
      body: {
        type: 0,
        content: p.content ?? '',
        mentions: [],
        mention_roles: [],
        attachments: [],
        embeds: embeds.map((e) => ({ type: 'rich', ...e, timestamp: e.timestamp ? new Date(e.timestamp).toISOString().replace('Z', '+00:00') : undefined })),
        timestamp: new Date().toISOString().replace('Z', '+00:00'),
        edited_timestamp: null,
        flags: 0,
        components: [],
        id,
        channel_id: r.query.thread_id ?? hook.channelId,
        author: { id: hook.id, username: p.username ?? 'Captain Hook', avatar: null, discriminator: '0000', public_flags: 0, flags: 0, bot: true, global_name: null },
        pinned: false,
        mention_everyone: false,
        tts: false,
        webhook_id: hook.id,
      },
    };
  }
}

function formError(errors: Record<string, unknown>): FakeReply {
  return { status: 400, body: { message: 'Invalid Form Body', code: 50035, errors } };
}

/** Discord's field checks; the error tree has Discord's shape ({field: {_errors: [{code, message}]}}). */
function validateDiscordMessage(p: Record<string, any>): Record<string, unknown> | undefined {
  const errors: Record<string, any> = {};
  const fail = (path: (string | number)[], code: string, message: string) => {
    let node = errors;
    for (const k of path) node = node[k] ??= {};
    (node._errors ??= []).push({ code, message });
  };
  const maxLen = (v: unknown, max: number, path: (string | number)[]) => {
    if (v === undefined || v === null) return;
    if (typeof v !== 'string') fail(path, 'BASE_TYPE_STRING', 'Must be a string.');
    else if (v.length > max) fail(path, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
  };
  maxLen(p.content, 2000, ['content']);
  if (p.username !== undefined) {
    maxLen(p.username, 80, ['username']);
    if (typeof p.username === 'string' && (p.username.length < 1 || /discord|clyde/i.test(p.username))) fail(['username'], 'USERNAME_INVALID', 'Username cannot contain "discord" or "clyde" and must be 1 to 80 characters.');
  }
  if (p.avatar_url !== undefined && !isHttpUrl(p.avatar_url)) fail(['avatar_url'], 'URL_TYPE_INVALID_URL', 'Not a well formed URL.');
  if (p.allowed_mentions !== undefined) {
    const parse = p.allowed_mentions?.parse;
    if (parse !== undefined && (!Array.isArray(parse) || parse.some((x: unknown) => !['roles', 'users', 'everyone'].includes(x as string)))) {
      fail(['allowed_mentions', 'parse'], 'BASE_TYPE_CHOICES', "Value must be one of ('roles', 'users', 'everyone').");
    }
  }
  if (p.embeds !== undefined) {
    if (!Array.isArray(p.embeds)) fail(['embeds'], 'BASE_TYPE_ARRAY', 'Must be an array.');
    else if (p.embeds.length > 10) fail(['embeds'], 'BASE_TYPE_MAX_LENGTH', 'Must be 10 or fewer in length.');
    else {
      let total = 0;
      p.embeds.forEach((e: unknown, i: number) => {
        if (!isObject(e)) return fail(['embeds', i], 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
        maxLen(e.title, 256, ['embeds', i, 'title']);
        maxLen(e.description, 4096, ['embeds', i, 'description']);
        if (e.url !== undefined && !isHttpUrl(e.url)) fail(['embeds', i, 'url'], 'URL_TYPE_INVALID_URL', 'Not a well formed URL.');
        if (e.timestamp !== undefined && (typeof e.timestamp !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(e.timestamp))) {
          fail(['embeds', i, 'timestamp'], 'DATE_TIME_TYPE_PARSE', 'Could not parse timestamp. Should be ISO8601.');
        }
        if (e.color !== undefined && !(Number.isInteger(e.color) && e.color >= 0 && e.color <= 0xffffff)) fail(['embeds', i, 'color'], 'NUMBER_TYPE_MAX', 'int value should be <= 16777215 and >= 0.');
        total += [e.title, e.description, e.footer?.text, e.author?.name].reduce((n: number, s: unknown) => n + (typeof s === 'string' ? s.length : 0), 0);
        for (const f of Array.isArray(e.fields) ? e.fields : []) total += String(f?.name ?? '').length + String(f?.value ?? '').length;
      });
      if (total > 6000) fail(['embeds'], 'MAX_EMBED_SIZE_EXCEEDED', 'Embed size exceeds maximum size of 6000');
    }
  }
  return Object.keys(errors).length ? errors : undefined;
}

export async function startFakeDiscord(): Promise<FakeDiscord> {
  return new FakeDiscord().start();
}
