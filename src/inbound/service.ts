// The webhook broker: sources, ingest, the event store, pull consumers and retention.
//
// Ingest (POST /hooks/{path}): the source is found by path; the request is verified on its raw
// bytes by the source's provider (verifiers/); a refusal stores nothing and is counted by source
// and reason. An accepted event is written through a group committer (queue/group-commit.ts):
// concurrent ingests share one transaction and one durable commit, and each request is answered
// only after its batch has committed. Ids are assigned in the batch just before it is written, so
// an event's id time is within a transaction's duration of its commit (the consumer scan relies on
// this, see CONSUMER_SCAN_SAFETY_MS). A provider delivery id already stored for the source is a
// replay: the original id is answered and nothing is stored. After the commit, `inbound.received`
// is announced on the events port (best effort; the store stays the truth).
//
// Reading (ACL): an API key reads every event of its organization when it has the read (or admin)
// scope; a user reads events they own, the non-private events of every organization they are a
// member of (any role), public events of any organization, and every event of a source with a
// GitHub repository grant (`github_read`) when their linked GitHub account can read that
// repository, asked of GitHub with their own token (GithubAccess, cached at most 5 minutes) while
// the source's organization is still linked to the repository's GitHub organization. Anything
// else is not found.
//
// Consumers: a named consumer of an organization has a filter (path glob, types, match) and its
// own state per event (inbound_consumer_events). Pulling first considers events received since
// its scan mark, adding a row per event (pending when the filter takes it, skipped otherwise),
// then claims due rows with one statement (store.ts claimConsumerEvents): each event is leased to
// one puller at a time, redelivered when its lease (ack_timeout) expires, dead-lettered after
// max_deliveries. Long-polling waits for `inbound.received` of the organization or a poll tick.

import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import type { SecretBox } from '../auth/secret-box.ts';
import type { Principal } from '../auth/principal.ts';
import { may } from '../auth/service.ts';
import type { Config } from '../config.ts';
import { parseDuration } from '../domain/duration.ts';
import { compileFilter, filterError, type CompiledFilter } from '../domain/filter.ts';
import { idFloor, ulid } from '../domain/ids.ts';
import {
  CREDENTIAL_HEADERS,
  deliveryIdOf,
  eventTypeOf,
  globMatch,
  globPrefix,
  keepBody,
  mediaType,
  sourcePathProblem,
  type Provider,
  type Visibility,
} from '../domain/inbound.ts';
import { Problem } from '../errors.ts';
import type { Events } from '../events/events.ts';
import type { Metrics } from '../metrics.ts';
import type { OrgService } from '../orgs/service.ts';
import { GroupCommitter } from '../queue/group-commit.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import * as q from './store.ts';
import { verify, type FailureReason, type HmacOptions } from './verifiers/index.ts';

export type { EventRow, ReadScope, SourceKey, SourceRow, ConsumerRow, Candidate } from './store.ts';

/**
 * How far back (ms before now) a consumer's scan mark may be moved: an event whose id is older
 * than this when it commits could be missed by a consumer. Ids are made in the write batch, so
 * only a transaction stalled for longer (the database stalled without failing) could do that.
 */
export const CONSUMER_SCAN_SAFETY_MS = 60_000;
const SCAN_BATCH = 500;
/**
 * How long ingest reuses a source read by path. A change made on this node clears it at once; one
 * made on another node of a cluster (a rotated secret, a deleted source) is seen here within this.
 */
const SOURCE_CACHE_MS = 1_000;
const LONG_POLL_TICK_MS = 250;

/** What the repository read grant needs of GitHub sign-in (auth/oauth/service.ts). */
export interface GithubAccess {
  /** The GitHub organization (lower case) this organization is linked to, if any. */
  linkedOrg(workspaceId: string): Promise<string | undefined>;
  /** Whether the user's linked GitHub account can read owner/repo (cached at most 5 minutes). */
  canReadRepo(userId: string, owner: string, repo: string): Promise<boolean>;
}

export interface SourceInput {
  path: string;
  github_read?: boolean | undefined;
  provider: Provider;
  secrets?: string[] | undefined;
  hmac?: HmacOptions | undefined;
  visibility?: Visibility | undefined;
  owner?: string | undefined;
  retention?: string | undefined;
  event_type_path?: string | undefined;
  unsigned?: boolean | undefined;
}

