/**
 * Data patterns for preparing and checking guest memory and disks.
 *
 *   zero    all bytes 0
 *   random  pseudo-random bytes from a seed (xorshift32): the same seed, the same bytes
 *   stamp   every 8-byte word holds its own address as a little-endian u64: the guest physical
 *           address in guest memory, the byte offset on a disk. Misplaced data then says where
 *           it came from.
 *
 * `patternBytes(pattern, seed, address, len)` gives the bytes a pattern puts at `address`, so a
 * fill and a later check agree for any sub-range. Random bytes depend on the address too (a
 * random fill of pages 4-5 equals the same fill's bytes 0x4000.. of pages 0-9).
 */
import { InvalidInputError } from "./errors";

export type PatternName = "zero" | "random" | "stamp";
export const PATTERNS: readonly PatternName[] = ["zero", "random", "stamp"];

const STAMP_WORD = 8;

/** The bytes `pattern` holds at addresses `[address, address+len)`. */
export function patternBytes(pattern: PatternName, seed: number, address: number, len: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(len);
  switch (pattern) {
    case "zero":
      return bytes;
    case "random":
      for (let i = 0; i < len; i++) bytes[i] = randomByte(seed, address + i);
      return bytes;
    case "stamp": {
      // Whole words from the one the range starts in, then the range's slice of them.
      const first = Math.floor(address / STAMP_WORD) * STAMP_WORD;
      const words = new DataView(new ArrayBuffer(Math.ceil((address + len - first) / STAMP_WORD) * STAMP_WORD));
      for (let at = 0; at < words.byteLength; at += STAMP_WORD) {
        const value = first + at;
        words.setUint32(at, value >>> 0, true);
        words.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
      }
      bytes.set(new Uint8Array(words.buffer, address - first, len));
      return bytes;
    }
    default:
      throw new InvalidInputError(`unknown pattern ${JSON.stringify(pattern)} (zero, random, stamp)`);
  }
}

/** A byte of the random pattern: a hash of (seed, address), so any sub-range is reproducible. */
function randomByte(seed: number, address: number): number {
  let x = (Math.imul(address >>> 0, 0x9e3779b1) ^ Math.imul(Math.floor(address / 2 ** 32), 0x85ebca6b) ^ Math.imul(seed | 0, 0xc2b2ae35)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x & 0xff;
}

/**
 * For a mismatch inside stamped data: the address the found bytes were stamped with, read from
 * the whole 8-byte word around offset `at` of `bytes` (whose first byte is at `address`), or
 * null when the word is not all there or is not a stamp a range of `limit` bytes could hold.
 */
export function stampAt(bytes: Uint8Array, address: number, at: number, limit: number): number | null {
  const wordStart = Math.floor((address + at) / STAMP_WORD) * STAMP_WORD - address;
  if (wordStart < 0 || wordStart + STAMP_WORD > bytes.length) return null;
  const value = new DataView(bytes.buffer, bytes.byteOffset + wordStart, STAMP_WORD).getBigUint64(0, true);
  if (value % BigInt(STAMP_WORD) !== 0n || value >= BigInt(limit)) return null;
  return Number(value) + ((address + at) % STAMP_WORD);
}
