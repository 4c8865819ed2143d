// The `herald` command. Each command (and `keys` subcommand) declares its options and a help text
// with examples in COMMANDS; `herald CMD --help` prints it. Exit codes:
//   0  done
//   1  the command could not act (a running server in the way, no database where one was looked
//      for, a failed request); one line on stderr saying why
//   2  the command line or the configuration is wrong: one line saying what, then the usage;
//      never a stack trace
// Commands that only read or add to an existing SQLite data dir (keys, backup) refuse a data dir
// without a database instead of creating one; serve, migrate and restore create it on purpose.

// What only some commands use (the server, the store, its driver) is imported by those commands,
// so that --help, usage errors and config answer without loading it.

import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SCOPES, type Scope } from '../auth/scopes.ts';
import { ConfigError, describeConfig, loadConfig, type Config } from '../config.ts';
import { DataDirLocked, type DataDirLock } from './data-lock.ts';
import { UsageError } from './usage-error.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const openStore = async (cfg: Config) => (await import('../store/index.ts')).openStore(cfg);
const ensureDefaultWorkspace: typeof import('../store/workspaces.ts').ensureDefaultWorkspace = async (...a) => (await import('../store/workspaces.ts')).ensureDefaultWorkspace(...a);

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

interface Command {
  /** One line for the overview. */
  summary: string;
  /** The synopsis lines after "herald ". */
  usage: string[];
  /** The rest of `--help`: what it does, its options, examples. */
  help: string;
  options: Options;
  run(values: Values): Promise<number> | number;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the server (HTTP API and delivery workers) until SIGTERM or Ctrl-C',
    usage: ['serve [--role api,worker]'],
    help: `Runs Herald in the foreground. On SQLite it holds the data directory (HERALD_DATA_DIR) for
itself: a second server there is refused. It creates the data directory and the database if
needed, and on a first run without HERALD_ADMIN_KEY prints an admin key once.

Options:
  --role ROLES   api, worker or both (default): which parts this process runs

Examples:
  herald serve
  HOST=0.0.0.0 PORT=8080 herald serve          listen on every interface
  herald serve --role worker                    deliveries only (scaled out on PostgreSQL)
  npm start -- --role worker                    the same through npm`,
    options: { role: { type: 'string' } },
    run: async (v) => {
      const { parseRoles, serve } = await import('./serve.ts');
      return serve(parseRoles(v.role as string | undefined));
    },
  },
  migrate: {
    summary: 'apply database migrations and exit',
    usage: ['migrate'],
    help: `Creates the data directory and database if needed and applies pending migrations (serve
does this too at start). While a server runs on the same SQLite data directory, it only reports
that the schema is current, or refuses if it is not.

Examples:
  herald migrate
  HERALD_DATA_DIR=/var/lib/herald herald migrate
  DATABASE_URL=postgres://herald@db/herald HERALD_SECRET_KEY=… herald migrate`,
    options: {},
    run: () => migrate(),
  },
  'keys create': {
    summary: 'create an API key and print it (shown only once)',
    usage: ['keys create --scope send|read|admin [--scope …] --name NAME'],
    help: `Creates an API key in the default organization and prints it on stdout (the store keeps
only its hash). Works while the server runs. The data directory must hold a database already
(run serve or migrate first).

Options:
  --scope SCOPE   send, read or admin (repeat, or separate with commas); admin implies all
  --name NAME     what the key is for, shown by keys list

Examples:
  herald keys create --scope send --name my-app
  KEY=$(npx herald keys create --scope admin --name me)
  herald keys create --scope send,read --name dashboard`,
    options: { scope: { type: 'string', multiple: true }, name: { type: 'string' } },
    run: (v) => keysCreate(v),
  },
  'keys list': {
    summary: 'list API keys (their prefixes, never the keys)',
    usage: ['keys list'],
    help: `Prints one line per key of the default organization: id, prefix, scopes, name, state
(tab-separated). The data directory must hold a database already.

Examples:
  herald keys list
  HERALD_DATA_DIR=/var/lib/herald herald keys list`,
    options: {},
    run: () => keysList(),
  },
  'users create': {
    summary: 'create a user of the default organization, or change an existing user\'s role',
    usage: ['users create --email EMAIL (--owner | --role viewer|member|admin|owner) [--name NAME] [--password-stdin]'],
    help: `Creates a user who signs in with EMAIL and a password, with a role in the default
organization (creating the data directory and database if needed). The password is asked twice
on a terminal without echo, or read whole from stdin with --password-stdin. For an existing user
only the role (and name) change; the password stays. See docs/accounts.md.

Options:
  --email EMAIL       the address the user signs in with
  --owner             the organization's owner (same as --role owner)
  --role ROLE         viewer, member, admin or owner
  --name NAME         the user's display name
  --password-stdin    read the password from stdin instead of asking

Examples:
  herald users create --email ops@example.com --owner
  printf '%s' "$PASSWORD" | herald users create --email ci@example.com --role member --password-stdin`,
    options: { email: { type: 'string' }, name: { type: 'string' }, owner: { type: 'boolean' }, role: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    run: (v) => usersCreate(v),
  },
  send: {
    summary: 'send a notification through a running server',
    usage: ['send --to ID [--to ID …] [--title TITLE] [--body BODY] [--kind KIND] [--channel CH …] [--url URL] [--key KEY] [--idempotency-key K]'],
    help: `Posts one notification to a running Herald's /v1/notifications and prints its answer.

Options:
  --to ID              a recipient id (repeat for several)
  --title, --body      the notification's text
  --kind KIND          a notification kind (preferences and templates apply)
  --channel CH         restrict to channels (repeat): webhook, email, fcm, …
  --url URL            the server (default: HERALD_URL, else http://127.0.0.1:PORT)
  --key KEY            an API key with send scope (default: HERALD_API_KEY, else HERALD_ADMIN_KEY)
  --idempotency-key K  makes retries of this send safe

Examples:
  herald send --to alice --title Welcome --body "Hello from Herald" --key "$KEY"
  HERALD_URL=https://herald.example.com HERALD_API_KEY=hk_… herald send --to alice --to bob --title Hi`,
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
    run: (v) => send(v),
  },
  config: {
    summary: 'print the resolved configuration, secrets masked',
    usage: ['config'],
    help: `Prints every setting as Herald resolves it from the environment (docs/configuration.md),
with secrets masked, or says which variable is invalid (exit code 2).

Examples:
  herald config
  PORT=9000 herald config`,
    options: {},
    run: () => printConfig(),
  },
  backup: {
    summary: 'online copy of the SQLite database and its secret key',
    usage: ['backup --to DIR'],
    help: `Copies the database consistently while the server may keep running, and the generated
secret key (secret.key) with it. DIR must not hold a backup already. PostgreSQL: use pg_dump.

Options:
  --to DIR   where to write herald.db (and secret.key)

Examples:
  herald backup --to /backups/herald-$(date +%F)`,
    options: { to: { type: 'string' } },
    run: (v) => backup(v),
  },
  restore: {
    summary: 'put a backup in place (the server must be stopped)',
    usage: ['restore --from DIR'],
    help: `Replaces the database in HERALD_DATA_DIR (created if needed) with a backup, and its
secret key if the backup has one. Refused while a server runs on that data directory.

Options:
  --from DIR   a directory written by herald backup

Examples:
  herald restore --from /backups/herald-2026-11-22`,
    options: { from: { type: 'string' } },
    run: (v) => restore(v),
  },
};

