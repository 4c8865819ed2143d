// A Server-Sent Events test client of GET /v1/realtime/sse: parses the event stream as a browser's
// EventSource does (data, id, comments), collects the frames with the event id each came with,
// and sends client frames by POST /v1/realtime/send.

import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request, waitFor } from '../helpers/herald.ts';
import type { Frame } from './ws-client.ts';

export interface SseFrame extends Frame {
  /** The event's id line, if it had one. */
  _id?: string;
}

export interface SseClient {
  status: number;
  /** The problem body when the stream was refused. */
  problem: any;
  frames: SseFrame[];
  comments: number;
  /** The last event id seen (what EventSource would send as Last-Event-ID). */
  lastId(): string | undefined;
  ended: Promise<void>;
  isEnded(): boolean;
  next(pred: (f: SseFrame) => boolean, ms?: number, what?: string): Promise<SseFrame>;
  session(): Promise<string>;
  /** POST /v1/realtime/send with this stream's token. */
  send(frame: unknown, opts?: { token?: string; session?: string }): Promise<{ status: number; body: any; text: string }>;
  destroy(): void;
}

export async function sse(httpUrl: string, token: string | undefined, opts: { channels?: string[]; since?: string; lastEventId?: string; bearer?: boolean } = {}): Promise<SseClient> {
  const u = new URL('/v1/realtime/sse', httpUrl);
  if (token && !opts.bearer) u.searchParams.set('token', token);
  for (const c of opts.channels ?? []) u.searchParams.append('channel', c);
  if (opts.since) u.searchParams.set('since', opts.since);
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
  if (token && opts.bearer) headers.authorization = `Bearer ${token}`;
  const frames: SseFrame[] = [];
  let comments = 0;
  let last: string | undefined;
  let ended = false;
  let req: ClientRequest;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req = httpRequest(u, { headers }, resolve);
    req.on('error', reject);
    req.end();
  });
  let endResolve!: () => void;
  const endedP = new Promise<void>((r) => (endResolve = r));
  const done = () => {
    ended = true;
    endResolve();
  };
  let problem: any;
  if (res.statusCode !== 200) {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    await new Promise<void>((r) => res.on('end', () => r()));
    problem = text ? JSON.parse(text) : undefined;
    done();
  } else {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let data: string | undefined;
        let id: string | undefined;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments++;
          else if (line.startsWith('data: ')) data = (data === undefined ? '' : `${data}\n`) + line.slice(6);
          else if (line.startsWith('id: ')) id = line.slice(4);
        }
        if (id !== undefined) last = id;
        if (data !== undefined) frames.push({ ...(JSON.parse(data) as Frame), ...(id !== undefined && { _id: id }) });
      }
    });
    res.on('end', done);
    res.on('close', done);
    res.on('error', done);
  }
  const next = (pred: (f: SseFrame) => boolean, ms = 10_000, what = 'frame') => waitFor(() => frames.find(pred), ms, `${what}; got ${JSON.stringify(frames).slice(0, 600)}`);
  const session = async () => (await next((f) => f.type === 'welcome')).session as string;
  return {
    status: res.statusCode!,
    problem,
    frames,
    get comments() {
      return comments;
    },
    lastId: () => last,
    ended: endedP,
    isEnded: () => ended,
    next,
    session,
    send: async (frame, o = {}) => request(httpUrl, o.token ?? token, 'POST', '/v1/realtime/send', { session: o.session ?? (await session()), frame }),
    destroy: () => req.destroy(),
  };
}
