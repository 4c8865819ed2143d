// The real-time gateway (docs/realtime.md has the protocol): one implementation of the protocol
// over two transports, the WebSocket `GET /v1/realtime` and Server-Sent Events
// `GET /v1/realtime/sse` (realtime/sse.ts) whose client frames come by `POST /v1/realtime/send`.
//
// A connection's states: authenticating -> open -> closed.
//   authenticating  the token came as `?token=` or must come as the first frame `{type: "auth"}`
//                   within AUTH_TIMEOUT_MS (else close 4000). Any other frame first: close 4000.
//   open            `welcome {session, recipient}` sent; client frames are handled in order of
//                   arrival; the token's expiry closes the connection (4002) unless a `refresh`
//                   frame brought a valid token of the same principal first (another principal's
//                   token: 4003).
//   closed          subscriptions dropped.
// Limits, each closing the connection: a frame over 64 KB (1009, by `ws` maxPayload); more client
// frames than HERALD_REALTIME_FRAME_RATE allows (1008); more than HERALD_REALTIME_SEND_BUFFER bytes
// queued for sending, a slow consumer (4004, then the socket is destroyed: a full buffer cannot
// carry the close frame); no pong to the previous ping when the next heartbeat is due (socket
// destroyed; an SSE stream has no pongs: its heartbeat is a comment, and a peer that stops reading
// fills the send buffer). Malformed or unknown frames get an `error` frame and the connection
// stays open.
// An SSE connection is authenticated before its stream starts (the route answers a refusal with a
// 401 problem) and is closed by a last `close {code, reason}` frame, then the end of the stream.
//
// Presence: a recipient's session joins presence when it is welcomed and leaves when it closes
// (realtime/presence.ts; this node renews its sessions every ttl/4). `presence {ids}` answers the
// ids' states and makes the connection a watcher of them: a change (a first session, a last one
// closing, sessions of a dead node expiring) reaches every watcher as `presence {online}` — at
// once through the bus topic `realtime.presence`, and by each node's sweep of its watched ids
// every ttl/4 (for expiries nobody announced, and messages the bus lost).
// Typing: `typing {to | room, active}` reaches every session of `to` (or the room's subscribers,
// not the sender) on every node as `typing {from, to | room, active}`; an `active: true` not
// renewed within TYPING_MS is followed by `active: false`, as is a close of the typing session.
//
// Direct messages: `message {to, body, client_id}` is stored once per client_id
// (realtime/messages.ts), then goes as `message {id, from, to, body, client_id, created_at}` to
// every session of `to` and every other session of the sender, on every node, and is answered
// `ack {client_id, id}`; a retry with the same client_id is acknowledged again and delivered no
// second time. A new message whose target has no live session is pushed to them.
//
// Subscriptions: `subscribe {channel, since?}` answers `subscribed {channel, offset, epoch,
// recovered}`, then the missed publications, then live ones. Publications that arrive while the
// position is being read are held and sent after it, skipping offsets already sent, so a client
// sees each offset once and in order.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.ts';
import { createRequire } from 'node:module';
import type { WebSocket, WebSocketServer } from 'ws';
import { TokenBucket } from '../domain/token-bucket.ts';
import { encodeCursor, parseClientFrame, type ClientFrame, type Since } from '../domain/realtime-protocol.ts';
import type { Bus } from '../bus/bus.ts';
import { streamKey, type ConnectionPrincipal, type RealtimeService, type Refusal, type Verified } from './service.ts';
import type { Publication } from './streams.ts';
import type { InboxService } from './inbox.ts';
import type { Presence } from './presence.ts';
import { messageView, type MessageService } from './messages.ts';

export const MAX_FRAME_BYTES = 64 * 1024;
const AUTH_TIMEOUT_MS = 10_000;
/** Longest timer Node accepts. */
const MAX_TIMER_MS = 2_147_483_647;
const PATH = '/v1/realtime';
/** Bus topic of client frames sent by POST /v1/realtime/send to a session of another node. */
const SEND_TOPIC = 'realtime.send';
/** Bus topic of presence changes: `{key, online}` (key: `<workspace>/<recipient>`). */
const PRESENCE_TOPIC = 'realtime.presence';
/** Bus topic of frames for every session of a recipient (`{key, frame, except?}`) or every subscriber of a stream (`{stream, frame, except?}`). */
const FANOUT_TOPIC = 'realtime.fanout';
/** An `active` typing indicator lasts this long unless renewed. */
export const TYPING_MS = 5_000;
/** Most ids one connection may watch for presence. */
const MAX_WATCHED = 1_000;

