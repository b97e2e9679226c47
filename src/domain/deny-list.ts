// Denied access tokens (DESIGN §4: logout denies the current token's jti until it
// expires). An entry lives only as long as its token could still verify, so the list
// never outgrows the tokens in circulation, and every instance sees it through Redis.
import type { Redis } from "ioredis";

export interface DenyList {
  /** Refuses the token `jti` until `expiresAtEpochSeconds` (its exp). */
  deny(jti: string, expiresAtEpochSeconds: number): Promise<void>;
  isDenied(jti: string): Promise<boolean>;
}

/** Kept past exp: covers the verifier's clock tolerance and clock drift between instances and Redis. */
const MARGIN_SECONDS = 60;

const keyOf = (jti: string): string => `denied-jti:${jti}`;

/** `redis` carries the process's key prefix already. */
export function createDenyList(redis: Redis): DenyList {
  return {
    async deny(jti, expiresAtEpochSeconds) {
      const until = Math.ceil(expiresAtEpochSeconds) + MARGIN_SECONDS;
      if (until <= Math.floor(Date.now() / 1000)) return; // the token no longer verifies anyway
      await redis.set(keyOf(jti), "1", "EXAT", until);
    },
    async isDenied(jti) {
      return (await redis.exists(keyOf(jti))) === 1;
    },
  };
}
