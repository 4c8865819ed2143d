// The HTTP server: Fastify with TypeBox schemas, OpenAPI 3.1 generated from them, RFC 9457 problem
// responses for every error; mounts the route modules it is given (http/api.ts RouteModule), with
// authentication (auth/principal.ts) and authorization (auth/service.ts) on those that ask for it.
//
// Error contract: a Problem thrown anywhere becomes its status; schema violations are 422 listing
// each field; malformed JSON 400; too large 413; wrong content type 415; unknown route 404.
// A known path with another method is 405 with Allow; a request Node or the router cannot parse
// 400 (oversized headers 431), a path parameter beyond the router's limit 414, a compressed body
// 415; bodies nested deeper than MAX_BODY_DEPTH 422.
// While shutting down, /v1 answers 503 (problem, Connection: close).
// Anything else is a server fault: 500, logged with the request id, its message never echoed.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyReply, type FastifyRequest, type onRequestHookHandler } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import addFormats from 'ajv-formats';
import { isUtf8 } from 'node:buffer';
import { authenticate, credentialOf, type Principal } from '../auth/principal.ts';
import { authorize, type Action } from '../auth/service.ts';
import { Problem } from '../errors.ts';
import { ulid } from '../domain/ids.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from './api.ts';
import { keyRateLimit } from './rate-limit.ts';
import { MERGE_PATCH_JSON, ProblemSchema, schemaProblem } from './schemas.ts';

// Not `import … from 'node:http'`: an ESM import of node:http reads every export of the module,
// including lazy getters (WebSocket, MessageEvent) that load Node's bundled undici, about 14 MB of
// RSS an idle Herald never uses (bench/idle.ts; test/cli/footprint.test.ts).
const { STATUS_CODES } = process.getBuiltinModule('node:http');

export type { Api, RouteModule } from './api.ts';

// Validators (ajv) and response serializers (fast-json-stringify) are generated code, compiled on a
// route's first use instead of at start: an idle process holds those of the few routes it served,
// not of every route (bench/idle.ts). The first request of a route pays its compilation (well under
// a millisecond to a few). A schema ajv or fast-json-stringify refuses then fails that request, not
// the start: the OpenAPI-driven fuzz suites call every route on both stores.

/** An ajv validator compiled on first call; Fastify reads `errors` from the function it was given. */
function lazyValidator(compile: () => ValidateFunction): (data: unknown) => boolean {
  let validate: ValidateFunction | undefined;
  const lazy = (data: unknown): boolean => {
    validate ??= compile();
    const ok = validate(data) as boolean;
    lazy.errors = validate.errors;
    return ok;
  };
  lazy.errors = null as ValidateFunction['errors'];
  return lazy;
}

/** Fastify's own serializer factory (its external schemas and options included), each serializer compiled on first use. */
function lazySerializers(): SerializerSelector.SerializerFactory {
  const build = SerializerSelector();
  return (externalSchemas, options) => {
    const compile = build(externalSchemas, options);
    return (route) => {
      let serialize: SerializerSelector.Serializer | undefined;
      return (doc) => (serialize ??= compile(route))(doc);
    };
  };
}

const PROBLEM_JSON = 'application/problem+json; charset=utf-8';
const REQUEST_ID_PREFIX = ulid().slice(-10).toLowerCase();
let requestSeq = 0;

/**
 * How deeply a request body may nest (the body itself is level 1). JSON.parse copes with far
 * deeper input, but every later recursive step (hashing for idempotency, JSON.stringify into the
 * store, response serialization) would overflow the stack on it and answer 500.
 */
export const MAX_BODY_DEPTH = 64;

/** swagger-ui's policy for /docs, made to work over plain HTTP (see where it is registered). */
export function docsPolicy(policy: string): string {
  return policy
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '' && !/^upgrade-insecure-requests$/i.test(d))
    .map((d) => (/^style-src\s/i.test(d) && !d.includes("'unsafe-inline'") ? `${d} 'unsafe-inline'` : d))
    .join('; ');
}