/**
 * How a connection's frames travel. `send` queues one server frame (with `id`, the SSE event id,
 * for frames after which the client's recovery position changed); `buffered` is what waits to go
 * out; `close` ends the connection in an orderly way, `terminate` at once; `ping` is the
 * heartbeat, answered by a pong only where `answersPings`.
 */
export interface Transport {
  readonly kind: 'ws' | 'sse';
  readonly answersPings: boolean;
  readonly buffered: number;
  send(text: string, id: (() => string) | undefined): void;
  close(code: number, reason: string): void;
  terminate(): void;
  ping(): void;
}

class WsTransport implements Transport {
  readonly kind = 'ws';
  readonly answersPings = true;
  readonly #ws: WebSocket;
  constructor(ws: WebSocket) {
    this.#ws = ws;
  }
  get buffered(): number {
    return this.#ws.bufferedAmount;
  }
  send(text: string): void {
    this.#ws.send(text);
  }
  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }
  terminate(): void {
    this.#ws.terminate();
  }
  ping(): void {
    this.#ws.ping();
  }
}

export interface GatewayOptions {
  readonly service: RealtimeService;
  readonly inbox: InboxService;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly heartbeatMs: number;
  readonly sendBufferBytes: number;
  readonly frameRate: { limit: number; periodMs: number } | undefined;
  readonly bus: Bus;
  readonly presence: Presence;
  readonly messages: MessageService;
  /** The process's state: while stopping, upgrades are refused (503). */
  readonly state: { readonly stopping: boolean };
}

interface Subscription {
  /** Highest offset sent; publications at or below it are not sent again. */
  sent: number;
  epoch: string;
  /** Publications that arrived while the position was being read; undefined once live. */
  held: Publication[] | undefined;
  /** The client's recovery position as of the last frame sent (SSE event ids carry it). */
  seen: Since | undefined;
}

class Connection {
  readonly session = randomBytes(9).toString('base64url');
  readonly t: Transport;
  principal: ConnectionPrincipal | undefined;
  readonly subs = new Map<string, Subscription>();
  bucket: TokenBucket | undefined;
  alive = true;
  expiry: NodeJS.Timeout | undefined;
  authTimer: NodeJS.Timeout | undefined;
  /** Presence keys this connection watches. */
  readonly watching = new Set<string>();
  /** Typing targets (`to:<id>`, `room:<name>`) -> the timer that ends the indicator. */
  readonly typing = new Map<string, NodeJS.Timeout>();
  /** The presence key this connection joined (a recipient's), once joined. */
  joined: string | undefined;
  /** Frames are handled one at a time, in order. */
  queue: Promise<void> = Promise.resolve();
  closed = false;

  constructor(t: Transport) {
    this.t = t;
  }
}

/** Why POST /v1/realtime/send did not take a frame. */
export type SendRefusal = 'no_session' | 'other_principal';