export interface SourceView {
  id: string;
  path: string;
  provider: Provider;
  /** Masked: the count and the last 4 characters of each. */
  secrets: string[];
  hmac: HmacOptions | null;
  visibility: Visibility;
  owner: string | null;
  retention: number | null;
  event_type_path: string | null;
  /** "owner/repo" whose GitHub readers read this source's events; null: no grant. */
  github_repo: string | null;
  created_at: number;
  updated_at: number;
}

/** What ingest needs of a request. Header names lower case, single values. */
export interface HookRequest {
  path: string;
  /** The query string including "?", or "". */
  search: string;
  headers: Record<string, string | undefined>;
  body: Buffer;
  now?: number;
}

export type IngestResult =
  | { kind: 'stored'; id: string; received_at: number }
  | { kind: 'replay'; id: string; received_at: number }
  | { kind: 'challenge'; challenge: string };

export interface ConsumerFilter {
  path: string;
  types?: string[] | undefined;
  match?: Record<string, unknown> | undefined;
}

export interface ConsumerInput {
  filter: ConsumerFilter;
  ack_timeout?: string | undefined;
  max_deliveries?: number | undefined;
  /** Where a new consumer starts: after this event id; default: events received from now on. */
  after_id?: string | undefined;
  start?: 'now' | 'earliest' | undefined;
}

export interface ConsumerView {
  name: string;
  filter: ConsumerFilter;
  ack_timeout_ms: number;
  max_deliveries: number;
  created_at: number;
  updated_at: number;
}

export const DEFAULT_ACK_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_DELIVERIES = 5;

type EventDraft = Omit<q.EventRow, 'id' | 'received_at'>;

export class InboundService {
  readonly #store: StoreAdapter;
  readonly #secrets: SecretBox;
  readonly #events: Events;
  readonly #metrics: Metrics;
  readonly #config: Config;
  readonly #orgs: OrgService;
  readonly #github: GithubAccess | undefined;
  readonly #log: Logger;
  readonly #owner: string;
  readonly #commit: GroupCommitter<EventDraft, { id: string; received_at: number; created: boolean }>;
  /** Opened secrets by their sealed text (a sealed value never changes meaning). */
  readonly #opened = new Map<string, string[]>();
  /** Long-polls waiting, by organization. */
  readonly #waiting = new Map<string, Set<() => void>>();
  readonly #compiled = new Map<string, CompiledFilter>();
  /** Sources by path for ingest, each until its time (SOURCE_CACHE_MS). */
  readonly #byPath = new Map<string, { row: q.SourceRow; until: number }>();
  #unlisten: (() => void) | undefined;
  #stopping = false;