export async function buildServer(services: Services, modules: readonly RouteModule[]): Promise<Api> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: services.log as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    // Request ids: unique per process start and cheap (no randomness per request).
    genReqId: () => `${REQUEST_ID_PREFIX}-${(++requestSeq).toString(36)}`,
    // Per-request access logs are off (they would dominate the accept path's cost); errors are
    // logged with the request id, and latency is in the metrics.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // Each request's logger is made only when the request logs something: most never do.
    childLoggerFactory: (logger, bindings, opts) => new LazyChildLogger(logger, bindings, opts as { level?: string }) as unknown as FastifyBaseLogger,
    schemaController: { compilersFactory: { buildSerializer: lazySerializers() } },
    // Our own /v1 hook answers 503 while stopping, as a problem (Fastify's built-in one is not).
    return503OnClosing: false,
    // Errors the router raises before any route or hook runs: answer them as problems too.
    frameworkErrors: (err, request, reply) => {
      const problem =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new Problem('uri_too_long', 'A path segment of the URL is too long')
          : err.code === 'FST_ERR_BAD_URL'
            ? new Problem('malformed_request', 'The URL is not validly percent-encoded')
            : toProblem(err);
      if (problem.status >= 500) request.log.error({ err }, 'request failed');
      return (reply as FastifyReply).code(problem.status).type(PROBLEM_JSON).send(problem.toJSON(request.raw.url));
    },
    // Requests Node's HTTP parser rejects (bad framing, oversized headers) never reach Fastify's
    // routing: answer them as problems too, then close the connection as Node does.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const problem =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new Problem('request_timeout')
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? new Problem('headers_too_large', 'The request headers exceed the size limit')
            : new Problem('malformed_request', 'The request could not be parsed as HTTP/1.1');
      if (socket.writable) {
        const body = JSON.stringify(problem.toJSON());
        socket.write(
          `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: ${PROBLEM_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as Api;

  // Bodies are validated strictly (no type coercion: a number is not a string); query strings,
  // params and headers are text on the wire, so they are coerced.
  const strict = addFormats.default(new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false }));
  const coercing = addFormats.default(new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => lazyValidator(() => (httpPart === 'body' ? strict : coercing).compile(schema)));
  app.setSchemaErrorFormatter(schemaProblem);

  app.setErrorHandler((err: FastifyError | Problem, request, reply) => {
    // The store unreachable (or too busy), whichever route met it: 503 with Retry-After, never 500.
    const problem = services.store.isUnavailable(err)
      ? new Problem('unavailable', 'The database is unreachable; retry later', { headers: { 'retry-after': '2' } })
      : toProblem(err);
    // One log line per server-side failure: a fault with its stack, an outage without (it is not a
    // bug, and an outage would otherwise flood the log with identical stacks).
    if (problem.code === 'unavailable') request.log.warn({ err: (err as Error).message }, 'store unavailable');
    else if (problem.status >= 500) request.log.error({ err }, 'request failed');
    for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
    return reply.code(problem.status).type(PROBLEM_JSON).send(problem.toJSON(request.url));
  });
  // Only JSON bodies: Fastify's default text/plain parser would hand a string to the schema (422
  // "must be object") where the right answer is 415.
  app.removeContentTypeParser('text/plain');
  // One hook for every request: the request id header, no NUL in the URL, and bodies are read as
  // they come (a compressed one would be parsed as garbage (400) or, worse, a plain one labelled as
  // compressed accepted: say what is wrong instead).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // A NUL in a path segment or query value: no id or filter can contain one (PostgreSQL text cannot).
    if (request.url.includes('%00')) return done(new Problem('malformed_request', 'The URL contains an encoded NUL character (%00)'));
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return done(new Problem('unsupported_media_type', `Content-Encoding "${encoding}" is not supported; send the body uncompressed`));
    }
    done();
  });
  // JSON bodies (application/json everywhere; application/merge-patch+json, RFC 7396, on PATCH
  // routes only, 415 elsewhere): read as bytes and refused unless valid UTF-8 (decoding would turn
  // bad bytes into U+FFFD silently); Fastify's parser; a `__proto__` or `constructor.prototype`
  // property refused naming where (forbidden_property, 422); then the depth limit; then no NUL
  // character in any string: PostgreSQL text cannot hold one, and a body refused only by the store
  // would fail with the group commit it joined.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const parseBody = (request: FastifyRequest, bytes: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    if (!isUtf8(bytes)) return done(new Problem('malformed_json', 'The body is not valid UTF-8 (JSON text must be UTF-8 encoded)'), undefined);
    const body = bytes.toString('utf8');
    parseJson(request, body, (err: Error | null, value?: unknown) => {
      if (err) return done(forbiddenPropertyProblem(body) ?? err, undefined);
      const tooDeep = pathTooDeep(value, MAX_BODY_DEPTH);
      if (tooDeep !== undefined) return done(tooDeepProblem(tooDeep), undefined);
      // A NUL can only arrive as the escape \u0000 (JSON allows no raw control characters in strings).
      const nul = body.includes('\\u0000') ? nulPath(value, 'body') : undefined;
      if (nul !== undefined) {
        const errors = [{ path: nul.path, message: `${nul.inKey ? 'has a property name that contains' : 'contains'} a NUL character (U+0000), which cannot be stored` }];
        return done(new Problem('validation_failed', `${errors[0]!.path} ${errors[0]!.message}`, { errors }), undefined);
      }
      done(null, value);
    });
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => parseBody(request, body as Buffer, done));
  app.addContentTypeParser(MERGE_PATCH_JSON, { parseAs: 'buffer' }, (request, body, done) => {
    if (request.method !== 'PATCH') return done(new Problem('unsupported_media_type', `${MERGE_PATCH_JSON} is for PATCH requests; send application/json`), undefined);
    parseBody(request, body as Buffer, done);
  });
  // Request latency per route: each route gets its own onResponse hook with its path bound (the
  // route lookup a global hook needs, request.routeOptions, builds an object per call).
  const observe = (route: string, reply: FastifyReply, request: { method: string }) =>
    services.metrics.httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  app.addHook('onRoute', (route) => {
    const url = route.url;
    route.onResponse = [...hookList(route.onResponse), (request, reply, done) => (observe(url, reply, request), done())];
  });

  // Every route's path pattern and methods, so an unmatched request on a known path is a 405.
  const known: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const source = route.url
      .split('/')
      .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    const pattern = new RegExp(`^${source}/?$`);
    let entry = known.find((k) => k.pattern.source === pattern.source);
    if (!entry) known.push((entry = { pattern, methods: new Set() }));
    for (const m of methods) entry.methods.add(m);
    if (entry.methods.has('GET')) entry.methods.add('HEAD');
  });
  app.setNotFoundHandler((request, reply) => {
    reply.raw.once('finish', () => observe('unmatched', reply, request));
    const path = request.url.split('?')[0]!;
    const allowed = new Set(known.filter((k) => k.pattern.test(path)).flatMap((k) => [...k.methods]));
    if (allowed.size > 0 && !allowed.has(request.method)) {
      const allow = [...allowed].sort().join(', ');
      return reply
        .code(405)
        .header('allow', allow)
        .type(PROBLEM_JSON)
        .send(new Problem('method_not_allowed', `${request.method} is not allowed on ${path}; allowed: ${allow}`).toJSON(request.url));
    }
    return reply.code(404).type(PROBLEM_JSON).send(new Problem('not_found', `No route for ${request.method} ${path}`).toJSON(request.url));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Herald API', version: services.version, description: 'Self-hosted notification and messaging hub.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: "An API key (Authorization: Bearer hk_…) or a user's access token from POST /v1/auth/login" } } },
      security: [{ apiKey: [] }],
    },
  });
  // /docs carries swagger-ui's own Content-Security-Policy (its inline scripts and styles by hash)
  // with two changes, so that it works over plain HTTP and HTTPS alike (test/http/docs-browser.test.ts):
  // no `upgrade-insecure-requests`, which made a browser fetch the assets over HTTPS, so /docs
  // opened over plain HTTP at a network address rendered blank; and `'unsafe-inline'` in style-src
  // for the <style> element swagger-ui's bundle inserts as it renders (styles only: scripts stay
  // limited to the page's own and the hashed ones).
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, transformStaticCSP: docsPolicy });
  app.addSchema({ ...ProblemSchema, $id: 'Problem' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Each route of an authenticated module starts with authentication and authorization for its
  // scope, then the key's rate limit: route-level hooks with the scope bound, so no per-request
  // route lookup. Synchronous when the key is cached (nearly every request): no promise per request.
  app.decorateRequest('principal', undefined as unknown as Principal as never);
  const limit = keyRateLimit(app, services, services.rateLimiter);
  const guard = (needed: Action | undefined): onRequestHookHandler => (request, _reply, done) => {
    if (services.state.stopping) {
      return done(new Problem('unavailable', 'The server is shutting down; retry on another instance or later', { headers: { connection: 'close', 'retry-after': '1' } }));
    }
    const admit = (who: Principal | Problem) => {
      if (who instanceof Problem) return done(who);
      const refused = authorize(who, needed);
      if (refused) return done(refused);
      (request as { principal?: Principal }).principal = who;
      done();
    };
    const credential = credentialOf(request, config.publicUrl);
    if (credential instanceof Problem) return done(credential);
    const who = authenticate(credential, services.keys, services.accounts);
    if (who instanceof Promise) who.then(admit, (err: unknown) => done(err as Error));
    else admit(who);
  };

  // Worker-only nodes serve health and metrics, not the API.
  const serveApi = services.roles.includes('api');
  for (const m of modules) {
    if (m.apiRole && !serveApi) continue;
    await app.register(
      async (scope) => {
        const api = scope as unknown as Api;
        if (m.auth === 'principal') {
          api.addHook('onRoute', (route) => {
            const auth = guard((route.config as { scope?: Action } | undefined)?.scope);
            route.onRequest = [auth, ...(limit ? [limit] : []), ...hookList(route.onRequest)];
          });
        }
        await m.routes(api, services);
      },
      { prefix: m.prefix },
    );
  }

  return app;
}

function toProblem(err: FastifyError | Problem): Problem {
  if (err instanceof Problem) return err;
  const e = err as FastifyError & { validation?: unknown };
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem('malformed_json', e.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('payload_too_large', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem(e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'unsupported_media_type' : 'malformed_json', e.message);
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && /JSON|prototype|constructor/i.test(e.message))) {
    return new Problem('malformed_json', e.message);
  }
  if (e.statusCode === 413) return new Problem('payload_too_large', e.message);
  if (e.statusCode === 415) return new Problem('unsupported_media_type', e.message);
  if (e.statusCode === 404) return new Problem('not_found', e.message);
  if (e.statusCode === 405) return new Problem('method_not_allowed', e.message);
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new Problem('validation_failed', e.message);
  if (e.statusCode === 503) return new Problem('unavailable', 'The server is shutting down or unavailable');
  return new Problem('internal', 'An unexpected error occurred; it has been logged');
}

/** A route option that takes one hook or several, as a list. */
function hookList<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

/**
 * A child of `parent` with `bindings` that is created on first use. Fastify makes one per request;
 * pino's child() serializes (and redacts) the bindings, which costs more than most requests log.
 */
class LazyChildLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Record<string, unknown>;
  readonly #opts: { level?: string };
  #real: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Record<string, unknown>, opts: { level?: string }) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#opts = opts;
  }

  #get(): FastifyBaseLogger {
    return (this.#real ??= this.#parent.child(this.#bindings, this.#opts));
  }

  get level(): string {
    return this.#real?.level ?? this.#opts.level ?? this.#parent.level;
  }
  set level(l: string) {
    this.#get().level = l;
  }
  fatal(...a: unknown[]): void {
    (this.#get().fatal as (...x: unknown[]) => void)(...a);
  }
  error(...a: unknown[]): void {
    (this.#get().error as (...x: unknown[]) => void)(...a);
  }
  warn(...a: unknown[]): void {
    (this.#get().warn as (...x: unknown[]) => void)(...a);
  }
  info(...a: unknown[]): void {
    (this.#get().info as (...x: unknown[]) => void)(...a);
  }
  debug(...a: unknown[]): void {
    (this.#get().debug as (...x: unknown[]) => void)(...a);
  }
  trace(...a: unknown[]): void {
    (this.#get().trace as (...x: unknown[]) => void)(...a);
  }
  silent(...a: unknown[]): void {
    (this.#get().silent as (...x: unknown[]) => void)(...a);
  }
  child(...a: Parameters<FastifyBaseLogger['child']>): FastifyBaseLogger {
    return this.#get().child(...a);
  }
}

function tooDeepProblem(path: string): Problem {
  const errors = [{ path, message: `nests more than ${MAX_BODY_DEPTH} levels deep` }];
  return new Problem('validation_failed', `${path} nests more than ${MAX_BODY_DEPTH} levels deep`, { errors });
}

/**
 * Why Fastify's parser refused `body` when it is valid JSON: a property that could poison
 * prototypes. Returns the problem naming the first such property (depth first, in property order)
 * or undefined when `body` is simply not JSON. Runs only on a refused body.
 */
function forbiddenPropertyProblem(body: string): Problem | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body); // a "__proto__" key becomes an own property here, harmlessly
  } catch {
    return undefined;
  }
  const tooDeep = pathTooDeep(value, MAX_BODY_DEPTH);
  if (tooDeep !== undefined) return tooDeepProblem(tooDeep);
  const path = forbiddenPath(value, 'body');
  if (path === undefined) return undefined;
  const errors = [{ path, message: 'is a property name Herald refuses: it could change object prototypes' }];
  return new Problem('forbidden_property', `${path} ${errors[0]!.message}`, { errors });
}

/** The path of the first `__proto__` or `constructor.prototype` property in `value` (depth checked by the caller). */
function forbiddenPath(value: unknown, path: string): string | undefined {
  return firstInTree(value, path, () => undefined, (key, child, at) =>
    key === '__proto__' ? `${at}.__proto__` : key === 'constructor' && child !== null && typeof child === 'object' && Object.hasOwn(child, 'prototype') ? `${at}.constructor.prototype` : undefined,
  );
}

/**
 * The path of the first string in `value` (depth first, in property order) that contains U+0000,
 * or of the object with such a property name (inKey); undefined if there is none. `value` has been
 * checked by pathTooDeep, so recursion is bounded.
 */
function nulPath(value: unknown, path: string): { path: string; inKey: boolean } | undefined {
  return firstInTree<{ path: string; inKey: boolean }>(
    value,
    path,
    (v, at) => (typeof v === 'string' && v.includes('\0') ? { path: at, inKey: false } : undefined),
    (key, _child, at) => (key.includes('\0') ? { path: at, inKey: true } : undefined),
  );
}

/**
 * Depth first, in property order: the first answer of `atValue` (for `value` and each value inside
 * it, with its path body.a.0.b) or of `atKey` (for each property name, with its object's path).
 * The caller bounds the depth (pathTooDeep).
 */
function firstInTree<T>(
  value: unknown,
  path: string,
  atValue: (value: unknown, path: string) => T | undefined,
  atKey: (key: string, child: unknown, path: string) => T | undefined,
): T | undefined {
  const here = atValue(value, path);
  if (here !== undefined || value === null || typeof value !== 'object') return here;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstInTree(value[i], `${path}.${i}`, atValue, atKey);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const found = atKey(k, v, path) ?? firstInTree(v, `${path}.${k}`, atValue, atKey);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The top-level field (body.data…) holding a value nested more than `max` levels deep, or
 * undefined. Iterative, so hostile input cannot overflow the stack here.
 */
function pathTooDeep(body: unknown, max: number): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  if (max < 1) return 'body';
  const values: object[] = [];
  const depths: number[] = [];
  for (const key in body) {
    const top = (body as Record<string, unknown>)[key];
    if (top === null || typeof top !== 'object') continue;
    values.push(top);
    depths.push(2);
    while (values.length > 0) {
      const value = values.pop() as Record<string, unknown>;
      const depth = depths.pop()!;
      if (depth > max) return `body.${key}`;
      for (const k in value) {
        const v = value[k];
        if (v !== null && typeof v === 'object') {
          values.push(v);
          depths.push(depth + 1);
        }
      }
    }
  }
  return undefined;
}
