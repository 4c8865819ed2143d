// GET /v1/realtime/inbox.js: the real-time client and the <herald-inbox> web component
// (clients/realtime/client.ts, inbox-element.ts) as ONE classic script, for any page holding a
// connection token (docs/realtime.md). Public: it is the same for everyone.
//
// Built here, not by a build step: each source has its types stripped (node:module's
// stripTypeScriptTypes), its relative `import … from './x.ts'` lines dropped and its `export`
// keywords removed, and the files are concatenated in dependency order inside one function scope,
// which also sets `globalThis.HeraldRealtime` (the client class, for pages that want the client
// without the element). This holds only for sources written to that contract: plain top-level
// `export` declarations and relative imports of the listed files, one statement a line. The
// result is rebuilt when a source's modification time changes and carries an ETag.

import { readFileSync, statSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from './api.ts';

const DIR = new URL('../../clients/realtime/', import.meta.url);
/** In dependency order. */
const SOURCES = ['client.ts', 'inbox-element.ts'] as const;

interface Built {
  stamp: string;
  js: string;
  etag: string;
}
let built: Built | undefined;

/** The bundled script (rebuilt when a source changed since the last call). */
export function inboxScript(): Built {
  const stamp = SOURCES.map((f) => statSync(new URL(f, DIR)).mtimeMs).join(',');
  if (built?.stamp === stamp) return built;
  const parts = SOURCES.map((f) => `// ${f}\n${bundlePart(stripTypeScriptTypes(readFileSync(new URL(f, DIR), 'utf8'), { mode: 'strip' }))}`);
  const js = `/* Herald real-time client and <herald-inbox> (docs/realtime.md) */\n(() => {\n'use strict';\n${parts.join('\n')}\nglobalThis.HeraldRealtime = HeraldRealtime;\n})();\n`;
  let h = 0x811c9dc5;
  for (let i = 0; i < js.length; i++) h = Math.imul(h ^ js.charCodeAt(i), 0x01000193) >>> 0;
  built = { stamp, js, etag: `"${h.toString(36)}-${js.length.toString(36)}"` };
  return built;
}

function bundlePart(js: string): string {
  return js
    .replace(/^import\s[^;]*?from\s*'\.\/[a-z-]+\.ts';$/gm, '')
    .replace(/^[ \t]+$/gm, '')
    .replace(/^export\s+(?=(?:async\s+)?(?:function|class|const|let)\b)/gm, '');
}

function clientScriptRoutes(app: Api, _s: Services): void {
  app.get('/realtime/inbox.js', { schema: { hide: true } }, async (request, reply) => {
    const b = inboxScript();
    reply.header('etag', b.etag).header('cache-control', 'public, max-age=300').header('access-control-allow-origin', '*').header('x-content-type-options', 'nosniff');
    if (request.headers['if-none-match'] === b.etag) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(b.js);
  });
}

export const clientScriptModule: RouteModule = { name: 'realtime-client-script', prefix: '/v1', auth: 'none', apiRole: true, routes: clientScriptRoutes };
