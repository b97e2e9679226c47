// Denied access tokens (DESIGN §4: logout denies the current token's jti until it expires;
// the deny list is what refuses a revoked service token, which has no session). An entry
// lives only as long as its token could still verify, so the list never outgrows the tokens
// in circulation.
//
// PostgreSQL holds the list (table denied_tokens), Redis caches the answers: a Redis restart
// without persistence, or a flush, must not bring a revoked token back (issue 15). The cache
// holds "1" (denied, until the token's expiry) or "0" (not denied, for NOT_DENIED_CACHE_SECONDS);
// deny() overwrites a "0" at once, so a denial takes effect on every instance immediately,
// or within NOT_DENIED_CACHE_SECONDS if Redis could not be written when it was made. With
// Redis unreachable the list is read from PostgreSQL directly.
import type { RedisClient } from "../store/redis.js";
import type { Sequelize } from "sequelize";
import { queryPrepared } from "../store/index.js";
import { withStoreFallback } from "../store/store-errors.js";

export interface DenyList {
  /** Refuses the token `jti` until `expiresAtEpochSeconds` (its exp). Durable once it resolves. */
  deny(jti: string, expiresAtEpochSeconds: number): Promise<void>;
  isDenied(jti: string): Promise<boolean>;
}

/** Kept past exp: covers the verifier's clock tolerance and clock drift between instances and Redis. */
const MARGIN_SECONDS = 60;
/** How long Redis remembers that a jti is not denied. */
export const NOT_DENIED_CACHE_SECONDS = 60;

const keyOf = (jti: string): string => `denied-jti:${jti}`;

/** `redis` carries the process's key prefix already. */
export function createDenyList({ sequelize, redis }: { sequelize: Sequelize; redis: RedisClient }): DenyList {
  return {
    async deny(jti, expiresAtEpochSeconds) {
      const until = Math.ceil(expiresAtEpochSeconds) + MARGIN_SECONDS;
      if (until <= Math.floor(Date.now() / 1000)) return; // the token no longer verifies anyway
      // Expired rows go as new ones come (the index on expires_at keeps that cheap).
      await queryPrepared(
        sequelize,
        `WITH purged AS (DELETE FROM denied_tokens WHERE expires_at < now())
         INSERT INTO denied_tokens (jti, expires_at) VALUES ($1, to_timestamp($2))
         ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(denied_tokens.expires_at, EXCLUDED.expires_at)`,
        [jti, until],
      );
      await withStoreFallback(() => redis.set(keyOf(jti), "1", "EXAT", until), null);
    },

    async isDenied(jti) {
      const cached = await withStoreFallback(() => redis.get(keyOf(jti)), null);
      if (cached !== null) return cached === "1";
      const rows = await queryPrepared<{ until: string }>(sequelize, "SELECT extract(epoch FROM expires_at)::bigint AS until FROM denied_tokens WHERE jti = $1 AND expires_at > now()", [jti]);
      const denied = rows.length > 0;
      // NX: a deny() that wrote "1" meanwhile wins over this older "not denied".
      if (denied) await withStoreFallback(() => redis.set(keyOf(jti), "1", "EXAT", Number(rows[0]!.until)), null);
      else await withStoreFallback(() => redis.set(keyOf(jti), "0", "EX", NOT_DENIED_CACHE_SECONDS, "NX"), null);
      return denied;
    },
  };
}
