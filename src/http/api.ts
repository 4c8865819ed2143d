// The HTTP API's shared types: the Fastify instance routes are added to, the route-module
// contract buildServer (http/server.ts) mounts, and what routes find on a request.

import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.ts';
import type { Action } from '../auth/service.ts';
import type { Services } from '../services.ts';

export type Api = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The action a route needs (auth/service.ts authorize); authenticated routes without one need only a valid principal. */
    scope?: Action;
  }
  interface FastifyRequest {
    /** Set on routes of modules with `auth: 'principal'`, before their handlers and hooks run. */
    principal: Principal;
  }
}

/**
 * One feature's routes: mounted by buildServer as its own encapsulated Fastify plugin under
 * `prefix`. With `auth: 'principal'` every route first authenticates the request's credential
 * (auth/principal.ts), authorizes its `config.scope` (auth/service.ts), then takes the key's rate
 * limit; with `auth: 'none'` the routes are public (health) or authenticate themselves (vendor
 * callbacks: a signed URL). `apiRole`: served only by nodes with the api role (worker-only nodes
 * serve health and metrics).
 */
export interface RouteModule {
  readonly name: string;
  readonly prefix: string;
  readonly auth: 'principal' | 'none';
  readonly apiRole: boolean;
  readonly routes: (api: Api, services: Services) => void | Promise<void>;
}
