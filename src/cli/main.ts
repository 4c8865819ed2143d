// The `herald` command.
//   herald serve [--role api,worker]          run the server (default: every role)
//   herald migrate                            apply database migrations and exit
//   herald keys create --scope S --name N     create an API key and print it (once)
//   herald keys list                          list API keys (never the keys themselves)
//   herald users create --email E --owner|--role R [--name N] [--password-stdin]
//                                             a user of the default organization (asks for the
//                                             password on a terminal, or reads it from stdin)
//   herald send --to ID --title T --body B    send a notification through a running server
//   herald config                             print the resolved configuration, secrets masked
//   herald backup --to DIR                    online copy of the SQLite database and secret key
//   herald restore --from DIR                 put a backup in place (Herald must be stopped)

import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApiKey, SCOPES, type Scope } from '../auth/api-keys.ts';
import { ConfigError, describeConfig, loadConfig, type Config } from '../config.ts';
import { VERSION } from '../app.ts';
import { listApiKeys } from '../keys/store.ts';
import { ensureMember } from '../auth/accounts.ts';
import { passwordVerdict } from '../auth/passwords.ts';
import { findUserByEmail } from '../auth/store.ts';
import { AuditService } from '../audit/service.ts';
import { isRole, ROLES } from '../domain/roles.ts';
import { openStore } from '../store/index.ts';
import { ensureDefaultWorkspace } from '../store/workspaces.ts';
import { DataDirLocked, lockDataDir, probeDataDir, type DataDirLock } from './data-lock.ts';
import { parseRoles, serve } from './serve.ts';
import { LATEST_MIGRATION } from '../store/migrations/index.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `herald ${VERSION}: self-hosted notification hub

Usage:
  herald serve [--role api,worker]
  herald migrate
  herald keys create --scope send|read|admin [--scope …] --name NAME
  herald keys list
  herald users create --email EMAIL (--owner | --role viewer|member|admin|owner) [--name NAME] [--password-stdin]
  herald send --to ID [--to ID …] --title TITLE --body BODY [--channel webhook|email] [--url URL] [--key KEY]
  herald config
  herald backup --to DIR
  herald restore --from DIR

Configuration comes from the environment; see docs/configuration.md or run \`herald config\`.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serveCommand(rest);
    case 'migrate':
      return migrate();
    case 'keys':
      return keys(rest);
    case 'users':
      return users(rest);
    case 'send':
      return send(rest);
    case 'config':
      return printConfig();
    case 'backup':
      return backup(rest);
    case 'restore':
      return restore(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    case '--version':
    case 'version':
      console.log(VERSION);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function config(): Config {
  return loadConfig(process.env);
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: 'string' } }, strict: true });
  return serve(parseRoles(values.role));
}

async function migrate(): Promise<number> {
  const cfg = config();
  // A running server's schema is whatever it migrated to at its start; a newer schema beneath it
  // could break it, so pending migrations wait for it to stop. Nothing pending: nothing to change.
  const running = cfg.databaseUrl ? { locked: false as const } : probeDataDir(cfg.dataPath);
  const store = await openStore(cfg);
  try {
    if (running.locked) {
      const applied = await store.appliedMigration();
      if (applied !== LATEST_MIGRATION) throw new Refusal(`${describeHolder(running.pid)} uses ${cfg.dataPath} at schema ${applied ?? '(none)'}; stop it before migrating to ${LATEST_MIGRATION}`);
      console.log(`already migrated (${store.dialect}) to ${applied}`);
      return 0;
    }
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    console.log(`migrated (${store.dialect}) to ${await store.appliedMigration()}`);
  } finally {
    await store.close();
  }
  return 0;
}

async function keys(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const store = await openStore(config());
  try {
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    if (sub === 'create') {
      const { values } = parseArgs({ args: rest, options: { scope: { type: 'string', multiple: true }, name: { type: 'string' } }, strict: true });
      const scopes = (values.scope ?? []).flatMap((s) => s.split(',')).map((s) => s.trim());
      if (scopes.length === 0) throw new UsageError('--scope is required (send, read or admin)');
      for (const s of scopes) if (!(SCOPES as readonly string[]).includes(s)) throw new UsageError(`unknown scope "${s}" (expected ${SCOPES.join(', ')})`);
      if (!values.name) throw new UsageError('--name is required');
      const created = await createApiKey(store.db, { name: values.name, scopes: scopes as Scope[] });
      console.error(`created key ${created.id} (${scopes.join(' ')}); it is shown only once:`);
      console.log(created.key);
      return 0;
    }
    if (sub === 'list') {
      for (const k of await listApiKeys(store.db, 'ws_default')) {
        console.log([k.id, k.prefix + '…', k.scopes, k.name, k.revoked_at ? 'revoked' : 'active'].join('\t'));
      }
      return 0;
    }
    throw new UsageError('expected `keys create` or `keys list`');
  } finally {
    await store.close();
  }
}

async function users(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'create') throw new UsageError('expected `users create`');
  const { values } = parseArgs({
    args: rest,
    options: { email: { type: 'string' }, name: { type: 'string' }, owner: { type: 'boolean' }, role: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    strict: true,
  });
  if (!values.email || !/^[^\s@]+@[^\s@]+$/.test(values.email)) throw new UsageError('--email is required: the address the user signs in with');
  if (values.owner && values.role && values.role !== 'owner') throw new UsageError('--owner and --role disagree');
  const role = values.owner ? 'owner' : values.role;
  if (!role || !isRole(role)) throw new UsageError(`--owner or --role ${ROLES.join('|')} is required: the user's role in the default organization`);
  const store = await openStore(config());
  try {
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    const exists = (await findUserByEmail(store.db, values.email)) !== undefined;
    const password = exists ? undefined : await readPassword(values['password-stdin'] === true);
    if (password !== undefined) {
      const verdict = passwordVerdict(password);
      if (!verdict.ok) throw new Refusal(`the password ${verdict.message}`);
    }
    const r = await ensureMember(store.db, new AuditService(store.db), { email: values.email, password, name: values.name, role }, 'cli');
    console.log(`${r.created ? 'created' : 'updated'} user ${r.user.id} <${r.user.email}>: ${role} of the default organization${r.created ? '' : ' (password unchanged)'}`);
    return 0;
  } finally {
    await store.close();
  }
}

