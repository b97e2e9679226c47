// Random bytes for the hot paths, taken from a pool that is refilled from the operating
// system's CSPRNG 4 kB at a time. crypto.randomBytes() makes one getrandom system call per
// call, and a system call costs 20–100 µs on the bench machines: the IV of the grace cache
// alone was 4.6 % of a refresh's service time (bench/RESULTS.md, S23). Node's randomUUID()
// pools its randomness the same way.
import { randomBytes, randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
/** Requests larger than this go to the CSPRNG directly. */
const MAX_POOLED = 256;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `size` random bytes, fresh for this caller: each pooled byte is handed out once, then wiped. */
export function pooledRandomBytes(size: number): Buffer {
  if (size > MAX_POOLED) return randomBytes(size);
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + size));
  pool.fill(0, offset, offset + size);
  offset += size;
  return out;
}
