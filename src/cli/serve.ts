// `herald serve`: one Herald process in the foreground until SIGTERM or SIGINT.
//
// Start: resolve roles -> load configuration -> on SQLite, lock the data directory (data-lock.ts;
// a second server there is refused naming the holder's PID) -> create Herald (migrates) -> first
// run (api role, no HERALD_ADMIN_KEY, no API key in the store): create an admin key -> listen ->
// tell the person at the terminal what to do next (stderr, plain text; the JSON log on stdout is
// for machines): where the API, its docs and the data are, and either the first-run key (printed
// this once; the store keeps its hash only) or how to get a key -> wait for a signal -> graceful
// stop -> release the lock.

import type { Logger } from 'pino';
import { createHerald, createLogger, VERSION } from '../app.ts';
import { createApiKey } from '../auth/api-keys.ts';
import { anyApiKeyExists } from '../keys/store.ts';
import { loadConfig, type Config } from '../config.ts';
import { ROLES, type Role } from '../services.ts';
import { adminKeyWeakness } from './admin-key.ts';
import { lockDataDir } from './data-lock.ts';
import { UsageError } from './usage-error.ts';

export function parseRoles(text: string | undefined): Role[] {
  const roles = (text ?? ROLES.join(',')).split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) if (!(ROLES as readonly string[]).includes(r)) throw new UsageError(`unknown role "${r}" (expected ${ROLES.join(', ')})`, 'serve');
  if (roles.length === 0) throw new UsageError(`--role needs at least one of ${ROLES.join(', ')}`, 'serve');
  return roles as Role[];
}

export async function serve(roles: Role[]): Promise<number> {
  const cfg = loadConfig(process.env);
  const log = createLogger(cfg);
  // PostgreSQL deployments run many processes on purpose; the data directory then holds at most a key file.
  const lock = cfg.databaseUrl ? undefined : lockDataDir(cfg.dataPath);
  try {
    warnWeakAdminKey(cfg, log);
    const herald = await createHerald(cfg, { roles, log });
    const firstKey = roles.includes('api') && !cfg.adminKey && !(await anyApiKeyExists(herald.services.store.db))
      ? (await createApiKey(herald.services.store.db, { name: 'first-run admin', scopes: ['admin'] })).key
      : undefined;
    if (firstKey) log.warn('first run: created an admin API key and printed it on stderr (it is not shown again)');
    const url = await herald.start();
    process.stderr.write(startGuide(cfg, { url, roles, firstKey }));
    await untilSignal(() => herald.stop(), log);
  } finally {
    lock?.release();
  }
  return 0;
}

/** Resolves once a SIGTERM or SIGINT has stopped Herald (`stop`). */
function untilSignal(stop: () => Promise<void>, log: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      stop().then(resolve, (err) => {
        log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

/** A weak HERALD_ADMIN_KEY: a warning in the log and, in plain words, on stderr. The server still starts. */
function warnWeakAdminKey(cfg: Config, log: Logger): void {
  if (!cfg.adminKey) return;
  const weakness = adminKeyWeakness(cfg.adminKey);
  if (!weakness) return;
  log.warn({ variable: 'HERALD_ADMIN_KEY', weakness }, `HERALD_ADMIN_KEY ${weakness}: anyone who guesses it administers this server`);
  process.stderr.write(
    [
      '',
      `herald: WARNING: HERALD_ADMIN_KEY ${weakness}.`,
      `herald: WARNING: Anyone who can reach ${cfg.host}:${cfg.port} and guesses it can read and send everything.`,
      'herald: WARNING: Use a generated key instead: HERALD_ADMIN_KEY=hk_$(openssl rand -hex 24), or unset it and create one with `npx herald keys create --scope admin --name admin`.',
      '',
      '',
    ].join('\n'),
  );
}

/**
 * What to do next, for the person who started the server: a few lines on stderr. At log levels
 * below info only a first-run key is printed (it cannot be shown again).
 */
export function startGuide(cfg: Config, opts: { url: string; roles: readonly Role[]; firstKey?: string }): string {
  const { url, roles, firstKey } = opts;
  const lines: string[] = [];
  const verbose = ['info', 'debug', 'trace'].includes(cfg.logLevel);
  if (verbose) {
    lines.push(`Herald ${VERSION} is serving on ${url} (${roles.join(' and ')}).`);
    if (roles.includes('api')) lines.push(`  API reference  ${url}/docs   (OpenAPI: ${url}/openapi.json)`);
    lines.push(`  Data           ${cfg.databaseUrl ? `PostgreSQL (DATABASE_URL)${cfg.secretKey ? '' : `; secret key in ${cfg.dataPath}`}` : `${cfg.dataPath} (herald.db${cfg.secretKey ? '' : ', secret.key: back both up'})`}`);
    if (isLoopback(cfg.host)) lines.push(`  Reachable from this machine only (HOST=${cfg.host}); HOST=0.0.0.0 listens on every interface.`);
  }
  if (firstKey) {
    lines.push(
      '',
      'First run: no API key existed, so Herald created this admin key. It is shown only now (Herald keeps a hash):',
      '',
      `    ${firstKey}`,
      '',
      `  Try it:  curl -H "Authorization: Bearer ${firstKey}" ${url}/v1/recipients`,
      '  Give applications narrower keys: npx herald keys create --scope send --name my-app',
    );
  } else if (verbose && roles.includes('api')) {
    lines.push(`  API keys       npx herald keys create --scope admin --name me   (prints a new key once)`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
