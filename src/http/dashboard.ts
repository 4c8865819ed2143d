// The dashboard (dashboard/, built by scripts/build-dashboard.js into dashboard/dist) served at `/`:
//   GET /                 index.html: no-cache, so a new build is picked up at the next visit
//   GET /assets/{file}    the build's content-hashed files: cached for a year, immutable
// The build is read once, when the server starts. Its URLs are relative to the page and its routes
// live in the URL's hash, so the same build works behind a reverse proxy under a path prefix
// (HERALD_PUBLIC_URL=https://example.com/herald/ with the proxy stripping /herald).
// Without a build (a checkout where `npm start` never ran) `/` answers the plain page of home.ts,
// which says how to get the dashboard.
//
// Policy: scripts and styles only from this origin (no inline script, no eval), API calls only to
// this origin, and no framing anywhere (`frame-ancestors 'none'` plus X-Frame-Options for old
// browsers).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from './api.ts';
import { HOME_CSP, homePage } from './home.ts';

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

export interface DashboardBuild {
  index: string;
  assets: Map<string, { body: Buffer; type: string }>;
}

export const DEFAULT_DIST = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

/** The build in `dir`, or undefined when there is none. */
export function readBuild(dir: string = DEFAULT_DIST): DashboardBuild | undefined {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return undefined;
  const assets = new Map<string, { body: Buffer; type: string }>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const name of readdirSync(assetDir)) {
      assets.set(name, { body: readFileSync(join(assetDir, name)), type: TYPES[extname(name)] ?? 'application/octet-stream' });
    }
  }
  return { index: readFileSync(indexFile, 'utf8'), assets };
}

function dashboardRoutes(app: Api, s: Services): void {
  const build = readBuild();
  const security = { 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'same-origin' };
  if (!build) {
    const page = homePage(s.version);
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.headers(security).header('content-security-policy', HOME_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(page),
    );
    return;
  }
  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.headers(security).header('content-security-policy', DASHBOARD_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(build.index),
  );
  app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const asset = build.assets.get(request.params.file);
    if (!asset) throw new Problem('not_found', `No dashboard asset "${request.params.file}"`);
    return reply.headers(security).header('cache-control', 'public, max-age=31536000, immutable').type(asset.type).send(asset.body);
  });
}

export const dashboardModule: RouteModule = { name: 'dashboard', prefix: '', auth: 'none', apiRole: false, routes: dashboardRoutes };