const GROUPS: Record<string, string> = { keys: 'create or list API keys', users: 'manage the users who sign in' };

function overview(): string {
  const lines = Object.values(COMMANDS).flatMap((c) => c.usage.map((u) => `  herald ${u}`));
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const summaries = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `herald ${VERSION}: self-hosted notification hub

Usage:
${lines.join('\n')}
  herald COMMAND --help       what a command does, its options, examples
  herald --version

Commands:
${summaries.join('\n')}

Configuration comes from the environment (HERALD_DATA_DIR, DATABASE_URL, …); see
docs/configuration.md or run \`herald config\`.`;
}

function commandHelp(name: string): string {
  if (GROUPS[name]) {
    const subs = Object.entries(COMMANDS).filter(([n]) => n.startsWith(`${name} `));
    return `herald ${name}: ${GROUPS[name]}\n\nUsage:\n${subs.flatMap(([, c]) => c.usage.map((u) => `  herald ${u}`)).join('\n')}\n\nSee \`herald ${subs[0]![0]} --help\` for each one's options and examples.`;
  }
  const c = COMMANDS[name]!;
  return `herald ${name}: ${c.summary}\n\nUsage:\n${c.usage.map((u) => `  herald ${u}`).join('\n')}\n\n${c.help}`;
}

function usageOf(name: string | undefined): string {
  if (name === undefined) return overview();
  if (GROUPS[name]) return commandHelp(name).replace(/\n\nSee .*$/s, `\n\nRun \`herald ${name} SUBCOMMAND --help\` for details.`);
  const c = COMMANDS[name]!;
  return `Usage:\n${c.usage.map((u) => `  herald ${u}`).join('\n')}\n\nRun \`herald ${name} --help\` for options and examples.`;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(overview());
    return 2;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const topic = rest.slice(0, 2).join(' ');
    const name = COMMANDS[topic] ? topic : GROUPS[rest[0] ?? ''] || COMMANDS[rest[0] ?? ''] ? rest[0]! : undefined;
    if (rest.length > 0 && name === undefined) throw new UsageError(`unknown command "${rest.join(' ')}"`);
    console.log(name === undefined ? overview() : commandHelp(name));
    return 0;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    console.log(VERSION);
    return 0;
  }
  let name = first;
  let args = rest;
  if (GROUPS[first]) {
    const [sub, ...subArgs] = rest;
    if (sub === undefined) throw new UsageError(`\`herald ${first}\` needs a subcommand`, first);
    if (sub === '--help' || sub === '-h' || sub === 'help') {
      console.log(commandHelp(first));
      return 0;
    }
    if (!COMMANDS[`${first} ${sub}`]) throw new UsageError(`unknown subcommand "${first} ${sub}"`, first);
    name = `${first} ${sub}`;
    args = subArgs;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(first.startsWith('-') ? `unknown option "${first}"` : `unknown command "${first}"`);
  let values: Values;
  try {
    ({ values } = parseArgs({ args, options: { ...command.options, ...HELP }, strict: true, allowPositionals: false }) as { values: Values });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err as Error & { code?: string }), name);
  }
  if (values.help) {
    console.log(commandHelp(name));
    return 0;
  }
  return command.run(values);
}

