// Outgoing HTTP for channels that post to user-supplied URLs, with SSRF protection.
//
// Contract: a request only ever connects to an address that address-policy allows. For host names
// the check runs on every address DNS returns, inside the socket's own lookup, so the address
// checked is the address connected to (no time-of-check/time-of-use gap with DNS rebinding);
// literal IP hosts are checked before connecting. Redirects are never followed. Every request has a
// timeout. A refused destination raises BlockedDestinationError before any byte is sent.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import type { Agent, buildConnector } from 'undici';
import { checkAddress, type Cidr } from './address-policy.ts';

export class BlockedDestinationError extends Error {
  override name = 'BlockedDestinationError';
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The first `excerptBytes` of the response body, decoded as UTF-8. */
  excerpt: string;
}

export interface SafeHttpOptions {
  allow: readonly Cidr[];
  timeoutMs: number;
  /** Connections per origin. */
  connections?: number;
  excerptBytes?: number;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

type Undici = typeof import('undici');

export class SafeHttp {
  readonly #opts: SafeHttpOptions;
  /** undici and the connection pool, made on the first request: a process that sends nothing never loads undici. */
  #pool: { undici: Undici; agent: Agent } | undefined;
  readonly #timeoutMs: number;
  readonly #excerptBytes: number;

  constructor(opts: SafeHttpOptions) {
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs;
    this.#excerptBytes = opts.excerptBytes ?? 4096;
  }

  #connectionPool(): { undici: Undici; agent: Agent } {
    if (this.#pool) return this.#pool;
    const undici = createRequire(import.meta.url)('undici') as Undici;
    const { Agent, buildConnector } = undici;
    const opts = this.#opts;
    const allow = opts.allow;
    const connector = buildConnector({ lookup: guardedLookup(allow), timeout: Math.ceil(opts.timeoutMs / 2) } as never);
    const connect: buildConnector.connector = (options, callback) => {
      const host = options.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) {
        const verdict = checkAddress(host, allow);
        if (!verdict.allowed) {
          callback(new BlockedDestinationError(`destination refused: ${verdict.reason}`), null);
          return;
        }
      }
      return connector(options, callback);
    };
    const agent = new Agent({
      connect,
      connections: opts.connections ?? 256,
      keepAliveTimeout: 30_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: Math.ceil(opts.timeoutMs / 2),
    });
    this.#pool = { undici, agent };
    return this.#pool;
  }

  post(url: string, headers: Record<string, string>, body: string | Uint8Array, signal?: AbortSignal): Promise<HttpResult> {
    return this.request('POST', url, headers, body, signal);
  }

  /** One request; the response body is read up to `excerptBytes` (vendor answers are small). */
  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, headers: Record<string, string>, body?: string | Uint8Array, signal?: AbortSignal): Promise<HttpResult> {
    // The time limit needs no timer of its own: connecting may take half the timeout and the
    // headers the whole of it (the Agent's options); the body is read only until the deadline,
    // with at most half the timeout between chunks. Worst case, about twice the timeout.
    const deadline = Date.now() + this.#timeoutMs;
    const { undici, agent } = this.#connectionPool();
    const res = await undici.request(url, { dispatcher: agent, method, headers, body: body ?? null, signal });
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (size < this.#excerptBytes) chunks.push(chunk.subarray(0, this.#excerptBytes - size));
      size += chunk.length;
      // Stop reading a huge or dripping body (the socket is then discarded).
      if (size >= this.#excerptBytes * 16) break;
      if (Date.now() > deadline) {
        res.body.destroy();
        const err = new Error(`response body not finished within ${this.#timeoutMs}ms`);
        err.name = 'TimeoutError';
        throw err;
      }
    }
    const excerpt = Buffer.concat(chunks).toString('utf8');
    return { status: res.statusCode, headers: res.headers, excerpt };
  }

  async close(): Promise<void> {
    await this.#pool?.agent.close();
  }
}

/**
 * A DNS lookup for a socket's `lookup` option that answers only addresses the policy allows (a
 * name resolving to none of them fails with BlockedDestinationError), so the address checked is
 * the address connected to. Used by SafeHttp and by the HTTP/2 channels (APNs).
 */
export function guardedLookup(allow: readonly Cidr[]) {
  return (hostname: string, options: { all?: boolean; family?: number }, cb: LookupCallback): void => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses) => {
      if (err) return cb(err, '');
      const ok = addresses.filter((a) => checkAddress(a.address, allow).allowed);
      if (ok.length === 0) {
        const first = addresses[0];
        const reason = first ? (checkAddress(first.address, allow) as { reason: string }).reason : 'no address';
        return cb(new BlockedDestinationError(`destination ${hostname} refused: ${reason}`), '');
      }
      if (options.all) return cb(null, ok);
      cb(null, ok[0]!.address, ok[0]!.family);
    });
  };
}

/** True when an error means the destination was refused by policy, wherever undici wrapped it. */
export function isBlockedDestination(err: unknown): err is BlockedDestinationError {
  for (let e = err as { cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as never, i++) {
    if (e instanceof BlockedDestinationError) return true;
  }
  return false;
}
