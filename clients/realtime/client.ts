// Herald's real-time client (docs/realtime.md, "The TypeScript client"): one WebSocket to
// `GET /v1/realtime` plus the recipient's inbox over `/v1/me/inbox`. Runs in browsers and in
// Node 24 (its global WebSocket and fetch); it imports nothing, so Herald serves it to browsers
// with its types stripped (src/http/client-script.ts).
//
// Connection state machine:
//   idle --connect()--> connecting --welcome--> open --close/error--> waiting --delay--> connecting
//   any --close()--> closed (final)
//   connecting|open --close 4001/4003, or 4002 with a fixed token--> closed (the token cannot work)
// The token is sent in the first frame (`auth`), never in the URL. A token callback is asked for a
// token before every connection and before the current one expires (then sent as `refresh`).
//
// Reconnects wait min(maxDelay, initialDelay * 2^attempt) scaled by a random factor in [0.5, 1)
// (jitter, so a restarted node is not hit by every client at once); the attempt count resets on
// `welcome`.
//
// Recovery: the client remembers the last {offset, epoch} it saw per channel and resubscribes with
// `since` after a reconnect. `subscribed {recovered: true}` is followed by the missed publications
// (delivered as ordinary events); `recovered: false` after a `since` emits `resync {channel}`: the
// app re-reads over REST what it shows (for `inbox`, `inbox.list()`). A publication at or below
// the remembered offset of the same epoch is a duplicate and is dropped.

export interface InboxItem {
  id: string;
  notification_id: string | null;
  kind: string | null;
  title: string | null;
  body: string | null;
  data: unknown;
  action_url: string | null;
  status: 'unseen' | 'seen' | 'read' | 'archived';
  created_at: string;
  seen_at: string | null;
  read_at: string | null;
  archived_at: string | null;
}

export interface Position {
  offset: number;
  epoch: string;
}

/** Events, by name, with what their listeners receive. */
export interface RealtimeEvents {
  /** Authenticated (`welcome`); after every (re)connect. */
  open: { session: string; recipient: string | null; organization: string; expires_at: string };
  /** The socket closed; `reconnectIn` is the delay before the next attempt, null when final. */
  close: { code: number; reason: string; reconnectIn: number | null };
  subscribed: { channel: string; offset: number; epoch: string; recovered: boolean };
  /** A `since` could not be honoured: what was missed on `channel` is gone; re-read it over REST. */
  resync: { channel: string };
  publication: { channel: string; offset: number; epoch: string; data: unknown };
  'inbox.item': { item: InboxItem };
  'inbox.unread': { unread: number };
  'inbox.marked': { ids: string[]; state: string; changed: number };
  /** A direct message (to this recipient, or an echo of one it sent from another session). */
  message: { id?: string; from?: string; to?: string; body: string; client_id?: string; created_at?: string; [k: string]: unknown };
  /** The server stored a direct message sent with this `client_id`. */
  ack: { client_id: string; [k: string]: unknown };
  /** `from` is typing to this recipient (`to`) or in `room`. */
  typing: { from: string; to?: string; room?: string; active: boolean };
  /** Online states of the ids asked with presence(): all of them first, then each change. */
  presence: { online: Record<string, boolean> };
  /** An `error` frame, or a failure of the client itself (`code: 'client'`). */
  error: { code: string; message: string };
}

export type TokenSource = string | (() => string | Promise<string>);

export interface RealtimeOptions {
  /** Herald's base URL, e.g. https://herald.example.com */
  url: string;
  /** A connection token, or a function returning a fresh one (called before every connection and before expiry). */
  token: TokenSource;
  /** Channels to subscribe to on every connection (`inbox`, `room:<name>`). */
  channels?: string[];
  /** First reconnect delay in ms (default 500). */
  initialDelay?: number;
  /** Largest reconnect delay in ms (default 30000). */
  maxDelay?: number;
  /** A `ping` frame when nothing was heard for this long; no answer by the next one: reconnect (ms, default 30000; 0: off). */
  pingInterval?: number;
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket;
}

export class HeraldError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Close codes after which reconnecting with the same token cannot succeed. */
const TOKEN_REFUSED = new Set([4001, 4003]);
const TOKEN_EXPIRED = 4002;
/** Refresh a callback's token this long before it expires. */
const REFRESH_AHEAD_MS = 30_000;

type Listener<K extends keyof RealtimeEvents> = (event: RealtimeEvents[K]) => void;

export class HeraldRealtime {
  readonly #opts: Required<Omit<RealtimeOptions, 'channels' | 'WebSocket'>> & { WebSocket: typeof WebSocket | undefined };
  readonly #channels = new Set<string>();
  readonly #positions = new Map<string, Position>();
  /** Channels subscribed with a `since` whose `subscribed` answer has not come yet. */
  readonly #sinceSent = new Set<string>();
  readonly #listeners = new Map<keyof RealtimeEvents, Set<(e: never) => void>>();
  #ws: WebSocket | undefined;
  #state: 'idle' | 'connecting' | 'open' | 'waiting' | 'closed' = 'idle';
  #attempt = 0;
  #token: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #heard = false;
  #pinged = false;