/** node:util parseArgs's error as one line, without its hints about `--` and positionals. */
function parseArgsMessage(err: Error & { code?: string }): string {
  const option = /'(-[^']*)'/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option "${option ?? err.message}"`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${/'([^']*)'/.exec(err.message)?.[1] ?? ''}" (options are written --name value)`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return err.message.split('\n')[0]!.replace(/^Option /, 'option ').replace(/ argument missing$/, ' needs a value');
    default:
      return err.message.split('\n')[0]!;
  }
}

function config(): Config {
  return loadConfig(process.env);
}

/** A command that cannot act now for a reason outside its command line: one line, exit code 1. */
class Refusal extends Error {}

function describeHolder(pid: number | undefined): string {
  return pid === undefined ? 'a running Herald server' : `a running Herald server (PID ${pid})`;
}

const DB_FILE = 'herald.db';
const KEY_FILE = 'secret.key';

/**
 * The configuration of a command that uses an existing database: on SQLite, the data directory
 * must hold one (a command run from the wrong folder would otherwise create an empty one there).
 */
function existingData(): Config {
  const cfg = config();
  if (!cfg.databaseUrl && !existsSync(join(cfg.dataPath, DB_FILE))) {
    const where = existsSync(cfg.dataPath) ? `no Herald database (${DB_FILE}) in ${cfg.dataPath}` : `the data directory ${cfg.dataPath} does not exist`;
    throw new Refusal(`${where}; run this where Herald keeps its data, set HERALD_DATA_DIR to that directory, or create it with \`herald migrate\``);
  }
  return cfg;
}