export class RealtimeGateway {
  readonly #opts: GatewayOptions;
  /** Made on the first upgrade: a process nobody connects to never loads `ws`. */
  #wss: WebSocketServer | undefined;
  /** Session -> connection, for the connections open on this node. */
  readonly #connections = new Map<string, Connection>();
  /** Stream key -> the connections subscribed to it on this node. */
  readonly #subscribers = new Map<string, Set<Connection>>();
  /** Presence key -> this node's sessions of that recipient. */
  readonly #byRecipient = new Map<string, Set<Connection>>();
  /** Presence key -> this node's connections watching it. */
  readonly #watchers = new Map<string, Set<Connection>>();
  /** Presence key -> its state as last told to its watchers. */
  readonly #known = new Map<string, boolean>();
  #sweep: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Presence leaves under way (close waits for them). */
  readonly #leaving = new Set<Promise<void>>();
  #server: Server | undefined;
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head);

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    opts.service.streams.onPublication((key, p) => this.#publication(key, p));
    const unsubscribe = [
      opts.bus.subscribe(SEND_TOPIC, { onMessage: (m) => this.#remoteFrame(m) }),
      opts.bus.subscribe(PRESENCE_TOPIC, { onMessage: (m) => this.#presenceMessage(m) }),
      opts.bus.subscribe(FANOUT_TOPIC, { onMessage: (m) => this.#fanoutMessage(m) }),
    ];
    this.#unsubscribeBus = () => unsubscribe.forEach((u) => u());
  }
  readonly #unsubscribeBus: () => void;

  /** Serves WebSocket upgrades of `server` (call before it listens). */
  attach(server: Server): void {
    this.#server = server;
    server.on('upgrade', this.#onUpgrade);
    this.#heartbeat = setInterval(() => this.#beat(), this.#opts.heartbeatMs);
    this.#heartbeat.unref();
    this.#sweep = setInterval(() => void this.#sweepPresence().catch((err: unknown) => this.#opts.log.warn({ err: (err as Error).message }, 'presence sweep failed')), Math.max(250, this.#opts.presence.ttlMs / 4));
    this.#sweep.unref();
  }

  /** Connections open on this node. */
  get size(): number {
    return this.#connections.size;
  }

  /** Closes every connection with 1001 (going away) and stops serving upgrades. */
  async close(): Promise<void> {
    this.#server?.off('upgrade', this.#onUpgrade);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#sweep) clearInterval(this.#sweep);
    this.#unsubscribeBus();
    for (const c of [...this.#connections.values()]) this.#close(c, 1001, 'server shutting down');
    await Promise.allSettled(this.#leaving);
    const wss = this.#wss;
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/\/$/, '');
    if (path !== PATH) {
      // Another endpoint's upgrade (a listener of its own answers it), or nobody's.
      if (this.#server && this.#server.listenerCount('upgrade') > 1) return;
      return refuseUpgrade(socket, 404, 'not_found', `No WebSocket endpoint at ${path}`);
    }
    if (this.#opts.state.stopping) return refuseUpgrade(socket, 503, 'unavailable', 'The server is shutting down; retry on another instance or later');
    const tokens = url.searchParams.getAll('token');
    if (tokens.length > 1) return refuseUpgrade(socket, 400, 'validation_failed', 'Give at most one token');
    if (!this.#wss) {
      const { WebSocketServer: Server } = createRequire(import.meta.url)('ws') as typeof import('ws');
      this.#wss = new Server({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, tokens[0]));
  }

  #connection(t: Transport): Connection {
    const c = new Connection(t);
    this.#connections.set(c.session, c);
    this.#opts.metrics.realtimeConnections.inc();
    const rate = this.#opts.frameRate;
    if (rate) c.bucket = new TokenBucket((rate.limit * 1000) / rate.periodMs, rate.limit, Date.now());
    return c;
  }

  #open(ws: WebSocket, token: string | undefined): void {
    const c = this.#connection(new WsTransport(ws));
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data, isBinary) => this.#frame(c, isBinary ? undefined : (data as Buffer).toString('utf8')));
    ws.on('close', () => this.#closed(c));
    ws.on('error', (err) => {
      this.#opts.log.debug({ err: err.message, session: c.session }, 'realtime connection error');
      this.#closed(c);
    });
    if (token !== undefined) c.queue = c.queue.then(() => this.#auth(c, token, 'auth')).catch((err: unknown) => this.#failed(c, err));
    else c.authTimer = setTimeout(() => this.#close(c, 4000, 'auth_timeout'), AUTH_TIMEOUT_MS);
  }

  /**
   * Opens an SSE connection on `t` for a verified token, subscribed to `subscribe` (with their
   * recovery positions). Answers its session.
   */
  openSse(t: Transport, v: Verified, subscribe: readonly { channel: string; since?: Since }[]): string {
    const c = this.#connection(t);
    c.queue = c.queue.then(async () => {
      this.#welcome(c, v, 'auth');
      for (const s of subscribe) await this.#subscribe(c, s.channel, s.since);
    }).catch((err: unknown) => this.#failed(c, err));
    return c.session;
  }

  /** The SSE transport saw its stream end. */
  ended(session: string): void {
    const c = this.#connections.get(session);
    if (c) this.#closed(c);
  }

  /**
   * A client frame (JSON text, already parsed as valid by the caller) for `session`, from POST
   * /v1/realtime/send with a token of principal `p`. A session of another node gets it over the
   * bus (then this answers undefined: whether that node holds the session is not known here).
   */
  async clientFrame(session: string, p: ConnectionPrincipal, text: string): Promise<SendRefusal | undefined> {
    const c = this.#connections.get(session);
    if (!c) {
      if (this.#opts.bus.kind === 'in-process') return 'no_session';
      await this.#opts.bus.publish(SEND_TOPIC, JSON.stringify({ session, org: p.workspaceId, who: who(p), text }));
      return undefined;
    }
    if (!c.principal || c.principal.workspaceId !== p.workspaceId || who(c.principal) !== who(p)) return 'other_principal';
    this.#frame(c, text);
    return undefined;
  }

  #remoteFrame(message: string): void {
    let m: { session: string; org: string; who: string; text: string };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    const c = this.#connections.get(m.session);
    if (c?.principal && c.principal.workspaceId === m.org && who(c.principal) === m.who) this.#frame(c, m.text);
  }

  /** A client frame's text (undefined: a binary WebSocket frame). */
  #frame(c: Connection, text: string | undefined): void {
    if (c.closed) return;
    if (c.bucket && c.bucket.take(Date.now(), 1) === 0) return this.#close(c, 1008, 'too_many_frames');
    if (text === undefined) return this.#send(c, errorFrame('malformed_frame', 'Frames must be text (JSON)'));
    const frame = parseClientFrame(text);
    c.queue = c.queue.then(() => this.#handle(c, frame)).catch((err: unknown) => this.#failed(c, err));
  }

  #failed(c: Connection, err: unknown): void {
    this.#opts.log.error({ err, session: c.session }, 'realtime frame failed');
    this.#send(c, errorFrame('internal', 'The frame could not be handled; try again'));
  }

  async #handle(c: Connection, frame: ClientFrame | { error: { code: string; message: string } }): Promise<void> {
    if (c.closed) return;
    if ('error' in frame) {
      if (!c.principal) return this.#close(c, 4000, 'auth_required');
      return this.#send(c, errorFrame(frame.error.code, frame.error.message));
    }
    if (!c.principal) {
      if (frame.type !== 'auth') return this.#close(c, 4000, 'auth_required');
      return this.#auth(c, frame.token, 'auth');
    }
    switch (frame.type) {
      case 'auth':
        return this.#send(c, errorFrame('invalid_frame', 'Already authenticated; send "refresh" with a new token'));
      case 'refresh':
        return this.#auth(c, frame.token, 'refresh');
      case 'ping':
        return this.#send(c, '{"type":"pong"}');
      case 'subscribe':
        return this.#subscribe(c, frame.channel, frame.since);
      case 'unsubscribe':
        return this.#unsubscribe(c, frame.channel);
      case 'presence':
        return this.#watch(c, frame.ids);
      case 'message':
        return this.#message(c, frame.to, frame.body, frame.client_id);
      case 'typing': {
        const p = c.principal;
        if (p.kind !== 'recipient') return this.#send(c, errorFrame('forbidden', 'Only a recipient types'));
        if (frame.room !== undefined && !p.rooms.includes(frame.room)) return this.#send(c, errorFrame('forbidden', `The token does not grant room "${frame.room}"`));
        const target = frame.room !== undefined ? `room:${frame.room}` : `to:${frame.to!}`;
        const timer = c.typing.get(target);
        if (timer) clearTimeout(timer);
        c.typing.delete(target);
        if (frame.active) {
          c.typing.set(target, setTimeout(() => {
            c.typing.delete(target);
            void this.#typing(c, target, false);
          }, TYPING_MS));
        }
        return this.#typing(c, target, frame.active);
      }
      case 'inbox.mark': {
        const p = c.principal;
        if (p.kind !== 'recipient') return this.#send(c, errorFrame('forbidden', 'Only a recipient has an inbox'));
        const changed = await this.#opts.inbox.mark(p.workspaceId, p.recipientId, frame.ids, frame.state);
        return this.#send(c, JSON.stringify({ type: 'inbox.marked', ids: frame.ids, state: frame.state, changed }));
      }
    }
  }

  async #auth(c: Connection, token: string, how: 'auth' | 'refresh'): Promise<void> {
    if (c.authTimer) clearTimeout(c.authTimer);
    let v: Verified | Refusal;
    try {
      v = await this.#opts.service.verify(token);
    } catch (err) {
      // The store or a JWKS could not be read: a server fault, not the token's. The client retries.
      this.#opts.log.error({ err, session: c.session }, 'realtime token could not be verified');
      return this.#close(c, 1011, 'unavailable: the token could not be checked; try again');
    }
    if (c.closed) return;
    if ('code' in v) return this.#refuse(c, v);
    this.#welcome(c, v, how);
  }

  /** Takes a verified token as the connection's principal (auth) or its renewal (refresh). */
  #welcome(c: Connection, v: Verified, how: 'auth' | 'refresh'): void {
    const p = v.principal;
    if (how === 'refresh') {
      const same = c.principal && p.kind === c.principal.kind && p.workspaceId === c.principal.workspaceId && who(p) === who(c.principal);
      if (!same) return this.#refuse(c, { code: 4003, reason: 'other_principal: a refresh must carry a token of the same organization and recipient or user' });
    }
    c.principal = p;
    if (c.expiry) clearTimeout(c.expiry);
    const left = v.expiresAt - Date.now();
    if (left <= 0) return this.#refuse(c, { code: 4002, reason: 'token_expired: the token has expired' });
    c.expiry = setTimeout(() => this.#refuse(c, { code: 4002, reason: 'token_expired: send a refresh frame with a new token before it expires' }), Math.min(left, MAX_TIMER_MS));
    if (how === 'auth') {
      if (p.kind === 'recipient') this.#join(c, presenceKey(p.workspaceId, p.recipientId));
      this.#send(c, JSON.stringify({ type: 'welcome', session: c.session, recipient: p.kind === 'recipient' ? p.recipientId : null, ...(p.kind === 'user' && { user: p.userId }), organization: p.workspaceId, expires_at: new Date(v.expiresAt).toISOString() }));
    } else {
      this.#send(c, JSON.stringify({ type: 'refreshed', expires_at: new Date(v.expiresAt).toISOString() }));
    }
  }

  /** Sends the reason as an error frame (close reasons are short), then closes. */
  #refuse(c: Connection, r: Refusal): void {
    const short = r.reason.split(':')[0]!;
    this.#opts.metrics.realtimeRefused.inc({ code: String(r.code) });
    this.#send(c, errorFrame(short, r.reason));
    this.#close(c, r.code, short);
  }

  /** The stream key of `channel` for this connection's principal, or an error frame's text. */
  #channelKey(c: Connection, channel: string): string | { code: string; message: string } {
    const p = c.principal!;
    if (channel === 'inbox') {
      if (p.kind !== 'recipient') return { code: 'forbidden', message: 'Only a recipient has an inbox' };
      return streamKey(p.workspaceId, `inbox:${p.recipientId}`);
    }
    const room = channel.slice(5);
    if (p.kind === 'recipient' && !p.rooms.includes(room)) return { code: 'forbidden', message: `The token does not grant room "${room}"` };
    return streamKey(p.workspaceId, channel);
  }

  async #subscribe(c: Connection, channel: string, since: { offset: number; epoch: string } | undefined): Promise<void> {
    const key = this.#channelKey(c, channel);
    if (typeof key !== 'string') return this.#send(c, errorFrame(key.code, key.message));
    if (c.subs.has(key)) this.#unsubscribe(c, channel, false);
    const sub: Subscription = { sent: 0, epoch: '', held: [], seen: since };
    c.subs.set(key, sub);
    let set = this.#subscribers.get(key);
    if (!set) this.#subscribers.set(key, (set = new Set()));
    set.add(c);
    this.#opts.metrics.realtimeSubscriptions.inc();
    let pos;
    try {
      pos = await this.#opts.service.streams.position(key, since);
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message }, 'realtime position failed');
      this.#unsubscribe(c, channel, false);
      return this.#send(c, errorFrame('unavailable', 'The channel could not be subscribed; try again'));
    }
    if (c.closed || c.subs.get(key) !== sub) return;
    sub.epoch = pos.epoch;
    sub.sent = pos.offset;
    if (since) this.#opts.metrics.realtimeRecoveries.inc({ outcome: pos.recovered ? 'recovered' : 'not_recovered' });
    // Recovered: the client's position is `since` until the missed publications went out.
    sub.seen = pos.recovered ? since : { offset: pos.offset, epoch: pos.epoch };
    this.#send(c, JSON.stringify({ type: 'subscribed', channel, offset: pos.offset, epoch: pos.epoch, recovered: pos.recovered }), true);
    // The inbox's current unread count, so a fresh session shows its badge at once.
    const p = c.principal!;
    if (channel === 'inbox' && p.kind === 'recipient') this.#send(c, JSON.stringify({ type: 'inbox.unread', channel, unread: await this.#opts.inbox.unread(p.workspaceId, p.recipientId) }));
    for (const p of pos.missed) {
      sub.seen = { offset: p.offset, epoch: p.epoch };
      this.#send(c, publicationFrame(channel, p), true);
    }
    const held = sub.held!;
    sub.held = undefined;
    for (const p of held) this.#deliver(c, channel, sub, p);
  }

  #unsubscribe(c: Connection, channel: string, answer = true): void {
    const key = this.#channelKey(c, channel);
    if (typeof key !== 'string') return this.#send(c, errorFrame(key.code, key.message));
    if (c.subs.delete(key)) this.#opts.metrics.realtimeSubscriptions.dec();
    const set = this.#subscribers.get(key);
    set?.delete(c);
    if (set?.size === 0) this.#subscribers.delete(key);
    if (answer) this.#send(c, JSON.stringify({ type: 'unsubscribed', channel }), true);
  }

  #publication(key: string, p: Publication): void {
    const set = this.#subscribers.get(key);
    if (!set) return;
    const channel = channelOf(key);
    for (const c of set) {
      const sub = c.subs.get(key);
      if (!sub) continue;
      if (sub.held) sub.held.push(p);
      else this.#deliver(c, channel, sub, p);
    }
  }

  #deliver(c: Connection, channel: string, sub: Subscription, p: Publication): void {
    if (p.epoch === sub.epoch && p.offset <= sub.sent) return;
    sub.epoch = p.epoch;
    sub.sent = p.offset;
    sub.seen = { offset: p.offset, epoch: p.epoch };
    this.#opts.metrics.realtimePublications.inc();
    this.#send(c, publicationFrame(channel, p), true);
  }

  /** `positioned`: the frame changed the client's recovery position (an SSE event id follows it). */
  #send(c: Connection, text: string, positioned = false): void {
    if (c.closed) return;
    if (c.t.buffered + text.length > this.#opts.sendBufferBytes) {
      this.#opts.metrics.realtimeSlowConsumers.inc();
      this.#close(c, 4004, 'slow_consumer');
      // The close frame waits behind the full buffer; the peer is not reading it.
      c.t.terminate();
      return;
    }
    c.t.send(text, positioned ? () => cursorOf(c) : undefined);
  }

  #close(c: Connection, code: number, reason: string): void {
    if (c.closed) return;
    try {
      c.t.close(code, reason);
    } catch {
      c.t.terminate();
    }
    this.#closed(c);
  }

  #closed(c: Connection): void {
    if (c.closed && this.#connections.get(c.session) !== c) return;
    c.closed = true;
    if (this.#connections.get(c.session) === c && this.#connections.delete(c.session)) this.#opts.metrics.realtimeConnections.dec();
    this.#opts.metrics.realtimeSubscriptions.dec(c.subs.size);
    if (c.expiry) clearTimeout(c.expiry);
    if (c.authTimer) clearTimeout(c.authTimer);
    for (const [target, timer] of c.typing) {
      clearTimeout(timer);
      void this.#typing(c, target, false);
    }
    c.typing.clear();
    for (const key of c.watching) {
      const set = this.#watchers.get(key);
      set?.delete(c);
      if (set?.size === 0) {
        this.#watchers.delete(key);
        this.#known.delete(key);
      }
    }
    c.watching.clear();
    if (c.joined) this.#leave(c, c.joined);
    for (const key of c.subs.keys()) {
      const set = this.#subscribers.get(key);
      set?.delete(c);
      if (set?.size === 0) this.#subscribers.delete(key);
    }
    c.subs.clear();
  }

  /** Whether each recipient of the organization has a live session on any node. */
  online(workspaceId: string, ids: readonly string[]): Promise<boolean[]> {
    return this.#opts.presence.online(ids.map((id) => presenceKey(workspaceId, id)));
  }

  #join(c: Connection, key: string): void {
    c.joined = key;
    let set = this.#byRecipient.get(key);
    if (!set) this.#byRecipient.set(key, (set = new Set()));
    set.add(c);
    this.#opts.metrics.realtimePresenceOnline.set(this.#byRecipient.size);
    void this.#opts.presence.join(key, c.session).then(
      (first) => (first ? this.#opts.bus.publish(PRESENCE_TOPIC, JSON.stringify({ key, online: true })) : undefined),
      (err: unknown) => this.#opts.log.warn({ err: (err as Error).message }, 'presence join failed'),
    );
  }

  #leave(c: Connection, key: string): void {
    c.joined = undefined;
    const set = this.#byRecipient.get(key);
    set?.delete(c);
    if (set?.size === 0) this.#byRecipient.delete(key);
    this.#opts.metrics.realtimePresenceOnline.set(this.#byRecipient.size);
    const leaving: Promise<void> = this.#opts.presence.leave(key, c.session).then(
      (last) => (last ? this.#opts.bus.publish(PRESENCE_TOPIC, JSON.stringify({ key, online: false })) : undefined),
      (err: unknown) => this.#opts.log.warn({ err: (err as Error).message }, 'presence leave failed'),
    ).finally(() => this.#leaving.delete(leaving));
    this.#leaving.add(leaving);
  }

  async #watch(c: Connection, ids: readonly string[]): Promise<void> {
    const p = c.principal!;
    const keys = ids.map((id) => presenceKey(p.workspaceId, id));
    const added = keys.filter((k) => !c.watching.has(k)).length;
    if (c.watching.size + added > MAX_WATCHED) return this.#send(c, errorFrame('too_many_ids', `A connection watches at most ${MAX_WATCHED} ids`));
    let states: boolean[];
    try {
      states = await this.#opts.presence.online(keys);
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message }, 'presence read failed');
      return this.#send(c, errorFrame('unavailable', 'Presence could not be read; try again'));
    }
    if (c.closed) return;
    keys.forEach((k, i) => {
      this.#observe(k, states[i]!);
      c.watching.add(k);
      let set = this.#watchers.get(k);
      if (!set) this.#watchers.set(k, (set = new Set()));
      set.add(c);
      this.#known.set(k, states[i]!);
    });
    this.#send(c, JSON.stringify({ type: 'presence', online: Object.fromEntries(ids.map((id, i) => [id, states[i]])) }));
  }

  /** A watched key's state as just read or announced: its watchers hear of a change. */
  #observe(key: string, online: boolean): void {
    const watchers = this.#watchers.get(key);
    const known = this.#known.get(key);
    if (watchers) this.#known.set(key, online);
    if (!watchers || known === undefined || known === online) return;
    const frame = JSON.stringify({ type: 'presence', online: { [key.slice(key.indexOf('/') + 1)]: online } });
    for (const c of watchers) this.#send(c, frame);
  }

  #presenceMessage(message: string): void {
    try {
      const m = JSON.parse(message) as { key: string; online: boolean };
      this.#observe(m.key, m.online);
    } catch {
      // not a message of this node's making
    }
  }

  /** Renews this node's sessions' presence and re-reads the watched ids. */
  async #sweepPresence(): Promise<void> {
    const entries: { key: string; session: string }[] = [];
    for (const [key, set] of this.#byRecipient) for (const c of set) entries.push({ key, session: c.session });
    await this.#opts.presence.refresh(entries);
    const keys = [...this.#watchers.keys()];
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const states = await this.#opts.presence.online(chunk);
      chunk.forEach((k, j) => this.#observe(k, states[j]!));
    }
  }

  async #message(c: Connection, to: string, body: string, clientId: string): Promise<void> {
    const p = c.principal!;
    if (p.kind !== 'recipient') return this.#send(c, errorFrame('forbidden', 'Only a recipient sends direct messages'));
    const r = await this.#opts.messages.send(p.workspaceId, p.recipientId, to, body, clientId);
    if (r === 'off') return this.#send(c, errorFrame('forbidden', 'Direct messages are off in this organization (PUT /v1/realtime/settings {"direct_messages": true})'));
    if (r.created) {
      const frame = JSON.stringify({ type: 'message', ...messageView(r.row) });
      const target = presenceKey(p.workspaceId, to);
      const sender = presenceKey(p.workspaceId, p.recipientId);
      await this.#opts.bus.publish(FANOUT_TOPIC, JSON.stringify({ key: target, frame, ...(target === sender && { except: c.session }) }));
      if (target !== sender) await this.#opts.bus.publish(FANOUT_TOPIC, JSON.stringify({ key: sender, frame, except: c.session }));
      const [online] = await this.#opts.presence.online([target]).catch(() => [true]);
      if (!online) void this.#opts.messages.pushOffline(p.workspaceId, r.row);
    }
    this.#send(c, JSON.stringify({ type: 'ack', client_id: clientId, id: r.row.id }));
  }

  /** Announces `c`'s typing to `target` (`to:<id>` or `room:<name>`) on every node. */
  async #typing(c: Connection, target: string, active: boolean): Promise<void> {
    const p = c.principal;
    if (p?.kind !== 'recipient') return;
    const to = target.startsWith('to:') ? target.slice(3) : undefined;
    const frame = JSON.stringify({ type: 'typing', from: p.recipientId, ...(to !== undefined ? { to } : { room: target.slice(5) }), active });
    const dest = to !== undefined ? { key: presenceKey(p.workspaceId, to) } : { stream: streamKey(p.workspaceId, target) };
    await this.#opts.bus.publish(FANOUT_TOPIC, JSON.stringify({ ...dest, frame, except: c.session }));
  }

  #fanoutMessage(message: string): void {
    let m: { key?: string; stream?: string; frame: string; except?: string };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    const set = m.key !== undefined ? this.#byRecipient.get(m.key) : m.stream !== undefined ? this.#subscribers.get(m.stream) : undefined;
    if (!set) return;
    for (const c of set) if (c.session !== m.except) this.#send(c, m.frame);
  }

  #beat(): void {
    for (const c of [...this.#connections.values()]) {
      if (!c.alive) {
        this.#opts.metrics.realtimeDeadPeers.inc();
        c.t.terminate();
        this.#closed(c);
        continue;
      }
      c.alive = !c.t.answersPings;
      c.t.ping();
    }
  }
}

