// Push devices of recipients: register (a token registered again, by anyone, moves to its newest
// owner), list, remove, and disable one a vendor reported gone.

import type { Kysely } from 'kysely';
import type { Database, DevicesTable } from '../store/schema.ts';
import { deleteDevice, disableDevice, listDevices, registerDevice } from './store.ts';

export class DeviceService {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  register(row: DevicesTable): Promise<{ device: DevicesTable; created: boolean; movedFrom: string | null }> {
    return registerDevice(this.#db, row);
  }

  list(workspaceId: string, recipientId: string): Promise<DevicesTable[]> {
    return listDevices(this.#db, workspaceId, recipientId);
  }

  delete(workspaceId: string, recipientId: string, id: string): Promise<boolean> {
    return deleteDevice(this.#db, workspaceId, recipientId, id);
  }

  /** True when the device was enabled and is now disabled. */
  disable(id: string, reason: string, now: number): Promise<boolean> {
    return disableDevice(this.#db, id, reason, now);
  }
}