/** The new user's password: all of stdin (one trailing newline dropped), or asked twice on a terminal without echo. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password on: pass --password-stdin and write it to stdin');
  const first = await askHidden('Password: ');
  const again = await askHidden('Password again: ');
  if (first !== again) throw new Refusal('the passwords differ');
  return first;
}

function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Refusal('cancelled'));
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function send(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      to: { type: 'string', multiple: true },
      title: { type: 'string' },
      body: { type: 'string' },
      kind: { type: 'string' },
      channel: { type: 'string', multiple: true },
      url: { type: 'string' },
      key: { type: 'string' },
      'idempotency-key': { type: 'string' },
    },
    strict: true,
  });
  if (!values.to?.length) throw new UsageError('--to is required');
  const key = values.key ?? process.env.HERALD_API_KEY ?? process.env.HERALD_ADMIN_KEY;
  if (!key) throw new UsageError('give an API key with --key or HERALD_API_KEY');
  const base = values.url ?? process.env.HERALD_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  const body = {
    to: values.to.length === 1 ? values.to[0] : values.to,
    ...(values.title !== undefined && { title: values.title }),
    ...(values.body !== undefined && { body: values.body }),
    ...(values.kind !== undefined && { kind: values.kind }),
    ...(values.channel && { channels: values.channel }),
  };
  const res = await fetch(new URL('/v1/notifications', base), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      ...(values['idempotency-key'] && { 'idempotency-key': values['idempotency-key'] }),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  console.log(text);
  if (!res.ok) {
    console.error(`herald send: ${res.status} ${res.statusText}`);
    return 1;
  }
  return 0;
}

const DB_FILE = 'herald.db';
const KEY_FILE = 'secret.key';

async function backup(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { to: { type: 'string' } }, strict: true });
  if (!values.to) throw new UsageError('--to DIR is required');
  const cfg = config();
  const store = await openStore(cfg);
  try {
    if (!store.backup) throw new UsageError(`the ${store.dialect} store is backed up with its own tools (pg_dump); see docs/operations.md`);
    if (existsSync(join(values.to, DB_FILE))) throw new UsageError(`${join(values.to, DB_FILE)} exists; choose an empty directory`);
    mkdirSync(values.to, { recursive: true });
    await store.backup(join(values.to, DB_FILE));
    const keyFile = join(cfg.dataPath, KEY_FILE);
    if (!cfg.secretKey && existsSync(keyFile)) copyFileSync(keyFile, join(values.to, KEY_FILE));
    console.log(`backed up to ${values.to}${cfg.secretKey ? ' (HERALD_SECRET_KEY is set: keep it safe separately)' : ''}`);
  } finally {
    await store.close();
  }
  return 0;
}

async function restore(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: 'string' } }, strict: true });
  if (!values.from) throw new UsageError('--from DIR is required');
  const cfg = config();
  if (cfg.databaseUrl) throw new UsageError('restore applies to the SQLite store; restore PostgreSQL with pg_restore');
  const source = join(values.from, DB_FILE);
  if (!existsSync(source)) throw new UsageError(`no ${DB_FILE} in ${values.from}`);
  const target = join(cfg.dataPath, DB_FILE);
  // Holding the server's lock: a running server is refused (its open database would be replaced
  // beneath it), and none can start while the files are swapped.
  let lock: DataDirLock;
  try {
    lock = lockDataDir(cfg.dataPath);
  } catch (err) {
    if (err instanceof DataDirLocked) throw new Refusal(`${describeHolder(err.pid)} uses ${cfg.dataPath}; stop it before restoring (restore replaces the database it has open)`);
    throw err;
  }
  try {
    for (const suffix of ['-wal', '-shm']) rmSync(target + suffix, { force: true });
    copyFileSync(source, target);
    if (existsSync(join(values.from, KEY_FILE))) copyFileSync(join(values.from, KEY_FILE), join(cfg.dataPath, KEY_FILE));
  } finally {
    lock.release();
  }
  console.log(`restored ${source} into ${cfg.dataPath}`);
  return 0;
}

/** A command that cannot act now for a reason outside its command line: one line, exit code 1. */
class Refusal extends Error {}

function describeHolder(pid: number | undefined): string {
  return pid === undefined ? 'a running Herald server' : `a running Herald server (PID ${pid})`;
}

function printConfig(): number {
  const rows = describeConfig(config());
  const width = Math.max(...rows.map((r) => r.variable.length));
  for (const r of rows) console.log(`${r.variable.padEnd(width)}  ${r.value}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(`herald: configuration error: ${err.message}`);
    else if (err instanceof DataDirLocked) console.error(`herald: ${err.message}; stop it first, or give this server another HERALD_DATA_DIR`);
    else if (err instanceof Refusal) console.error(`herald: ${err.message}`);
    else if (err instanceof UsageError) console.error(`herald: ${err.message}\n\n${USAGE}`);
    else console.error('herald:', err);
    process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
  },
);
