// Notification kinds of a workspace (table kinds), with their JSON columns parsed.
//
// Every workspace has the default kinds (domain/kinds.ts DEFAULT_KINDS): they are created lazily
// and idempotently (ensureDefaultKinds) when a workspace is set up and whenever they are read and
// missing, and there is no way to delete a kind, so once read they always exist. Their policy can be
// replaced by PUT like any other kind's, within the rules of kinds/routes.ts (security stays
// mandatory).

import type { Kysely } from 'kysely';
import { DEFAULT_KINDS, DEFAULT_KIND_NAMES, type DigestPolicy, type Kind, type KindPolicy, type RateLimit } from '../domain/kinds.ts';
import type { Database, KindsTable } from '../store/schema.ts';

function toRow(workspaceId: string, kind: string, p: KindPolicy, createdAt: number, updatedAt: number): KindsTable {
  return {
    workspace_id: workspaceId,
    kind,
    mandatory: p.mandatory ? 1 : 0,
    channels: p.channels === null ? null : JSON.stringify(p.channels),
    quiet_hours: p.quiet_hours,
    routing: p.routing,
    rate_limits: p.rate_limits === null ? null : JSON.stringify(p.rate_limits),
    throttle: p.throttle,
    digest: p.digest === null ? null : JSON.stringify(p.digest),
    blackout: p.blackout,
    created_at: createdAt,
    updated_at: updatedAt,
  };
}

function fromRow(r: KindsTable): Kind {
  return {
    workspace_id: r.workspace_id,
    kind: r.kind,
    mandatory: Number(r.mandatory) === 1,
    channels: r.channels === null ? null : (JSON.parse(r.channels) as string[]),
    quiet_hours: r.quiet_hours,
    routing: r.routing,
    rate_limits: r.rate_limits === null ? null : (JSON.parse(r.rate_limits) as Record<string, RateLimit>),
    throttle: r.throttle,
    digest: r.digest === null ? null : (JSON.parse(r.digest) as DigestPolicy),
    blackout: r.blackout,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** Creates the default kinds the workspace lacks; leaves existing ones (possibly edited) alone. */
export async function ensureDefaultKinds(db: Kysely<Database>, workspaceId: string, now = Date.now()): Promise<void> {
  const present = await db.selectFrom('kinds').select('kind').where('workspace_id', '=', workspaceId).where('kind', 'in', DEFAULT_KIND_NAMES).execute();
  if (present.length === DEFAULT_KIND_NAMES.length) return;
  const have = new Set(present.map((p) => p.kind));
  const missing = DEFAULT_KIND_NAMES.filter((k) => !have.has(k)).map((k) => toRow(workspaceId, k, DEFAULT_KINDS[k]!, now, now));
  await db
    .insertInto('kinds')
    .values(missing)
    .onConflict((oc) => oc.columns(['workspace_id', 'kind']).doNothing())
    .execute();
}

export async function getKind(db: Kysely<Database>, workspaceId: string, kind: string): Promise<Kind | undefined> {
  const read = () => db.selectFrom('kinds').selectAll().where('workspace_id', '=', workspaceId).where('kind', '=', kind).executeTakeFirst();
  let row = await read();
  if (!row && Object.hasOwn(DEFAULT_KINDS, kind)) {
    await ensureDefaultKinds(db, workspaceId);
    row = await read();
  }
  return row && fromRow(row);
}

/** The workspace's kinds among `kinds` (for the send path: one query for a request's kinds). */
export async function getKinds(db: Kysely<Database>, workspaceId: string, kinds: readonly string[]): Promise<Map<string, Kind>> {
  if (kinds.length === 0) return new Map();
  const read = () => db.selectFrom('kinds').selectAll().where('workspace_id', '=', workspaceId).where('kind', 'in', kinds).execute();
  let rows = await read();
  if (kinds.some((k) => Object.hasOwn(DEFAULT_KINDS, k) && !rows.some((r) => r.kind === k))) {
    await ensureDefaultKinds(db, workspaceId);
    rows = await read();
  }
  return new Map(rows.map((r) => [r.kind, fromRow(r)]));
}

/** The workspace's kinds by name, `limit` of them after `after` (keyset). */
export async function listKinds(db: Kysely<Database>, workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<Kind[]> {
  await ensureDefaultKinds(db, workspaceId);
  let query = db.selectFrom('kinds').selectAll().where('workspace_id', '=', workspaceId);
  if (q.after !== undefined) query = query.where('kind', '>', q.after);
  return (await query.orderBy('kind').limit(q.limit).execute()).map(fromRow);
}

/** Inserts or replaces a kind's policy; returns the stored kind and whether it was created. */
export async function putKind(db: Kysely<Database>, workspaceId: string, kind: string, policy: KindPolicy, now = Date.now()): Promise<{ kind: Kind; created: boolean }> {
  if (Object.hasOwn(DEFAULT_KINDS, kind)) await ensureDefaultKinds(db, workspaceId, now);
  const existing = await db.selectFrom('kinds').select('created_at').where('workspace_id', '=', workspaceId).where('kind', '=', kind).executeTakeFirst();
  const row = toRow(workspaceId, kind, policy, existing?.created_at ?? now, now);
  const { workspace_id: _w, kind: _k, created_at: _c, ...changes } = row;
  await db
    .insertInto('kinds')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'kind']).doUpdateSet(changes))
    .execute();
  return { kind: fromRow(row), created: !existing };
}
