// A WebSocket test client of the real-time gateway: collects frames, waits for one that matches,
// and records how the connection closed.

import { WebSocket } from 'ws';
import { waitFor } from '../helpers/herald.ts';

export interface Frame {
  type: string;
  [k: string]: any;
}

export interface RtClient {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  send(frame: unknown): void;
  /** The first frame (after `from`) matching `pred`; waits up to `ms`. */
  next(pred: (f: Frame) => boolean, ms?: number, what?: string): Promise<Frame>;
  close(): void;
}

export function wsUrl(httpUrl: string, token?: string): string {
  return `${httpUrl.replace(/^http/, 'ws')}/v1/realtime${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

export async function connect(httpUrl: string, token?: string, opts: { raw?: string } = {}): Promise<RtClient> {
  const ws = new WebSocket(opts.raw ?? wsUrl(httpUrl, token));
  const frames: Frame[] = [];
  let isClosed = false;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      isClosed = true;
      resolve({ code, reason: reason.toString() });
    });
  });
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    isClosed: () => isClosed,
    send: (f) => ws.send(typeof f === 'string' ? f : JSON.stringify(f)),
    next: (pred, ms = 10_000, what = 'frame') => waitFor(() => frames.find(pred), ms, `${what}; got ${JSON.stringify(frames).slice(0, 600)}`),
    close: () => ws.close(),
  };
}