  constructor(options: RealtimeOptions) {
    this.#opts = {
      url: options.url.replace(/\/+$/, ''),
      token: options.token,
      initialDelay: options.initialDelay ?? 500,
      maxDelay: options.maxDelay ?? 30_000,
      pingInterval: options.pingInterval ?? 30_000,
      WebSocket: options.WebSocket,
    };
    for (const c of options.channels ?? []) this.#channels.add(c);
  }

  get state(): 'idle' | 'connecting' | 'open' | 'waiting' | 'closed' {
    return this.#state;
  }

  /** The last position seen per channel (what a reconnect recovers from). */
  position(channel: string): Position | undefined {
    return this.#positions.get(channel);
  }

  on<K extends keyof RealtimeEvents>(type: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as (e: never) => void);
    return () => set.delete(listener as (e: never) => void);
  }

  /** Opens the connection (and keeps it open until close()). */
  connect(): this {
    if (this.#state === 'idle') void this.#open();
    return this;
  }

  /** Closes for good: no reconnect. */
  close(): void {
    this.#state = 'closed';
    this.#clearTimers();
    this.#ws?.close(1000, 'client closed');
    this.#ws = undefined;
  }

  subscribe(channel: string): void {
    if (this.#channels.has(channel)) return;
    this.#channels.add(channel);
    if (this.#state === 'open') this.#subscribeFrame(channel);
  }

  unsubscribe(channel: string): void {
    if (!this.#channels.delete(channel)) return;
    this.#positions.delete(channel);
    if (this.#state === 'open') this.#send({ type: 'unsubscribe', channel });
  }

  /** Sends a direct message; the server answers `ack {client_id}` once stored. Returns the client_id. */
  message(to: string, body: string, clientId: string = randomId()): string {
    this.#send({ type: 'message', to, body, client_id: clientId });
    return clientId;
  }

  typing(target: { to: string } | { room: string }, active: boolean): void {
    this.#send({ type: 'typing', ...target, active });
  }

  /** Asks for presence of these recipients (answered and then pushed as `presence` events). */
  presence(ids: string[]): void {
    this.#send({ type: 'presence', ids });
  }

  /** Inbox over REST (`/v1/me/inbox`), with the connection's token. */
  readonly inbox = {
    list: (q: { status?: 'unread' | 'read' | 'archived' | 'all'; cursor?: string; limit?: number } = {}) => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
      const qs = p.toString();
      return this.#rest<{ data: InboxItem[]; next_cursor: string | null }>('GET', `/v1/me/inbox${qs ? `?${qs}` : ''}`);
    },
    count: async () => (await this.#rest<{ unread: number }>('GET', '/v1/me/inbox/count')).unread,
    markRead: (id: string) => this.#rest<{ changed: number; unread: number }>('POST', `/v1/me/inbox/${encodeURIComponent(id)}/read`),
    archive: (id: string) => this.#rest<{ changed: number; unread: number }>('POST', `/v1/me/inbox/${encodeURIComponent(id)}/archive`),
    readAll: () => this.#rest<{ changed: number; unread: number }>('POST', '/v1/me/inbox/read-all'),
  };

  async #rest<T>(method: string, path: string): Promise<T> {
    const token = this.#token ?? (await this.#fetchToken());
    const res = await fetch(`${this.#opts.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const p = (body ?? {}) as { code?: string; detail?: string; title?: string };
      throw new HeraldError(res.status, p.code ?? 'http_error', p.detail ?? p.title ?? `HTTP ${res.status}`);
    }
    return body as T;
  }

  async #fetchToken(): Promise<string> {
    const t = this.#opts.token;
    this.#token = typeof t === 'string' ? t : await t();
    return this.#token;
  }

  async #open(): Promise<void> {
    this.#state = 'connecting';
    let token: string;
    try {
      token = await this.#fetchToken();
    } catch (err) {
      this.#emit('error', { code: 'client', message: `the token callback failed: ${String(err)}` });
      return this.#retry(0, 'token callback failed');
    }
    if (this.#state !== 'connecting') return;
    const Ctor = this.#opts.WebSocket ?? globalThis.WebSocket;
    const ws = new Ctor(`${this.#opts.url.replace(/^http/, 'ws')}/v1/realtime`);
    this.#ws = ws;
    ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.addEventListener('message', (e) => {
      if (this.#ws === ws) this.#onFrame(e.data);
    });
    ws.addEventListener('close', (e) => {
      if (this.#ws === ws) this.#onClose(e.code, e.reason);
    });
    ws.addEventListener('error', () => undefined);
  }

  #onFrame(raw: unknown): void {
    this.#heard = true;
    this.#pinged = false;
    let f: { type?: unknown; channel: string; [k: string]: any };
    try {
      f = JSON.parse(String(raw));
    } catch {
      return;
    }
    switch (f.type) {
      case 'welcome':
        this.#state = 'open';
        this.#attempt = 0;
        this.#startPing();
        this.#scheduleRefresh(f.expires_at);
        for (const c of this.#channels) this.#subscribeFrame(c);
        this.#emit('open', { session: f.session, recipient: f.recipient, organization: f.organization, expires_at: f.expires_at });
        return;
      case 'refreshed':
        this.#scheduleRefresh(f.expires_at);
        return;
      case 'subscribed': {
        const asked = this.#sinceSent.delete(f.channel);
        const known = this.#positions.get(f.channel);
        // Not recovered: the server starts us at its current position; what came before is re-read over REST.
        if (!f.recovered || !known) this.#positions.set(f.channel, { offset: f.offset, epoch: f.epoch });
        this.#emit('subscribed', { channel: f.channel, offset: f.offset, epoch: f.epoch, recovered: f.recovered });
        if (asked && !f.recovered) this.#emit('resync', { channel: f.channel });
        return;
      }
      case 'publication':
        if (this.#advance(f)) this.#emit('publication', { channel: f.channel, offset: f.offset, epoch: f.epoch, data: f.data });
        return;
      case 'inbox.item':
        if (this.#advance(f)) this.#emit('inbox.item', { item: f.item });
        return;
      case 'inbox.unread':
        if (this.#advance(f)) this.#emit('inbox.unread', { unread: f.unread });
        return;
      case 'inbox.marked':
        this.#emit('inbox.marked', { ids: f.ids, state: f.state, changed: f.changed });
        return;
      case 'message':
      case 'ack':
      case 'typing':
      case 'presence':
      case 'error': {
        const { type, ...rest } = f;
        this.#emit(type as 'message', rest as unknown as RealtimeEvents['message']);
        return;
      }
      default:
        return; // pong, unsubscribed, and frame types this client does not know yet
    }
  }

  /** Records the frame's position; false when it is one already seen (a duplicate after recovery). */
  #advance(f: { channel: string; offset?: number; epoch?: string }): boolean {
    if (typeof f.offset !== 'number' || typeof f.epoch !== 'string') return true;
    const known = this.#positions.get(f.channel);
    if (known && known.epoch === f.epoch && f.offset <= known.offset) return false;
    this.#positions.set(f.channel, { offset: f.offset, epoch: f.epoch });
    return true;
  }

  #subscribeFrame(channel: string): void {
    const since = this.#positions.get(channel);
    if (since) this.#sinceSent.add(channel);
    else this.#sinceSent.delete(channel);
    this.#send({ type: 'subscribe', channel, ...(since && { since }) });
  }

  #onClose(code: number, reason: string): void {
    this.#ws = undefined;
    this.#clearTimers();
    if (this.#state === 'closed') return;
    const fixedToken = typeof this.#opts.token === 'string';
    if (TOKEN_REFUSED.has(code) || (code === TOKEN_EXPIRED && fixedToken)) {
      this.#state = 'closed';
      this.#emit('close', { code, reason, reconnectIn: null });
      return;
    }
    if (!fixedToken) this.#token = undefined; // ask the callback again
    this.#retry(code, reason);
  }

  #retry(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    const cap = Math.min(this.#opts.maxDelay, this.#opts.initialDelay * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.round(cap * (0.5 + Math.random() / 2));
    this.#attempt++;
    this.#state = 'waiting';
    this.#emit('close', { code, reason, reconnectIn: delay });
    this.#timer = setTimeout(() => {
      if (this.#state === 'waiting') void this.#open();
    }, delay);
  }

  #scheduleRefresh(expiresAt: unknown): void {
    clearTimeout(this.#refreshTimer);
    if (typeof this.#opts.token === 'string' || typeof expiresAt !== 'string') return;
    const inMs = Date.parse(expiresAt) - Date.now() - REFRESH_AHEAD_MS;
    // setTimeout's limit is 2^31-1 ms; a token living longer is refreshed after that and then again.
    this.#refreshTimer = setTimeout(async () => {
      try {
        this.#token = undefined;
        const token = await this.#fetchToken();
        this.#send({ type: 'refresh', token });
      } catch (err) {
        this.#emit('error', { code: 'client', message: `the token callback failed: ${String(err)}` });
      }
    }, Math.min(Math.max(inMs, 1000), 2 ** 31 - 1));
  }

  #startPing(): void {
    clearInterval(this.#pingTimer);
    if (this.#opts.pingInterval <= 0) return;
    this.#heard = false;
    this.#pingTimer = setInterval(() => {
      if (this.#heard) {
        this.#heard = false;
        return;
      }
      if (this.#pinged) {
        const ws = this.#ws;
        this.#onClose(4100, 'no answer to ping'); // a dead path may never deliver the close event
        ws?.close(4100, 'no answer to ping');
        return;
      }
      this.#pinged = true;
      this.#send({ type: 'ping' });
    }, this.#opts.pingInterval);
  }

  #clearTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    clearInterval(this.#pingTimer);
  }

  #send(frame: Record<string, unknown>): void {
    if (this.#ws && this.#ws.readyState === 1) this.#ws.send(JSON.stringify(frame));
  }

  #emit<K extends keyof RealtimeEvents>(type: K, event: RealtimeEvents[K]): void {
    for (const l of this.#listeners.get(type) ?? []) {
      try {
        (l as Listener<K>)(event);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

function randomId(): string {
  return globalThis.crypto.randomUUID();
}
