// Topics: named audiences. A send `to: {topic}` fans out to every member, in batches.
//   PUT    /v1/topics/{key}           {name?}: create (201) or rename (200) (send scope)
//   GET    /v1/topics                 list by key, keyset-paged (read scope)
//   GET    /v1/topics/{key}           one, with its member count (read scope)
//   DELETE /v1/topics/{key}           the topic and its memberships (send scope)
//   POST   /v1/topics/{key}/members   {add?: [id…], remove?: [id…]} at most 1000 each (send scope);
//                                     every id added must be a recipient (else 422
//                                     unknown_recipients listing them, and nothing changes);
//                                     adding a member or removing a non-member is a no-op
//   GET    /v1/topics/{key}/members   recipient ids in order, keyset-paged (read scope)
// Deleting a recipient does not delete its memberships by itself: see topics/store.ts
// removeRecipientFromTopics.

import { Type, type Static } from 'typebox';
import { Problem, type FieldError } from '../errors.ts';
import type { TopicsTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, keyPageOf, keyPageRequest, Limit, problems, RecipientId, TOPIC_KEY_PATTERN, TopicKey } from '../http/schemas.ts';


const RECIPIENT_ID = new RegExp((RecipientId as unknown as { pattern: string }).pattern);

/** The most ids one members request may add, and remove. */
export const MAX_MEMBER_CHANGES = 1000;

const TopicView = Type.Object({
  key: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const TopicWithCount = Type.Object({ ...TopicView.properties, member_count: Type.Integer() });

const Params = Type.Object({ key: TopicKey });
const PageQuery = Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false });
const Ids = Type.Array(RecipientId, { maxItems: MAX_MEMBER_CHANGES });

const view = (t: TopicsTable): Static<typeof TopicView> => ({ key: t.key, name: t.name, created_at: iso(t.created_at)!, updated_at: iso(t.updated_at)! });

function topicRoutes(app: Api, s: Services): void {
  const mustExist = async (ws: string, key: string) => {
    const topic = await s.topics.get(ws, key);
    if (!topic) throw new Problem('not_found', `No topic "${key}"`);
    return topic;
  };

  app.put(
    '/topics/:key',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Create or rename a topic',
        tags: ['topics'],
        params: Params,
        body: Type.Object({ name: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])) }, { additionalProperties: false }),
        response: { 200: TopicWithCount, 201: TopicWithCount, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      const { topic, created } = await s.topics.put(ws, request.params.key, request.body.name ?? null);
      const member_count = created ? 0 : await s.topics.countMembers(ws, topic.key);
      return reply.code(created ? 201 : 200).send({ ...view(topic), member_count });
    },
  );

  app.get(
    '/topics',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List topics',
        tags: ['topics'],
        querystring: PageQuery,
        response: { 200: Type.Object({ data: Type.Array(TopicView), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403) },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, new RegExp(TOPIC_KEY_PATTERN));
      const rows = await s.topics.list(request.principal.workspaceId, { after, limit: limit + 1 });
      const page = keyPageOf(rows, limit, (t) => t.key);
      return { data: page.rows.map(view), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/topics/:key',
    {
      config: { scope: 'read' },
      schema: { summary: 'Read a topic and its member count', tags: ['topics'], params: Params, response: { 200: TopicWithCount, ...problems(401, 403, 404) } },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const topic = await mustExist(ws, request.params.key);
      return { ...view(topic), member_count: await s.topics.countMembers(ws, topic.key) };
    },
  );

  app.delete(
    '/topics/:key',
    {
      config: { scope: 'send' },
      schema: { summary: 'Delete a topic and its memberships', tags: ['topics'], params: Params, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      if (!(await s.topics.delete(request.principal.workspaceId, request.params.key))) throw new Problem('not_found', `No topic "${request.params.key}"`);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/topics/:key/members',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Add and remove members',
        tags: ['topics'],
        params: Params,
        body: Type.Object({ add: Type.Optional(Ids), remove: Type.Optional(Ids) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            added: Type.Integer({ description: 'Recipients that were not members before' }),
            removed: Type.Integer({ description: 'Recipients that were members before' }),
            member_count: Type.Integer(),
          }),
          ...problems(401, 403, 404, 422),
        },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const add = request.body.add ?? [];
      const remove = request.body.remove ?? [];
      const adding = new Set(add);
      const errors: FieldError[] = [];
      remove.forEach((id, i) => {
        if (adding.has(id)) errors.push({ path: `body.remove.${i}`, message: `"${id}" is also in add` });
      });
      if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
      const topic = await mustExist(ws, request.params.key);
      const known = await s.topics.existingRecipients(ws, add);
      const unknown = [...adding].filter((id) => !known.has(id));
      if (unknown.length) {
        throw new Problem('unknown_recipients', `Unknown recipients: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ', …' : ''}`, { extensions: { recipients: unknown } });
      }
      const added = await s.topics.addMembers(ws, topic.key, add);
      const removed = await s.topics.removeMembers(ws, topic.key, remove);
      return { added, removed, member_count: await s.topics.countMembers(ws, topic.key) };
    },
  );

  app.get(
    '/topics/:key/members',
    {
      config: { scope: 'read' },
      schema: {
        summary: "List a topic's members",
        tags: ['topics'],
        params: Params,
        querystring: PageQuery,
        response: {
          200: Type.Object({
            data: Type.Array(Type.Object({ recipient: Type.String(), added_at: Type.String() })),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problems(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const { after, limit } = keyPageRequest(request.query, RECIPIENT_ID);
      const topic = await mustExist(ws, request.params.key);
      const rows = await s.topics.listMembers(ws, topic.key, { after, limit: limit + 1 });
      const page = keyPageOf(rows, limit, (m) => m.recipient_id);
      return { data: page.rows.map((m) => ({ recipient: m.recipient_id, added_at: iso(m.added_at)! })), next_cursor: page.next_cursor };
    },
  );
}

export const topicsModule: RouteModule = { name: 'topics', prefix: '/v1', auth: 'principal', apiRole: true, routes: topicRoutes };
