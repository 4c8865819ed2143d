// Topics of a workspace: named sets of recipients a notification can be sent to (the fan-out is
// queue/fanout.ts). Create or rename, list, read with the member count, delete (with its
// memberships), and change and list members.

import type { Kysely } from 'kysely';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database, TopicsTable } from '../store/schema.ts';
import { addMembers, countMembers, deleteTopic, existingRecipientIds, getTopic, listMembers, listTopics, removeMembers, upsertTopic, type TopicMember } from './store.ts';

export type { TopicMember } from './store.ts';

export class TopicService {
  readonly #store: StoreAdapter;
  readonly #db: Kysely<Database>;

  constructor(store: StoreAdapter) {
    this.#store = store;
    this.#db = store.db;
  }

  /** Creates the topic or renames it; `created` tells which. */
  put(workspaceId: string, key: string, name: string | null): Promise<{ topic: TopicsTable; created: boolean }> {
    return upsertTopic(this.#db, workspaceId, key, name);
  }

  get(workspaceId: string, key: string): Promise<TopicsTable | undefined> {
    return getTopic(this.#db, workspaceId, key);
  }

  /** By key, keyset-paged after `after`. */
  list(workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<TopicsTable[]> {
    return listTopics(this.#db, workspaceId, q);
  }

  /** Deletes the topic and its memberships; false when there is none. */
  delete(workspaceId: string, key: string): Promise<boolean> {
    return deleteTopic(this.#store, workspaceId, key);
  }

  countMembers(workspaceId: string, key: string): Promise<number> {
    return countMembers(this.#db, workspaceId, key);
  }

  /** Which of `ids` are recipients of the workspace. */
  existingRecipients(workspaceId: string, ids: readonly string[]): Promise<Set<string>> {
    return existingRecipientIds(this.#db, workspaceId, ids);
  }

  /** How many of `ids` became members (those already members are not counted). */
  addMembers(workspaceId: string, key: string, ids: readonly string[]): Promise<number> {
    return addMembers(this.#db, workspaceId, key, ids);
  }

  /** How many of `ids` stopped being members. */
  removeMembers(workspaceId: string, key: string, ids: readonly string[]): Promise<number> {
    return removeMembers(this.#db, workspaceId, key, ids);
  }

  /** Members by recipient id, keyset-paged after `after`. */
  listMembers(workspaceId: string, key: string, q: { after?: string | undefined; limit: number }): Promise<TopicMember[]> {
    return listMembers(this.#db, workspaceId, key, q);
  }
}
