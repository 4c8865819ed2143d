// Identifiers: a type prefix and a ULID (48-bit millisecond time + 80 random bits, Crockford base32).
// Ids of one kind sort by creation time, so `ORDER BY id` is creation order and keyset cursors need
// no second column. Within one millisecond the random part is incremented, so ids made by one
// process are strictly increasing.

import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

// Random bytes are drawn from a pool refilled 4 KiB at a time: one randomFillSync per 409 ids
// instead of one per id.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomChunk(): Buffer {
  if (poolOffset + 10 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 10;
  return pool.subarray(poolOffset - 10, poolOffset);
}

let lastTime = -1;
const lastRandom = new Uint8Array(10);

function encode(time: number, random: Uint8Array): string {
  let out = '';
  let t = time;
  for (let i = 9; i >= 0; i--) {
    out = ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  // 80 random bits -> 16 base32 characters, 5 bits at a time.
  let bits = 0;
  let acc = 0;
  for (const byte of random) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

export function ulid(now = Date.now()): string {
  if (now <= lastTime) {
    // Same (or earlier, if the clock stepped back) millisecond: increment the random part.
    for (let i = lastRandom.length - 1; i >= 0; i--) {
      if (lastRandom[i]! < 255) {
        lastRandom[i]!++;
        break;
      }
      lastRandom[i] = 0;
    }
    return encode(lastTime, lastRandom);
  }
  lastTime = now;
  lastRandom.set(randomChunk());
  lastRandom[0]! &= 0x7f; // leave room to increment without overflowing within a millisecond
  return encode(now, lastRandom);
}

/** The smallest id of `prefix` made at `time` or later: a bound for id ranges by time. */
export function idFloor(prefix: IdPrefix, time: number): string {
  return `${prefix}_${encode(Math.max(0, Math.floor(time)), new Uint8Array(10))}`;
}

export type IdPrefix = 'ntf' | 'dlv' | 'att' | 'key' | 'ws' | 'aud' | 'job' | 'dev' | 'dig' | 'usr' | 'ses' | 'evt' | 'inv' | 'acm' | 'sub' | 'run' | 'msg';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}

const ORDINAL_WIDTH = 3;
const ORDINAL_LIMIT = 32 ** ORDINAL_WIDTH;

/**
 * A delivery id inside its notification's key range (store/delivery-keys.ts): `dlv_`, the
 * notification id without its 4-character prefix (`ntf_`), then a suffix unique within the
 * notification. With `ordinal` (the delivery's index among the deliveries its notification is
 * accepted with; one accept per notification id) the suffix is that number in 3 Crockford base32
 * digits: `dlv_<notification ULID>000`, 33 characters. Without it (deliveries added later: topic
 * fan-out batches, fallbacks), or past 32,767, it is `_` and a new ULID, which sorts after every
 * ordinal (`_` follows the digits and capitals bytewise). So a notification's deliveries sort in
 * the order they were made, and a primary-key range scan finds them all.
 */
export function deliveryId(notificationId: string, ordinal?: number): string {
  const prefix = `dlv_${notificationId.slice(4)}`;
  if (ordinal === undefined || ordinal < 0 || ordinal >= ORDINAL_LIMIT || !Number.isInteger(ordinal)) return `${prefix}_${ulid()}`;
  let out = '';
  for (let i = 0, n = ordinal; i < ORDINAL_WIDTH; i++, n = Math.floor(n / 32)) out = ALPHABET[n % 32]! + out;
  return prefix + out;
}

/** The creation time encoded in an id made by newId, or undefined if it is not one. */
export function idTime(id: string): number | undefined {
  const m = /^[a-z]+_([0-9A-HJKMNP-TV-Z]{26})$/.exec(id);
  if (!m) return undefined;
  let t = 0;
  for (const c of m[1]!.slice(0, 10)) t = t * 32 + ALPHABET.indexOf(c);
  return t;
}
