// `herald serve`: one Herald process in the foreground until SIGTERM or SIGINT.
//
// Start: resolve roles -> load configuration -> on SQLite, lock the data directory (data-lock.ts;
// a second server there is refused naming the holder's PID) -> create and start Herald -> tell the
// person at the terminal what to do next (stderr, plain text; the JSON log on stdout is for
// machines) -> wait for a signal -> graceful stop -> release the lock.

import type { Logger } from 'pino';
import { createHerald, createLogger } from '../app.ts';
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
    await herald.start();
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
