// The bench's own stores: its PostgreSQL database (created and migrated like the service
// does it), the seeded user population, and its Redis key prefix.
import { Redis } from "ioredis";
import { deleteKeysMatching } from "../src/store/redis.js";
import pg from "pg";
import { createLogger } from "../src/logger.js";
import { ensureDatabase, openDatabase } from "../src/store/database.js";
import { migrate } from "../src/store/migrate.js";
import { MAX_USERS, TEST_PHONE_PREFIX } from "./users.js";

const SEED_BATCH = 100_000;
const INSUFFICIENT_PRIVILEGE = "42501";

async function withClient<T>(databaseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates the database when missing and applies the service's migrations. */
export async function prepareDatabase(databaseUrl: string): Promise<void> {
  await ensureDatabase(databaseUrl);
  const sequelize = openDatabase({ databaseUrl }, createLogger("warn"));
  try {
    await migrate(sequelize, createLogger("warn"));
  } finally {
    await sequelize.close();
  }
}

export interface TableSizes {
  users: number;
  sessions: number;
  auditLogs: number;
}

export function tableSizes(databaseUrl: string): Promise<TableSizes> {
  return withClient(databaseUrl, async (c) => {
    const { rows } = await c.query<{ users: string; sessions: string; audit: string }>(
      "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM user_audit_logs) AS audit",
    );
    const r = rows[0]!;
    return { users: Number(r.users), sessions: Number(r.sessions), auditLogs: Number(r.audit) };
  });
}

/**
 * Empties every table and seeds users 1 … `count` (phone numbers of bench/users.ts), each
 * with the rows a real account has — profile, points wallet, a past (revoked) session and its
 * audit row — so every table the hot paths read grows with the population. One INSERT … SELECT
 * over generate_series per batch of 100,000 users, then VACUUM (ANALYZE) and a CHECKPOINT.
 */
export async function seedUsers(databaseUrl: string, count: number, onProgress: (done: number) => void): Promise<void> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_USERS) throw new Error(`--seed-users: 1 … ${MAX_USERS}`);
  await withClient(databaseUrl, async (c) => {
    const { rows } = await c.query<{ name: string }>("SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'");
    await c.query(`TRUNCATE ${rows.map((r) => r.name).join(", ")}`);
    for (let first = 1; first <= count; first += SEED_BATCH) {
      const last = Math.min(count, first + SEED_BATCH - 1);
      await c.query(
        `WITH u AS (
           INSERT INTO users (username, phone_number, date_joined, last_login)
           SELECT 'bench_' || i, $3 || lpad(i::text, 7, '0'), now() - interval '90 days', now() - interval '1 day'
             FROM generate_series($1::int, $2::int) AS i
           RETURNING id
         ), profiles AS (
           INSERT INTO user_profiles (user_id) SELECT id FROM u
         ), points AS (
           INSERT INTO user_points (user_id) SELECT id FROM u
         ), s AS (
           INSERT INTO sessions (user_id, refresh_seed, created_at, last_used_at, expires_at, revoked_at, revoked_reason)
           SELECT id, md5(id::text), now() - interval '60 days', now() - interval '30 days', now() + interval '1 day', now() - interval '30 days', 'logout' FROM u
           RETURNING id, user_id
         )
         INSERT INTO user_audit_logs (user_id, action, entity_type, entity_id, session_id, created_at)
         SELECT user_id, 'session.created', 'session', id::text, id, now() - interval '60 days' FROM s`,
        [first, last, TEST_PHONE_PREFIX],
      );
      onProgress(last);
    }
    // Runs start from a settled database: statistics and visibility maps up to date (no
    // autovacuum kicking in during a row) and the load's dirty pages written out.
    await c.query("VACUUM (ANALYZE)");
    await c.query("CHECKPOINT").catch((err: { code?: string }) => {
      if (err.code !== INSUFFICIENT_PRIVILEGE) throw err;
    });
  });
}

/** Deletes every key under `prefix`, so each run starts with fresh OTP state and limits. */
export async function clearRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    return await deleteKeysMatching(redis, `${prefix}*`);
  } finally {
    redis.disconnect();
  }
}