  constructor(opts: { store: StoreAdapter; secrets: SecretBox; events: Events; metrics: Metrics; config: Config; orgs: OrgService; github?: GithubAccess; log: Logger; owner: string }) {
    this.#store = opts.store;
    this.#secrets = opts.secrets;
    this.#events = opts.events;
    this.#metrics = opts.metrics;
    this.#config = opts.config;
    this.#orgs = opts.orgs;
    this.#github = opts.github;
    this.#log = opts.log;
    this.#owner = opts.owner;
    this.#commit = new GroupCommitter(
      (drafts) => {
        const now = Date.now();
        return q.insertEvents(
          this.#store,
          drafts.map((d) => ({ ...d, id: `evt_${ulid(now)}`, received_at: now })),
        );
      },
      { maxBatch: 256 },
    );
  }

  /** Listens for this organization's new events to end long-polls early (any node's, with Redis). */
  start(): void {
    this.#stopping = false;
    this.#unlisten ??= this.#events.listen({
      types: ['inbound.received'],
      onEvent: (e) => {
        if (e.type !== 'inbound.received') return;
        for (const wake of this.#waiting.get(e.workspace_id) ?? []) wake();
      },
    });
  }

  /** Answers long-polls now (with what they have) and makes new ones return at once: call before the server closes. */
  endLongPolls(): void {
    this.#stopping = true;
    for (const set of this.#waiting.values()) for (const wake of set) wake();
  }

  /** Ends long-polls and waits for ingests in flight to commit. */
  async stop(): Promise<void> {
    this.endLongPolls();
    this.#unlisten?.();
    this.#unlisten = undefined;
    await this.#commit.drain();
  }

  // Sources.

  async putSource(p: Principal, id: string, input: SourceInput): Promise<{ source: SourceView; created: boolean }> {
    const ws = p.workspaceId;
    const problems: { path: string; message: string }[] = [];
    const pathProblem = sourcePathProblem(input.path);
    if (pathProblem) problems.push({ path: 'body.path', message: pathProblem });
    const secrets = input.secrets ?? [];
    if (input.provider === 'none') {
      if (secrets.length > 0) problems.push({ path: 'body.secrets', message: 'must be absent for provider "none"' });
      if (input.unsigned !== true) problems.push({ path: 'body.unsigned', message: 'must be true for provider "none": it accepts unsigned webhooks from anyone who knows the path' });
    } else if (secrets.length === 0) problems.push({ path: 'body.secrets', message: `must list at least one secret for provider "${input.provider}"` });
    if (input.provider === 'hmac' && !input.hmac) problems.push({ path: 'body.hmac', message: 'is required for provider "hmac" (header, algorithm, encoding, prefix)' });
    if (input.provider !== 'hmac' && input.hmac) problems.push({ path: 'body.hmac', message: 'is only for provider "hmac"' });
    if (input.provider === 'standard') {
      for (const [i, s] of secrets.entries()) {
        const b64 = s.startsWith('whsec_') ? s.slice(6) : s;
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || Buffer.from(b64, 'base64').length < 16) problems.push({ path: `body.secrets.${i}`, message: 'must be whsec_ and the base64 of at least 16 bytes' });
      }
    }
    let retentionMs: number | null = null;
    if (input.retention !== undefined) {
      try {
        retentionMs = parseDuration(input.retention);
        if (retentionMs < 60_000 || retentionMs > 3650 * 86_400_000) throw new Error('must be from 1m to 3650d');
      } catch (err) {
        problems.push({ path: 'body.retention', message: (err as Error).message });
      }
    }
    let owner: string | null = input.owner ?? (p.kind === 'user' ? p.userId : null);
    if (input.owner !== undefined && !(await this.#orgs.roleOf(input.owner, ws))) problems.push({ path: 'body.owner', message: 'is not a member of this organization' });
    const visibility = input.visibility ?? 'org';
    if (visibility === 'private' && owner === null) problems.push({ path: 'body.owner', message: 'is required for a private source created with an API key' });
    let githubRepo: string | null = null;
    if (input.github_read === true) {
      const grant = await this.#githubRepoOf(ws, input.provider, input.path);
      if (typeof grant === 'string') githubRepo = grant;
      else problems.push({ path: 'body.github_read', message: grant.problem });
    }
    if (problems.length > 0) throw new Problem('validation_failed', problems.map((x) => `${x.path} ${x.message}`).join('; '), { errors: problems });

    const clash = await q.sourceByPath(this.#store.db, input.path);
    if (clash && !(clash.workspace_id === ws && clash.id === id)) throw new Problem('conflict', `The path ${input.path} is taken by another source`);
    const existing = await q.sourceById(this.#store.db, ws, id);
    const now = Date.now();
    owner ??= existing?.owner_id ?? null;
    const row: q.SourceRow = {
      workspace_id: ws,
      id,
      path: input.path,
      provider: input.provider,
      secrets: secrets.length > 0 ? this.#secrets.seal(JSON.stringify(secrets)) : null,
      options: input.hmac ? JSON.stringify({ ...input.hmac, header: input.hmac.header.toLowerCase() }) : null,
      visibility,
      owner_id: owner,
      retention_ms: retentionMs,
      event_type_path: input.event_type_path ?? null,
      github_repo: githubRepo,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    this.#byPath.clear();
    try {
      await q.upsertSource(this.#store.db, row);
    } catch (err) {
      // Another source took the path between the check and the write.
      if (/unique|duplicate/i.test(String((err as Error).message))) throw new Problem('conflict', `The path ${input.path} is taken by another source`);
      throw err;
    }
    return { source: this.#sourceView(row, secrets), created: !existing };
  }

  async getSource(ws: string, id: string): Promise<SourceView> {
    const row = await q.sourceById(this.#store.db, ws, id);
    if (!row) throw new Problem('not_found', `No source "${id}"`);
    return this.#sourceView(row, this.#open(row.secrets));
  }

  async listSources(ws: string, after: string | undefined, limit: number): Promise<SourceView[]> {
    return (await q.listSources(this.#store.db, ws, after, limit)).map((r) => this.#sourceView(r, this.#open(r.secrets)));
  }

  async deleteSource(ws: string, id: string): Promise<void> {
    this.#byPath.clear();
    if (!(await q.deleteSource(this.#store.db, ws, id))) throw new Problem('not_found', `No source "${id}"`);
  }

  #sourceView(r: q.SourceRow, secrets: readonly string[]): SourceView {
    return {
      id: r.id,
      path: r.path,
      provider: r.provider as Provider,
      secrets: secrets.map(maskSecret),
      hmac: r.options ? (JSON.parse(r.options) as HmacOptions) : null,
      visibility: r.visibility as Visibility,
      owner: r.owner_id,
      retention: r.retention_ms === null ? null : Number(r.retention_ms),
      event_type_path: r.event_type_path,
      github_repo: r.github_repo ?? null,
      created_at: Number(r.created_at),
      updated_at: Number(r.updated_at),
    };
  }

  /**
   * The repository a source's read grant names: its path's last two segments, `<owner>/<repo>`,
   * where owner is the GitHub organization this organization is linked to; a GitHub source only.
   */
  async #githubRepoOf(ws: string, provider: Provider, path: string): Promise<string | { problem: string }> {
    if (provider !== 'github') return { problem: 'is only for provider "github"' };
    const linked = await this.#github?.linkedOrg(ws);
    if (!linked) return { problem: 'needs the organization linked to a GitHub organization (PUT /v1/orgs/{org}/github)' };
    const segments = path.split('/').filter((x) => x !== '');
    const [owner, repo] = segments.slice(-2).map((x) => x.toLowerCase());
    if (segments.length < 2 || owner !== linked || !/^[a-z0-9_.-]{1,100}$/.test(repo!) || repo === '.' || repo === '..') {
      return { problem: `needs a path ending in /${linked}/<repository>, the linked GitHub organization and one of its repositories` };
    }
    return `${owner}/${repo}`;
  }

  /**
   * The sources whose GitHub repository grant admits the user now: the source's organization is
   * still linked to the repository's owner, and GitHub says the user can read the repository. A
   * failing GitHub check admits nothing (logged). `only`: check that source alone.
   */
  async #githubGrants(userId: string, only?: q.SourceKey): Promise<q.SourceKey[]> {
    const github = this.#github;
    if (!github) return [];
    const rows = (await q.githubGrantSources(this.#store.db)).filter((r) => !only || (r.workspace_id === only.workspaceId && r.id === only.sourceId));
    if (rows.length === 0) return [];
    const links = new Map<string, string | undefined>();
    for (const ws of new Set(rows.map((r) => r.workspace_id))) links.set(ws, await github.linkedOrg(ws));
    const grants: q.SourceKey[] = [];
    for (const r of rows) {
      const [owner, repo] = r.github_repo.split('/') as [string, string];
      if (links.get(r.workspace_id) !== owner) continue;
      const ok = await github.canReadRepo(userId, owner, repo).catch((err: unknown) => {
        this.#log.warn({ err, repo: r.github_repo }, 'GitHub repository check failed; no read granted');
        return false;
      });
      if (ok) grants.push({ workspaceId: r.workspace_id, sourceId: r.id });
    }
    return grants;
  }

  #open(sealed: string | null): string[] {
    if (sealed === null) return [];
    let v = this.#opened.get(sealed);
    if (!v) {
      v = JSON.parse(this.#secrets.open(sealed)) as string[];
      if (this.#opened.size > 10_000) this.#opened.clear();
      this.#opened.set(sealed, v);
    }
    return v;
  }

  // Ingest.

  async ingest(req: HookRequest): Promise<IngestResult> {
    const source = await this.#sourceAt(req.path);
    if (!source) throw new Problem('not_found', `No webhook source at ${req.path}`);
    const provider = source.provider as Provider;
    const contentType = req.headers['content-type'];
    const media = mediaType(contentType);
    let form: Record<string, string> = {};
    let payload: unknown = undefined;
    if (media === 'application/x-www-form-urlencoded' && isUtf8(req.body)) {
      form = Object.fromEntries(new URLSearchParams(req.body.toString('utf8')));
      payload = form;
    }
    const publicBase = this.#config.publicUrl ? this.#config.publicUrl.href.replace(/\/$/, '') : '';
    const verdict = verify(
      provider,
      { body: req.body, headers: req.headers, now: req.now ?? Date.now() },
      this.#open(source.secrets),
      { url: `${publicBase}/hooks${req.path}${req.search}`, form, hmac: source.options ? (JSON.parse(source.options) as HmacOptions) : undefined },
    );
    if (!verdict.ok) {
      this.#metrics.inboundRejected.inc({ source: source.id, reason: verdict.reason });
      throw signatureProblem(verdict.reason, provider);
    }
    if ((media === 'application/json' || media.endsWith('+json')) && isUtf8(req.body)) {
      try {
        payload = JSON.parse(req.body.toString('utf8'));
      } catch {
        payload = undefined; // signed but not JSON: kept as raw bytes
      }
    }
    if (provider === 'slack' && isObject(payload) && payload.type === 'url_verification' && typeof payload.challenge === 'string') {
      return { kind: 'challenge', challenge: payload.challenge };
    }
    const kept = keepBody(req.body, isUtf8);
    const headers: Record<string, string> = {};
    const hmacHeader = source.options ? (JSON.parse(source.options) as HmacOptions).header : undefined;
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !CREDENTIAL_HEADERS.has(k) && k !== hmacHeader) headers[k] = v;
    let payloadText = payload === undefined ? null : JSON.stringify(payload);
    if (payloadText !== null && payloadText.includes('\\u0000')) payloadText = null; // PostgreSQL text holds no NUL; the raw body keeps it
    const draft: EventDraft = {
      workspace_id: source.workspace_id,
      source_id: source.id,
      path: source.path,
      provider,
      event_type: eventTypeOf(provider, req.headers, payload, source.event_type_path),
      delivery_id: deliveryIdOf(provider, req.headers, payload),
      owner_id: source.owner_id,
      visibility: source.visibility,
      content_type: contentType ?? null,
      headers: JSON.stringify(headers),
      body: kept.body,
      body_encoding: kept.encoding,
      payload: payloadText,
      size: req.body.length,
    };
    const r = await this.#commit.submit(draft);
    if (!r.created) return { kind: 'replay', id: r.id, received_at: Number(r.received_at) };
    this.#metrics.inboundReceived.inc({ source: source.id });
    this.#events.emit([
      { type: 'inbound.received', at: r.received_at, workspace_id: draft.workspace_id, event_id: r.id, source_id: draft.source_id, path: draft.path, provider, event_type: draft.event_type, received_at: r.received_at },
    ]);
    return { kind: 'stored', id: r.id, received_at: r.received_at };
  }

  async #sourceAt(path: string): Promise<q.SourceRow | undefined> {
    const now = Date.now();
    const hit = this.#byPath.get(path);
    if (hit && hit.until > now) return hit.row;
    const row = await q.sourceByPath(this.#store.db, path);
    if (!row) {
      this.#byPath.delete(path);
      return undefined;
    }
    if (this.#byPath.size >= 10_000) this.#byPath.clear();
    this.#byPath.set(path, { row, until: now + SOURCE_CACHE_MS });
    return row;
  }

  // Events.

  /** One event by id, for other subsystems (subscriptions): no ACL; undefined when absent or of another organization. */
  async getEvent(workspaceId: string, id: string): Promise<q.EventRow | undefined> {
    const e = await q.eventById(this.#store.db, id);
    return e && e.workspace_id === workspaceId ? e : undefined;
  }

  /** Events of one organization in id order, for other subsystems: no ACL. */
  listEvents(workspaceId: string, f: q.EventFilter): Promise<q.EventRow[]> {
    return q.listEvents(this.#store.db, { kind: 'workspace', workspaceId }, f);
  }

  /** What `p` may read; undefined when nothing (a key without read). `grants`: false leaves GitHub grants out. */
  async readScope(p: Principal, grants = true): Promise<q.ReadScope | undefined> {
    if (p.kind === 'key') return may(p, 'read') ? { kind: 'workspace', workspaceId: p.workspaceId } : undefined;
    if (p.kind !== 'user') return undefined; // a recipient reads no inbound events
    return { kind: 'user', userId: p.userId, workspaceIds: await this.#orgs.organizationsOf(p.userId), sources: grants ? await this.#githubGrants(p.userId) : [] };
  }

  async browse(p: Principal, f: q.EventFilter): Promise<q.EventRow[]> {
    const scope = await this.readScope(p);
    if (!scope) throw new Problem('forbidden', 'This needs the "read" scope');
    return q.listEvents(this.#store.db, scope, f);
  }

  /** An event `p` may read; 404 otherwise, whether or not it exists. */
  async read(p: Principal, id: string): Promise<q.EventRow> {
    const e = await q.eventById(this.#store.db, id);
    const scope = await this.readScope(p, false);
    const admitted = async (s: q.ReadScope, ev: q.EventRow) =>
      readable(s, ev) || (s.kind === 'user' && (await this.#githubGrants(s.userId, { workspaceId: ev.workspace_id, sourceId: ev.source_id })).length > 0);
    if (!e || !scope || !(await admitted(scope, e))) throw new Problem('not_found', `No event "${id}"`);
    return e;
  }

  // Consumers.

  async putConsumer(p: Principal, name: string, input: ConsumerInput): Promise<{ consumer: ConsumerView; created: boolean }> {
    const ws = p.workspaceId;
    const problems: { path: string; message: string }[] = [];
    const path = input.filter.path;
    if (!/^\/[A-Za-z0-9_.\-/*]*$/.test(path) || path.length > 200) problems.push({ path: 'body.filter.path', message: 'must be a source path or a glob of one ("*" one segment, "**" any)' });
    if (input.filter.match !== undefined) {
      const err = filterError(input.filter.match);
      if (err) problems.push({ path: `body.filter.match${err.path ? `.${err.path}` : ''}`, message: err.reason });
    }
    let ackMs = DEFAULT_ACK_TIMEOUT_MS;
    if (input.ack_timeout !== undefined) {
      try {
        ackMs = parseDuration(input.ack_timeout);
        if (ackMs < 1000 || ackMs > 12 * 3_600_000) throw new Error('must be from 1s to 12h');
      } catch (err) {
        problems.push({ path: 'body.ack_timeout', message: (err as Error).message });
      }
    }
    if (problems.length > 0) throw new Problem('validation_failed', problems.map((x) => `${x.path} ${x.message}`).join('; '), { errors: problems });
    const existing = await q.consumerByName(this.#store.db, ws, name);
    const now = Date.now();
    const scannedTo = input.after_id ?? (input.start === 'earliest' ? 'evt_' : idFloor('evt', now - CONSUMER_SCAN_SAFETY_MS));
    const row: q.ConsumerRow = {
      workspace_id: ws,
      name,
      filter: JSON.stringify(input.filter),
      ack_timeout_ms: ackMs,
      max_deliveries: input.max_deliveries ?? DEFAULT_MAX_DELIVERIES,
      owner_id: existing ? existing.owner_id : p.kind === 'user' ? p.userId : null,
      scanned_to: existing?.scanned_to ?? scannedTo,
      created_at: existing ? Number(existing.created_at) : now,
      updated_at: now,
    };
    await q.upsertConsumer(this.#store.db, row);
    return { consumer: consumerView(row), created: !existing };
  }

  async #consumer(ws: string, name: string): Promise<q.ConsumerRow> {
    const c = await q.consumerByName(this.#store.db, ws, name);
    if (!c) throw new Problem('not_found', `No consumer "${name}"`);
    return c;
  }

  async getConsumer(ws: string, name: string, now = Date.now()): Promise<ConsumerView & { unacked: number; dead: number; oldest_unacked_age_ms: number | null; oldest_unacked_id: string | null }> {
    const c = await this.#consumer(ws, name);
    await this.#scan(c, Number.POSITIVE_INFINITY, now);
    const lag = await q.consumerLag(this.#store.db, ws, name);
    const oldestAt = lag.oldest ? (await q.eventById(this.#store.db, lag.oldest))?.received_at : undefined;
    return { ...consumerView(c), unacked: lag.unacked, dead: lag.dead, oldest_unacked_id: lag.oldest, oldest_unacked_age_ms: oldestAt === undefined ? null : Math.max(0, now - Number(oldestAt)) };
  }

  async deleteConsumer(ws: string, name: string): Promise<void> {
    if (!(await q.deleteConsumer(this.#store.db, ws, name))) throw new Problem('not_found', `No consumer "${name}"`);
  }

  /**
   * Up to `limit` of the consumer's due events, oldest first, each leased for its ack_timeout; when
   * none is due, waits up to `waitMs` for one.
   */
  async pull(ws: string, name: string, limit: number, waitMs: number): Promise<{ events: q.EventRow[]; deliveries: Map<string, number> }> {
    const c = await this.#consumer(ws, name);
    const until = Date.now() + waitMs;
    for (;;) {
      const now = Date.now();
      await this.#scan(c, SCAN_BATCH * 4, now);
      await q.deadLetterExhausted(this.#store.db, ws, name, c.max_deliveries, now);
      const claimed = await q.claimConsumerEvents(this.#store, { workspaceId: ws, name, maxDeliveries: c.max_deliveries }, this.#owner, limit, now, Number(c.ack_timeout_ms));
      if (claimed.length > 0) {
        const rows = await Promise.all(claimed.map((x) => q.eventById(this.#store.db, x.event_id)));
        return { events: rows.filter((r): r is q.EventRow => r !== undefined), deliveries: new Map(claimed.map((x) => [x.event_id, x.deliveries])) };
      }
      if (this.#stopping || Date.now() >= until) return { events: [], deliveries: new Map() };
      await this.#waitForEvent(ws, Math.min(LONG_POLL_TICK_MS * 4, until - Date.now()));
    }
  }

  async ack(ws: string, name: string, ids: readonly string[]): Promise<string[]> {
    await this.#consumer(ws, name);
    return q.ackConsumerEvents(this.#store.db, ws, name, ids, Date.now());
  }

  async nack(ws: string, name: string, ids: readonly string[], delayMs: number): Promise<string[]> {
    await this.#consumer(ws, name);
    const now = Date.now();
    return q.nackConsumerEvents(this.#store.db, ws, name, ids, now + delayMs, now);
  }

  async deadLetters(ws: string, name: string, limit: number): Promise<{ event_id: string; deliveries: number; updated_at: number }[]> {
    await this.#consumer(ws, name);
    return q.deadLetters(this.#store.db, ws, name, limit);
  }

  /** A consumer's compiled `match`, by its filter's text (undefined: none). */
  #match(filterText: string, filter: ConsumerFilter): CompiledFilter | undefined {
    if (filter.match === undefined) return undefined;
    let m = this.#compiled.get(filterText);
    if (!m) {
      m = compileFilter(filter.match);
      if (this.#compiled.size > 1000) this.#compiled.clear();
      this.#compiled.set(filterText, m);
    }
    return m;
  }

  /**
   * Considers events received since the consumer's scan mark (at most `max`): a row for each,
   * pending when the filter takes it (path glob, then `match` over the document {payload,
   * headers, path, type, source}, the filter language of domain/filter.ts), skipped when it does
   * not; then moves the mark to the older of the last event considered and
   * now - CONSUMER_SCAN_SAFETY_MS.
   */
  async #scan(c: q.ConsumerRow, max: number, now: number): Promise<void> {
    const filter = JSON.parse(c.filter) as ConsumerFilter;
    const match = this.#match(c.filter, filter);
    const takes = (e: q.Candidate) =>
      globMatch(filter.path, e.path) &&
      (!match || match.matches({ payload: e.payload === null ? null : (JSON.parse(e.payload) as unknown), headers: JSON.parse(e.headers) as unknown, path: e.path, type: e.event_type, source: e.source_id }));
    const boundary = idFloor('evt', now - CONSUMER_SCAN_SAFETY_MS);
    let considered = 0;
    for (;;) {
      const batch = await q.unscannedEvents(
        this.#store.db,
        { workspaceId: c.workspace_id, name: c.name, scannedTo: c.scanned_to, pathPrefix: globPrefix(filter.path), types: filter.types, ownerId: c.owner_id },
        SCAN_BATCH,
      );
      await q.addConsumerEvents(
        this.#store.db,
        batch.map((e) => ({
          workspace_id: c.workspace_id,
          consumer: c.name,
          event_id: e.id,
          state: takes(e) ? ('pending' as const) : ('skipped' as const),
          due_at: now,
          deliveries: 0,
          owner: null,
          updated_at: now,
        })),
      );
      considered += batch.length;
      const complete = batch.length < SCAN_BATCH;
      const last = batch.at(-1)?.id;
      const mark = complete ? boundary : last! < boundary ? last! : boundary;
      if (mark > c.scanned_to) {
        await q.advanceScan(this.#store.db, c.workspace_id, c.name, mark);
        c.scanned_to = mark;
      }
      if (complete || considered >= max) return;
    }
  }

  #waitForEvent(ws: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(ws);
      if (!set) this.#waiting.set(ws, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.#waiting.delete(ws);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      set.add(done);
    });
  }

  // Retention and metrics.

  /** Deletes up to `limit` expired events; returns how many. */
  async purgeExpired(limit: number, now = Date.now()): Promise<number> {
    const r = await q.purgeExpired(this.#store.db, now, this.#config.eventRetention, limit);
    if (r.deleted > 0) this.#metrics.inboundPurged.inc(r.deleted);
    return r.deleted;
  }

  /** Sets the sampled gauges (stored events and bytes, consumer lag); called at scrape. */
  async sampleMetrics(now = Date.now()): Promise<void> {
    this.#metrics.inboundStoredBytes.reset();
    this.#metrics.inboundStoredEvents.reset();
    for (const r of await q.storedTotals(this.#store.db)) {
      this.#metrics.inboundStoredBytes.set({ workspace: r.workspace_id }, Number(r.bytes ?? 0));
      this.#metrics.inboundStoredEvents.set({ workspace: r.workspace_id }, Number(r.count));
    }
    this.#metrics.consumerLag.reset();
    this.#metrics.consumerOldest.reset();
    for (const c of await q.listConsumers(this.#store.db)) {
      const lag = await q.consumerLag(this.#store.db, c.workspace_id, c.name);
      this.#metrics.consumerLag.set({ workspace: c.workspace_id, consumer: c.name }, lag.unacked);
      const oldestAt = lag.oldest ? (await q.eventById(this.#store.db, lag.oldest))?.received_at : undefined;
      this.#metrics.consumerOldest.set({ workspace: c.workspace_id, consumer: c.name }, oldestAt === undefined ? 0 : Math.max(0, (now - Number(oldestAt)) / 1000));
    }
  }

  get log(): Logger {
    return this.#log;
  }
}

/** Whether `scope` may read `e` (the SQL of store.ts listEvents, for one event). */
export function readable(scope: q.ReadScope, e: Pick<q.EventRow, 'workspace_id' | 'source_id' | 'visibility' | 'owner_id'>): boolean {
  if (scope.kind === 'workspace') return e.workspace_id === scope.workspaceId;
  return (
    e.visibility === 'public' ||
    e.owner_id === scope.userId ||
    (scope.workspaceIds.includes(e.workspace_id) && e.visibility !== 'private') ||
    scope.sources.some((g) => g.workspaceId === e.workspace_id && g.sourceId === e.source_id)
  );
}

function consumerView(c: q.ConsumerRow): ConsumerView {
  return { name: c.name, filter: JSON.parse(c.filter) as ConsumerFilter, ack_timeout_ms: Number(c.ack_timeout_ms), max_deliveries: Number(c.max_deliveries), created_at: Number(c.created_at), updated_at: Number(c.updated_at) };
}

/** A secret as answers show it: never more than its last 4 characters. */
export function maskSecret(s: string): string {
  return s.length <= 8 ? '****' : `****${s.slice(-4)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function signatureProblem(reason: FailureReason, provider: Provider): Problem {
  const detail = {
    missing: `The ${provider} signature header is missing`,
    malformed: `The ${provider} signature header is not in the provider's format`,
    stale: `The ${provider} signature's timestamp is outside the allowed window`,
    mismatch: `The ${provider} signature does not match the body with any of the source's secrets`,
  }[reason];
  return new Problem('signature_failed', detail, { extensions: { reason } });
}