/** A recipient's presence key. */
function presenceKey(workspaceId: string, recipientId: string): string {
  return `${workspaceId}/${recipientId}`;
}

/** The SSE event id: every subscription's recovery position (decodeCursor reads it). */
function cursorOf(c: Connection): string {
  const positions: Record<string, Since> = {};
  for (const [key, sub] of c.subs) if (sub.seen) positions[channelOf(key)] = sub.seen;
  return encodeCursor(positions);
}

function who(p: ConnectionPrincipal): string {
  return p.kind === 'recipient' ? `r:${p.recipientId}` : `u:${p.userId}`;
}

/** The channel name a client knows for a stream key (a recipient's inbox stream is its `inbox`). */
function channelOf(key: string): string {
  const channel = key.slice(key.indexOf('/') + 1);
  return channel.startsWith('inbox:') ? 'inbox' : channel;
}

function publicationFrame(channel: string, p: Publication): string {
  // Inbox publications are objects with their own frame type (inbox.item, inbox.unread).
  if (channel === 'inbox' && p.data.startsWith('{"type":')) return `{"channel":"inbox","offset":${p.offset},"epoch":${JSON.stringify(p.epoch)},${p.data.slice(1)}`;
  return `{"type":"publication","channel":${JSON.stringify(channel)},"offset":${p.offset},"epoch":${JSON.stringify(p.epoch)},"data":${p.data}}`;
}

function errorFrame(code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message });
}

function refuseUpgrade(socket: Duplex, status: number, code: string, detail: string): void {
  const body = JSON.stringify({ type: `urn:herald:problem:${code}`, status, code, detail });
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 503 ? 'Service Unavailable' : 'Bad Request'}\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
