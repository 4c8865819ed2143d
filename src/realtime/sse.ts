// The Server-Sent Events transport of the real-time gateway (`GET /v1/realtime/sse`).
//
// Contract: every server frame is one event, `data: <frame JSON>`, of the default event type (an
// EventSource's `onmessage` sees them all); a frame after which the client's recovery position
// changed also carries `id: <cursor>` (every subscription's {offset, epoch}), so the browser's
// automatic reconnect sends it back as `Last-Event-ID`. The heartbeat is a comment line. Closing
// sends a last `close {code, reason}` frame and ends the stream; terminating destroys the socket.

import type { ServerResponse } from 'node:http';
import type { Transport } from './gateway.ts';

/** What the browser waits before reconnecting after the stream ends (ms). */
const RETRY_MS = 2000;

export class SseTransport implements Transport {
  readonly kind = 'sse';
  readonly answersPings = false;
  readonly #res: ServerResponse;

  /** Starts the event stream on `res` (headers and the reconnect delay). */
  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.write(`retry: ${RETRY_MS}\n\n`);
  }

  get buffered(): number {
    return this.#res.writableLength;
  }

  send(text: string, id: (() => string) | undefined): void {
    // Frames are JSON.stringify output: no raw newlines.
    this.#res.write(id ? `id: ${id()}\ndata: ${text}\n\n` : `data: ${text}\n\n`);
  }

  close(code: number, reason: string): void {
    if (this.#res.writableEnded) return;
    this.#res.end(`data: ${JSON.stringify({ type: 'close', code, reason })}\n\n`);
  }

  terminate(): void {
    this.#res.destroy();
  }

  ping(): void {
    this.#res.write(': ping\n\n');
  }
}
