// Direct messages between recipients of one organization (docs/realtime.md).
//
// Contract of send(): refused ('off') unless the organization's real-time settings allow direct
// messages; otherwise the message is stored once per (sender, client_id): a retry answers the
// stored message with created false, so the gateway acknowledges it again without delivering or
// pushing it twice. A created message whose target has no live session is handed to `push`
// (a notification of kind `message` through the normal pipeline); a failing push is logged, the
// message stays stored.

import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../store/schema.ts';
import { newId } from '../domain/ids.ts';
import { conversation, getSettings, putMessage, type MessageRow } from './store.ts';

export interface MessageView {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly client_id: string;
  readonly created_at: string;
}

export function messageView(r: MessageRow): MessageView {
  return { id: r.id, from: r.sender_id, to: r.target_id, body: r.body, client_id: r.client_id, created_at: new Date(r.created_at).toISOString() };
}

export class MessageService {
  readonly #db: Kysely<Database>;
  readonly #push: (workspaceId: string, m: MessageRow) => Promise<unknown>;
  readonly #log: Logger;

  constructor(deps: { db: Kysely<Database>; push: (workspaceId: string, m: MessageRow) => Promise<unknown>; log: Logger }) {
    this.#db = deps.db;
    this.#push = deps.push;
    this.#log = deps.log;
  }

  async send(workspaceId: string, from: string, to: string, body: string, clientId: string): Promise<'off' | { row: MessageRow; created: boolean }> {
    const settings = await getSettings(this.#db, workspaceId);
    if (settings?.direct_messages !== 1) return 'off';
    return putMessage(this.#db, { id: newId('msg'), workspace_id: workspaceId, sender_id: from, target_id: to, client_id: clientId, body, created_at: Date.now() });
  }

  /** Pushes a message to its offline target; never rejects. */
  async pushOffline(workspaceId: string, m: MessageRow): Promise<void> {
    try {
      await this.#push(workspaceId, m);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, message: m.id }, 'direct message push failed');
    }
  }

  /** The conversation of `me` with `peer`, newest first; `next` pages on to older messages. */
  async history(workspaceId: string, me: string, peer: string, before: string | undefined, limit: number): Promise<{ data: MessageView[]; next: string | null }> {
    const rows = await conversation(this.#db, workspaceId, me, peer, before, limit + 1);
    const page = rows.slice(0, limit);
    return { data: page.map(messageView), next: rows.length > limit ? page.at(-1)!.id : null };
  }
}