async function migrate(): Promise<number> {
  const cfg = config();
  // A running server's schema is whatever it migrated to at its start; a newer schema beneath it
  // could break it, so pending migrations wait for it to stop. Nothing pending: nothing to change.
  const { probeDataDir } = await import('./data-lock.ts');
  const { LATEST_MIGRATION } = await import('../store/migrations/index.ts');
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

async function keysCreate(values: Values): Promise<number> {
  const scopes = ((values.scope as string[] | undefined) ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw new UsageError('--scope is required (send, read or admin)', 'keys create');
  for (const s of scopes) if (!(SCOPES as readonly string[]).includes(s)) throw new UsageError(`unknown scope "${s}" (expected ${SCOPES.join(', ')})`, 'keys create');
  const name = values.name as string | undefined;
  if (!name) throw new UsageError('--name is required', 'keys create');
  const store = await openStore(existingData());
  try {
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    const { createApiKey } = await import('../auth/api-keys.ts');
    const created = await createApiKey(store.db, { name, scopes: scopes as Scope[] });
    console.error(`created key ${created.id} (${scopes.join(' ')}); it is shown only once:`);
    console.log(created.key);
    return 0;
  } finally {
    await store.close();
  }
}

async function keysList(): Promise<number> {
  const store = await openStore(existingData());
  try {
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    const { listApiKeys } = await import('../keys/store.ts');
    for (const k of await listApiKeys(store.db, 'ws_default')) {
      console.log([k.id, k.prefix + '…', k.scopes, k.name, k.revoked_at ? 'revoked' : 'active'].join('\t'));
    }
    return 0;
  } finally {
    await store.close();
  }
}

async function usersCreate(v: Values): Promise<number> {
  const { ensureMember } = await import('../auth/accounts.ts');
  const { passwordVerdict } = await import('../auth/passwords.ts');
  const { findUserByEmail } = await import('../auth/store.ts');
  const { AuditService } = await import('../audit/service.ts');
  const { isRole, ROLES } = await import('../domain/roles.ts');
  const values = v as { email?: string; name?: string; owner?: boolean; role?: string; 'password-stdin'?: boolean };
  if (!values.email || !/^[^\s@]+@[^\s@]+$/.test(values.email)) throw new UsageError('--email is required: the address the user signs in with', 'users create');
  if (values.owner && values.role && values.role !== 'owner') throw new UsageError('--owner and --role disagree', 'users create');
  const role = values.owner ? 'owner' : values.role;
  if (!role || !isRole(role)) throw new UsageError(`--owner or --role ${ROLES.join('|')} is required: the user's role in the default organization`, 'users create');
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
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password on: pass --password-stdin and write it to stdin', 'users create');
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

async function send(values: Values): Promise<number> {
  const to = (values.to as string[] | undefined) ?? [];
  if (to.length === 0) throw new UsageError('--to is required', 'send');
  const key = (values.key as string | undefined) ?? process.env.HERALD_API_KEY ?? process.env.HERALD_ADMIN_KEY;
  if (!key) throw new UsageError('give an API key with --key or HERALD_API_KEY', 'send');
  const base = (values.url as string | undefined) ?? process.env.HERALD_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  let endpoint: URL;
  try {
    endpoint = new URL('/v1/notifications', base);
  } catch {
    throw new UsageError(`--url "${base}" is not a URL (e.g. http://127.0.0.1:8080)`, 'send');
  }
  const body = {
    to: to.length === 1 ? to[0] : to,
    ...(values.title !== undefined && { title: values.title }),
    ...(values.body !== undefined && { body: values.body }),
    ...(values.kind !== undefined && { kind: values.kind }),
    ...(values.channel !== undefined && { channels: values.channel }),
  };
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        ...(values['idempotency-key'] !== undefined && { 'idempotency-key': values['idempotency-key'] as string }),
      },
      body: JSON.stringify(body),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Refusal(`could not reach ${endpoint.origin} (${cause?.code ?? cause?.message ?? (err as Error).message}); is Herald running there? (--url or HERALD_URL)`);
  }
  const text = await res.text();
  console.log(text);
  if (!res.ok) {
    console.error(`herald send: ${res.status} ${res.statusText}`);
    return 1;
  }
  return 0;
}

async function backup(values: Values): Promise<number> {
  const to = values.to as string | undefined;
  if (!to) throw new UsageError('--to DIR is required', 'backup');
  const cfg = existingData();
  const store = await openStore(cfg);
  try {
    if (!store.backup) throw new UsageError(`the ${store.dialect} store is backed up with its own tools (pg_dump); see docs/operations.md`, 'backup');
    if (existsSync(join(to, DB_FILE))) throw new UsageError(`${join(to, DB_FILE)} exists; choose an empty directory`, 'backup');
    mkdirSync(to, { recursive: true });
    await store.backup(join(to, DB_FILE));
    const keyFile = join(cfg.dataPath, KEY_FILE);
    if (!cfg.secretKey && existsSync(keyFile)) copyFileSync(keyFile, join(to, KEY_FILE));
    console.log(`backed up to ${to}${cfg.secretKey ? ' (HERALD_SECRET_KEY is set: keep it safe separately)' : ''}`);
  } finally {
    await store.close();
  }
  return 0;
}

async function restore(values: Values): Promise<number> {
  const from = values.from as string | undefined;
  if (!from) throw new UsageError('--from DIR is required', 'restore');
  const cfg = config();
  if (cfg.databaseUrl) throw new Refusal('restore applies to the SQLite store; restore PostgreSQL with pg_restore');
  const source = join(from, DB_FILE);
  if (!existsSync(source)) throw new Refusal(`no ${DB_FILE} in ${from}`);
  const target = join(cfg.dataPath, DB_FILE);
  // Holding the server's lock: a running server is refused (its open database would be replaced
  // beneath it), and none can start while the files are swapped.
  const { lockDataDir } = await import('./data-lock.ts');
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
    if (existsSync(join(from, KEY_FILE))) copyFileSync(join(from, KEY_FILE), join(cfg.dataPath, KEY_FILE));
  } finally {
    lock.release();
  }
  console.log(`restored ${source} into ${cfg.dataPath}`);
  return 0;
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
    else if (err instanceof UsageError) console.error(`herald: ${err.message}\n\n${usageOf(err.command)}`);
    else if (err instanceof DataDirLocked) console.error(`herald: ${err.message}; stop it first, or give this server another HERALD_DATA_DIR`);
    else if (err instanceof Refusal) console.error(`herald: ${err.message}`);
    else console.error('herald:', err);
    process.exitCode = err instanceof ConfigError || err instanceof UsageError ? 2 : 1;
  },
);
