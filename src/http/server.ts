// The HTTP server: Fastify with TypeBox schemas, OpenAPI 3.1 generated from them, RFC 9457 problem
// responses for every error, API-key auth with scopes on /v1.
//
// Error contract: a Problem thrown anywhere becomes its status; schema violations are 422 listing
// each field; malformed JSON 400; too large 413; wrong content type 415; unknown route 404.
// Anything else is a server fault: 500, logged with the request id, its message never echoed.

import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type RawServerDefault } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasScope, type Principal, type Scope } from '../auth/api-keys.ts';
import { Problem, type FieldError } from '../errors.ts';
import { ulid } from '../domain/ids.ts';
import type { Services } from '../services.ts';
import { healthRoutes } from './health.ts';
import { metricsRoutes } from './metrics.ts';
import { recipientRoutes } from './recipients.ts';
import { notificationRoutes } from './notifications.ts';
import { dlqRoutes } from './dlq.ts';
import { auditRoutes } from './audit.ts';
import { keyRoutes } from './keys.ts';
import { ProblemSchema } from './schemas.ts';

export type Api = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs; routes under /v1 without one need only a valid key. */
    scope?: Scope;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

export async function buildServer(services: Services): Promise<Api> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: services.log as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => ulid(),
    // Per-request access logs are off (they would dominate the accept path's cost); errors are
    // logged with the request id, and latency is in the metrics.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as Api;

  // Bodies are validated strictly (no type coercion: a number is not a string); query strings,
  // params and headers are text on the wire, so they are coerced.
  const strict = addFormats.default(new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: false }));
  const coercing = addFormats.default(new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  app.setSchemaErrorFormatter((errors, dataVar) => {
    const fields: FieldError[] = errors.map((e) => {
      let path = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
      if (e.keyword === 'required') path += `.${(e.params as { missingProperty: string }).missingProperty}`;
      if (e.keyword === 'additionalProperties') path += `.${(e.params as { additionalProperty: string }).additionalProperty}`;
      const message = e.keyword === 'additionalProperties' ? 'is not a known field' : (e.message ?? 'is invalid');
      return { path, message };
    });
    return new Problem('validation_failed', fields.map((f) => `${f.path} ${f.message}`).join('; '), { errors: fields });
  });

  app.setErrorHandler((err: FastifyError | Problem, request, reply) => {
    const problem = toProblem(err);
    if (problem.status >= 500) request.log.error({ err }, 'request failed');
    for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
    return reply.code(problem.status).type(PROBLEM_JSON).send(problem.toJSON(request.url));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).type(PROBLEM_JSON).send(new Problem('not_found', `No route for ${request.method} ${request.url.split('?')[0]}`).toJSON(request.url)),
  );

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    services.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (reply.statusCode >= 500) request.log.warn({ status: reply.statusCode, url: request.url }, 'server error response');
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Herald API', version: services.version, description: 'Self-hosted notification and messaging hub.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: Authorization: Bearer hk_…' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.addSchema({ ...ProblemSchema, $id: 'Problem' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  healthRoutes(app, services);
  metricsRoutes(app, services);

  await app.register(
    async (v1) => {
      const api = v1 as unknown as Api;
      api.decorateRequest('principal', undefined as unknown as Principal);
      api.addHook('onRequest', async (request) => {
        const header = request.headers.authorization;
        const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
        if (!m) throw new Problem('unauthorized', header ? 'Authorization must be "Bearer <api key>"' : 'Send an API key as "Authorization: Bearer <key>"', { headers: { 'www-authenticate': 'Bearer' } });
        const principal = m[1]!.length <= 200 ? await services.keys.resolve(m[1]!) : undefined;
        if (!principal) throw new Problem('unauthorized', 'The API key is not valid', { headers: { 'www-authenticate': 'Bearer' } });
        const needed = request.routeOptions.config.scope;
        if (needed && !hasScope(principal, needed)) throw new Problem('forbidden', `This needs the "${needed}" scope`);
        request.principal = principal;
      });
      recipientRoutes(api, services);
      notificationRoutes(api, services);
      dlqRoutes(api, services);
      auditRoutes(api, services);
      keyRoutes(api, services);
    },
    { prefix: '/v1' },
  );

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
